package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/handlers"
	"github.com/dreamseed/messenger/internal/browsertest"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

// TestSettingsInBrowser: a parent on a phone (390 px, Korean and English) mutes a group
// from its header's bell, sees it in the list with the bell-off icon and a grey badge
// that still counts, saves quiet hours on the settings page, and, writing to a teacher
// in quiet hours, reads the composer's notice. Screenshots go to $SCREENSHOT_DIR.
func TestSettingsInBrowser(t *testing.T) {
	chromium := chromiumOrSkip(t)
	e := newEnv(t, func(c *handlers.Config) { c.CookieSecure, c.CookieSameSite = false, http.SameSiteLaxMode })
	ctx := context.Background()
	teacher := mustUser(t, e.db, "demo-teacher", "김선영", "org-a")
	others := []messenger.User{
		mustUser(t, e.db, "demo-t2", "박지호", "org-a"), mustUser(t, e.db, "demo-t3", "이서연", "org-a"),
	}
	shots := screenshotDir(t)
	browser := startChromium(t, chromium)

	// The teacher is in quiet hours now (an hour either side, Seoul time).
	seoul, _ := time.LoadLocation("Asia/Seoul")
	now := time.Now().In(seoul)
	to := now.Add(time.Hour).Format("15:04")
	if err := e.db.InTx(ctx, teacher.Identity(), func(tx *store.Tx) error {
		return tx.SaveMySettings(ctx, store.UserSettings{Push: true, Email: true, QuietCustom: true,
			QuietFrom: now.Add(-time.Hour).Format("15:04"), QuietTo: to, TimeZone: "Asia/Seoul"})
	}); err != nil {
		t.Fatal(err)
	}

	for i, lang := range []string{"ko", "en"} {
		parentSub := fmt.Sprintf("demo-parent-%s", lang)
		claims := validClaims(parentSub, "최지훈", "org-a")
		claims["role"] = messenger.RoleParent
		token := sign(t, claims)
		parent := storetest.MustSignIn(t, e.db, parentSub, "최지훈", "org-a", "org-a-zone", messenger.RoleParent)
		direct := directConversation(t, e, parent, teacher)
		var group, club int64
		if err := e.db.InTx(ctx, teacher.Identity(), func(tx *store.Tx) (err error) {
			if group, err = tx.CreateGroup(ctx, fmt.Sprintf("5학년 2반 학부모 %d", i), []int64{parent.ID, others[0].ID}); err != nil {
				return err
			}
			club, err = tx.CreateGroup(ctx, fmt.Sprintf("독서 동아리 %d", i), []int64{parent.ID, others[1].ID})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for _, m := range []struct {
			who  messenger.User
			conv int64
			body string
		}{
			{teacher, direct, "내일 준비물 챙겨 주세요."},
			{others[1], club, "이번 주 책은 어린 왕자입니다"},
			{teacher, group, "현장학습 동의서 회신 부탁드립니다."},
			{others[0], group, "네 알겠습니다!"},
			{others[0], group, "혹시 도시락도 필요한가요?"},
		} {
			if err := e.db.InTx(ctx, m.who.Identity(), func(tx *store.Tx) error {
				_, err := tx.InsertMessage(ctx, m.conv, store.NewMessage{Kind: messenger.MessageText, Body: m.body})
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}

		tab, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
		defer cancel()
		if err := chromedp.Do(tab); err != nil {
			t.Fatal(err)
		}
		do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
			t.Helper()
			browserStep(t, tab, what+" ("+lang+")", 600, actions...)
		}
		text := func(expr string) string {
			t.Helper()
			c, done := context.WithTimeout(tab, 10*time.Second)
			defer done()
			v, err := chromedp.Run(c, chromedp.Evaluate[string](expr))
			if err != nil {
				t.Fatalf("eval %s: %v", expr, err)
			}
			return v
		}
		// wait polls expr across the navigation a plain form's post makes (an evaluation
		// that the navigation interrupts is tried again).
		wait := func(what, expr string) {
			t.Helper()
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				c, done := context.WithTimeout(tab, 2*time.Second)
				ok, err := chromedp.Run(c, chromedp.Evaluate[bool](expr))
				done()
				if err == nil && ok {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
			t.Fatalf("%s (%s): not within 10 s", what, lang)
		}
		narrow := func(where string) {
			t.Helper()
			if w := text(`String(document.documentElement.scrollWidth - window.innerWidth)`); w != "0" {
				t.Errorf("%s (%s): the page is %s px wider than the phone", where, lang, w)
			}
		}
		accept := map[string]string{"ko": "ko-KR,ko;q=0.9", "en": "en-US,en;q=0.9"}[lang]
		do("sign in",
			browsertest.Call(network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": accept}}),
			chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch),
			chromedp.Navigate(e.srv.URL+"/healthz"),
			chromedp.Evaluate[chromedp.Void](`fetch("/auth/portal", {method: "POST", body: new URLSearchParams({token: `+fmt.Sprintf("%q", token)+`}), redirect: "manual"}).then(() => true)`, chromedp.EvalAwaitPromise),
		)

		// Another tab of the parent shows the list meanwhile: it follows the mute live.
		other, closeOther := chromedp.NewContext(tab)
		defer closeOther()
		if err := chromedp.Do(other); err != nil { // opens the tab, which lives as long as other
			t.Fatal(err)
		}
		browserStep(t, other, "the list in another tab ("+lang+")", 600,
			chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch),
			chromedp.Navigate(e.srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("conversation-rows")))
		mutedIn := func(ctx context.Context) bool {
			c, done := context.WithTimeout(ctx, 5*time.Second)
			defer done()
			muted, err := chromedp.Run(c, chromedp.Evaluate[bool](fmt.Sprintf(`!!document.querySelector("#conv-%d [data-role=muted]")`, group)))
			if err != nil {
				t.Fatalf("%s: the other tab: %v", lang, err)
			}
			return muted
		}
		if mutedIn(other) {
			t.Fatalf("%s: the group is muted before the parent muted it", lang)
		}

		// Mute the group for 8 hours from its header's bell.
		do("open the group", chromedp.Navigate(fmt.Sprintf("%s/c/%d", e.srv.URL, group)), chromedp.WaitVisible(chromedp.ID("composer")))
		do("open the bell", chromedp.Click(`#conv-settings summary`), chromedp.WaitVisible(`#conv-settings button[value="8h"]`))
		do("type keywords", chromedp.SendKeys(`#keywords`, "동의서"))
		shot(t, tab, shots, "settings-mute-menu-"+lang+"-390")
		do("mute for 8 hours", chromedp.Click(`#conv-settings button[value="8h"]`))
		wait("the header says muted", `!!document.getElementById("mute-state") && document.readyState === "complete"`)
		deadline := time.Now().Add(10 * time.Second)
		for !mutedIn(other) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the other tab's list does not show the mute within 10 s", lang)
			}
			time.Sleep(100 * time.Millisecond)
		}
		closeOther()
		do("save the keyword", chromedp.Click(`#conv-settings summary`), chromedp.WaitVisible(`#keywords`),
			chromedp.SendKeys(`#keywords`, "동의서"), chromedp.Click(`#conv-settings form:last-of-type button`))
		wait("the keyword saved", `document.getElementById("keywords").value === "동의서" && !document.getElementById("conv-settings").open`)
		var kw string
		if err := e.db.InTx(ctx, parent.Identity(), func(tx *store.Tx) error {
			ms, err := tx.MemberSettings(ctx, group)
			kw = strings.Join(ms.Keywords, ",") + fmt.Sprintf(" muted=%v", ms.Mute.Active(time.Now()))
			return err
		}); err != nil || kw != "동의서 muted=true" {
			t.Errorf("%s: stored %q, %v", lang, kw, err)
		}

		// Two more messages while the parent is away from the thread (the thread they had
		// open may have marked the first three read).
		do("leave the thread", chromedp.Navigate(e.srv.URL+"/healthz"))
		for _, body := range []string{"도시락은 필요 없습니다", "감사합니다"} {
			if err := e.db.InTx(ctx, teacher.Identity(), func(tx *store.Tx) error {
				_, err := tx.InsertMessage(ctx, group, store.NewMessage{Kind: messenger.MessageText, Body: body})
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
		// The list: the muted group has the bell-off and a grey badge that still counts.
		do("open the list", chromedp.Navigate(e.srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("conversation-rows")))
		row := fmt.Sprintf(`document.getElementById("conv-%d")`, group)
		got := text(`(() => { const r = ` + row + `; const b = r.querySelector("[data-role=badge]");
			return [r.querySelector("[data-role=muted]") ? "bell-off" : "bell", b.dataset.unread, getComputedStyle(b).backgroundColor].join(" "); })()`)
		if f := strings.Fields(got); len(f) < 2 || f[0] != "bell-off" || (f[1] != "2" && f[1] != "5") || strings.Contains(got, "rgb(225, 29, 72)") {
			t.Errorf("%s: the muted row shows %q", lang, got)
		}
		if got := text(fmt.Sprintf(`getComputedStyle(document.querySelector("#conv-%d [data-role=badge]")).backgroundColor`, club)); got != "rgb(225, 29, 72)" {
			t.Errorf("%s: an unmuted row's badge is %s, want red", lang, got)
		}
		narrow("the list")
		shot(t, tab, shots, "settings-list-muted-"+lang+"-390")

		// The settings page, from the account menu: quiet hours of my own.
		do("open the menu", chromedp.Click(`#me-menu > summary`), chromedp.WaitVisible(chromedp.ID("settings-link")))
		do("open settings", chromedp.Click(chromedp.ID("settings-link")), chromedp.WaitVisible(chromedp.ID("settings-form")))
		narrow("the settings page")
		shot(t, tab, shots, "settings-page-"+lang+"-390")
		do("choose custom quiet hours",
			chromedp.Click(`input[name=quiet_mode][value=custom]`),
			chromedp.SetValue(`#quiet_from`, "22:00"), chromedp.SetValue(`#quiet_to`, "07:00"),
			chromedp.Click(`#settings-form button[type=submit]`), chromedp.WaitVisible(chromedp.ID("settings-saved")))
		if got := text(`document.getElementById("quiet_from").value + "-" + document.getElementById("quiet_to").value`); got != "22:00-07:00" {
			t.Errorf("%s: saved quiet hours read %s", lang, got)
		}
		shot(t, tab, shots, "settings-page-saved-"+lang+"-390")

		// Writing to the teacher, who is in quiet hours.
		do("open the 1:1", chromedp.Navigate(fmt.Sprintf("%s/c/%d", e.srv.URL, direct)), chromedp.WaitVisible(chromedp.ID("composer-quiet")))
		want := map[string]string{"ko": "선생님은 알림 꺼짐 시간입니다 (" + to + "에 알림)", "en": "The teacher is in quiet hours (notified at " + to + ")"}[lang]
		if got := text(`document.getElementById("composer-quiet").innerText.trim()`); got != want {
			t.Errorf("%s: the composer says %q, want %q", lang, got, want)
		}
		narrow("the thread")
		shot(t, tab, shots, "settings-quiet-notice-"+lang+"-390")
	}
}
