package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestMemberList: a group's header opens its member list, with each member's role and
// presence; the viewer is online (their page holds a live stream).
func TestMemberList(t *testing.T) {
	srv := startServer(t)
	teacher := newLiveAPI(t, srv, demoTeacher)
	_, group := demoConversationIDs(t, teacher)
	browser := newBrowser(t)
	for _, lang := range []string{"ko", "en"} {
		tb := newLiveTab(t, browser, lang)
		signInDev(tb, srv.URL, demoTeacher.Name)
		openThread(tb, fmt.Sprintf("%s/c/%d", srv.URL, group))
		run(tb, chromedp.Click(chromedp.CSS("#thread-title + details > summary")))
		waitJS(tb, "the member list to open", `document.querySelector("#thread-title + details").open`, 3*time.Second)
		text := eval[string](tb, `document.querySelector("#thread-title + details ul").innerText`)
		for _, name := range []string{"김선영", "이민준", "박서연", "최지훈"} {
			if !strings.Contains(text, name) {
				t.Errorf("%s: the member list lacks %s: %q", lang, name, text)
			}
		}
		waitJS(tb, "the viewer's own dot to be green",
			fmt.Sprintf(`document.querySelector('#thread-title + details [data-presence=%q]').classList.contains("online")`, demoTeacher.Sub), 5*time.Second)
		dir := screenshotDir(t)
		screenshot(tb, dir, "members-"+lang+"-1280x800", 1280, 800, false)
		screenshot(tb, dir, "members-"+lang+"-390x844", 390, 844, true)
	}
}
