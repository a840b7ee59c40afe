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

// TestBadgeClearsInEveryTab: the teacher has the list open in one tab (another device) and
// opens the conversation with the unread message in a second one: the first tab's badge and
// title clear at once, without a reload.
func TestBadgeClearsInEveryTab(t *testing.T) {
	srv := startServer(t)
	teacher := newLiveAPI(t, srv, demoTeacher)
	parent := newLiveAPI(t, srv, demoParent)
	direct, _ := demoConversationIDs(t, teacher)
	browser := newBrowser(t)

	listTab := newLiveTab(t, browser, "ko")
	signInDev(listTab, srv.URL, demoTeacher.Name)
	waitConnected(listTab, 1)
	parent.send(t, direct, "선생님, 내일 상담 가능할까요?")
	waitJS(listTab, "the list tab's badge to count the new message",
		fmt.Sprintf(`document.querySelector("#conv-%d [data-role=badge]").checkVisibility()`, direct), 5*time.Second)

	before, unread := titleCount(listTab), badge(listTab, direct).Count

	threadTab := newLiveTab(t, browser, "ko")
	signInDev(threadTab, srv.URL, demoTeacher.Name)
	openThread(threadTab, fmt.Sprintf("%s/c/%d", srv.URL, direct))
	took := waitJS(listTab, "the list tab's badge to clear once the other tab read the thread",
		fmt.Sprintf(`!document.querySelector("#conv-%d [data-role=badge]").checkVisibility()`, direct), 5*time.Second)
	t.Logf("the other tab's badge cleared %s after the thread opened", took)
	// The title is set once the swapped list has settled, a moment after the badge: the
	// user sees both change together; the test gives the title a second.
	after := titleCount(listTab)
	for deadline := time.Now().Add(time.Second); after != before-unread && time.Now().Before(deadline); after = titleCount(listTab) {
		time.Sleep(25 * time.Millisecond)
	}
	if after != before-unread {
		t.Errorf("the list tab's title counts %d unread, want %d - %d", after, before, unread)
	}
}
