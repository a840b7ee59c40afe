package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// listRow is one row of the conversation list as the page shows it.
type listRow struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Href   string `json:"href"`
	Time   string `json:"time"`   // datetime of the last activity
	Unread string `json:"unread"` // data-unread; "" without a badge
	Badge  string `json:"badge"`  // the badge's visible text
	Active bool   `json:"active"`
}

const listRowsJS = `Array.from(document.querySelectorAll("#conversation-rows > li[data-conversation]")).map(li => {
  const a = li.querySelector("a");
  const badge = li.querySelector("[data-unread]");
  let badgeText = "";
  if (badge) {
    const visible = badge.cloneNode(true);
    visible.querySelectorAll(".sr-only").forEach(n => n.remove());
    badgeText = visible.textContent.trim();
  }
  const time = li.querySelector("time");
  return {
    id: li.dataset.conversation,
    title: (li.querySelector("a > div span.truncate.font-semibold") || {textContent: ""}).textContent.trim(),
    href: a ? a.getAttribute("href") : "",
    time: time ? time.getAttribute("datetime") : "",
    unread: badge ? badge.getAttribute("data-unread") : "",
    badge: badgeText,
    active: !!a && a.getAttribute("aria-current") === "page",
  };
})`

// threadView is what the open thread shows.
type threadView struct {
	Title      string   `json:"title"`
	Text       string   `json:"text"`       // visible text of the messages
	Separators []string `json:"separators"` // the day separators
	Links      []struct {
		Href   string `json:"href"`
		Rel    string `json:"rel"`
		Target string `json:"target"`
	} `json:"links"`
	Lang string `json:"lang"`
}

const threadJS = `({
  title: (document.getElementById("thread-title") || {textContent: ""}).textContent.trim(),
  text: (document.getElementById("messages") || {innerText: ""}).innerText,
  separators: Array.from(document.querySelectorAll('#messages li.day-sep')).map(li => li.innerText.trim()),
  links: Array.from(document.querySelectorAll("#messages a[href]")).map(a => ({
    href: a.getAttribute("href"), rel: a.getAttribute("rel") || "", target: a.getAttribute("target") || "",
  })),
  lang: document.documentElement.lang,
})`

func rowByTitle(rows []listRow, title string) (listRow, bool) {
	for _, r := range rows {
		if r.Title == title {
			return r, true
		}
	}
	return listRow{}, false
}

// TestFirstRunInBrowser is the first thing a developer does: start the server with demo
// data, sign in on the dev page as the demo teacher, look at the list, open the class's
// group. In Korean and in English, on a laptop and on a phone.
func TestFirstRunInBrowser(t *testing.T) {
	browser := newBrowser(t)
	srv := startServer(t)
	shots := screenshotDir(t)
	const (
		teacher = "김선영"
		group   = "5학년 2반 알림방"
		parent  = "최지훈"
	)

	// Korean.
	ko := newTab(t, browser, "ko")
	signInDev(ko, srv.URL, teacher)

	checkSessionCookie(t, ko)
	if lang := eval[string](ko, `document.documentElement.lang`); lang != "ko" {
		t.Errorf(`<html lang> = %q, want "ko"`, lang)
	}
	if title := run(ko, chromedp.Title()); !strings.HasPrefix(title, "(1) ") {
		t.Errorf(`title = %q, want "(1) …": one unread message, from %s in %s`, title, parent, group)
	}
	rows := eval[[]listRow](ko, listRowsJS)
	t.Logf("list: %+v", rows)
	groupRow, ok := rowByTitle(rows, group)
	if !ok {
		t.Fatalf("the list has no row %q: %+v", group, rows)
	}
	directRow, ok := rowByTitle(rows, parent)
	if !ok {
		t.Errorf("the list has no row %q: %+v", parent, rows)
	}
	if groupRow.Unread != "1" || groupRow.Badge != "1" {
		t.Errorf("%s: unread badge data-unread=%q text=%q, want 1 and 1", group, groupRow.Unread, groupRow.Badge)
	}
	if directRow.Unread != "" {
		t.Errorf("%s: unread badge %q, want none (the teacher answered last)", parent, directRow.Unread)
	}
	if !sort.SliceIsSorted(rows, func(i, j int) bool { return rows[i].Time > rows[j].Time }) {
		t.Errorf("the list is not most recent first: %+v", rows)
	}
	for _, r := range rows {
		if r.Time == "" {
			t.Errorf("row %q shows no time", r.Title)
		}
	}
	screenshot(ko, shots, "first-run-ko-list-1280x800", 1280, 800, false)
	screenshot(ko, shots, "first-run-ko-list-390x844", 390, 844, true)

	// Open the group from the list.
	ko.do(chromedp.EmulateViewport(1280, 800))
	if _, err := runErr(ko, chromedp.WaitEvent(page.LoadEventFired, nil,
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`li[data-conversation="%s"] > a`, groupRow.ID))))); err != nil {
		t.Fatalf("open %s: %v", group, err)
	}
	ko.do(chromedp.WaitVisible(chromedp.ID("messages")))
	if loc, want := run(ko, chromedp.Location()), srv.URL+"/c/"+groupRow.ID; loc != want {
		t.Errorf("location = %s, want %s", loc, want)
	}
	th := eval[threadView](ko, threadJS)
	if th.Title != group {
		t.Errorf("thread title = %q, want %q", th.Title, group)
	}
	if title := run(ko, chromedp.Title()); !strings.Contains(title, group) {
		t.Errorf("page title = %q, want the conversation's name in it", title)
	}
	for _, want := range []string{"현장체험학습", "감사합니다 선생님", "선생님 비가 오면"} {
		if !strings.Contains(th.Text, want) {
			t.Errorf("the thread does not show %q:\n%s", want, th.Text)
		}
	}
	if len(th.Separators) == 0 {
		t.Error("the thread has no day separator")
	}
	for _, s := range th.Separators {
		if !strings.Contains(s, "년") || !strings.Contains(s, "일") {
			t.Errorf("day separator %q is not a Korean date", s)
		}
	}
	found := false
	for _, l := range th.Links {
		if strings.HasPrefix(l.Href, "https://dreamseed.example/notice/512") {
			found = true
			if l.Rel != "noopener noreferrer" {
				t.Errorf("link %s: rel = %q, want noopener noreferrer", l.Href, l.Rel)
			}
			if l.Target != "_blank" {
				t.Errorf("link %s: target = %q, want _blank", l.Href, l.Target)
			}
		}
	}
	if !found {
		t.Errorf("no link to https://dreamseed.example/notice/512 in the thread: %+v", th.Links)
	}
	if rows := eval[[]listRow](ko, listRowsJS); !func() bool {
		r, ok := rowByTitle(rows, group)
		return ok && r.Active
	}() {
		t.Errorf("the open conversation is not marked current in the list: %+v", rows)
	}
	screenshot(ko, shots, "first-run-ko-thread-1280x800", 1280, 800, false)
	screenshot(ko, shots, "first-run-ko-thread-390x844", 390, 844, true)
	// On a phone only the thread shows, with a way back to the list.
	if vis := eval[bool](ko, `(() => { const n = document.getElementById("conversation-list"); return !!n && n.offsetParent !== null })()`); vis {
		t.Error("on a phone the list still shows beside the open thread")
	}
	if vis := eval[bool](ko, `(() => { const a = document.querySelector('a[href="/"][aria-label]'); return !!a && a.offsetParent !== null })()`); !vis {
		t.Error("on a phone the thread has no visible way back to the list")
	}

	// English: another person's browser, asking for English.
	en := newTab(t, browser, "en")
	signInDev(en, srv.URL, teacher)
	if lang := eval[string](en, `document.documentElement.lang`); lang != "en" {
		t.Errorf(`with Accept-Language en: <html lang> = %q, want "en"`, lang)
	}
	if n := eval[int](en, `document.querySelectorAll('nav[aria-label="Conversations"]').length`); n != 1 {
		t.Error(`with Accept-Language en: no nav[aria-label="Conversations"]`)
	}
	if title := run(en, chromedp.Title()); !strings.Contains(title, "DreamSeed Messenger") {
		t.Errorf("English title = %q, want DreamSeed Messenger in it", title)
	}
	screenshot(en, shots, "first-run-en-list-1280x800", 1280, 800, false)
	screenshot(en, shots, "first-run-en-list-390x844", 390, 844, true)
	en.do(chromedp.EmulateViewport(1280, 800))
	if _, err := runErr(en, chromedp.WaitEvent(page.LoadEventFired, nil,
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`li[data-conversation="%s"] > a`, groupRow.ID))))); err != nil {
		t.Fatalf("open %s in English: %v", group, err)
	}
	en.do(chromedp.WaitVisible(chromedp.ID("messages")))
	th = eval[threadView](en, threadJS)
	for _, s := range th.Separators {
		if strings.Contains(s, "년") || !strings.Contains(s, ", ") {
			t.Errorf("English day separator %q is not an English date", s)
		}
	}
	if !strings.Contains(th.Text, "현장체험학습") {
		t.Errorf("the English thread does not show the messages:\n%s", th.Text)
	}
	screenshot(en, shots, "first-run-en-thread-1280x800", 1280, 800, false)
	screenshot(en, shots, "first-run-en-thread-390x844", 390, 844, true)

	checkConsole(ko)
	checkConsole(en)
	checkServerErrors(t, srv)
	// The browsers keep their connections open; the server still stops at once.
	srv.Stop()
}

// checkSessionCookie checks the cookie dev login left in the tab: HttpOnly, Secure (on
// http://localhost, which Chromium treats as a secure context) and SameSite=Lax.
func checkSessionCookie(t *testing.T, tb *tab) {
	t.Helper()
	res := run(tb, chromedp.Action[*network.GetCookiesResult](func(ctx context.Context, target *chromedp.Target) (*network.GetCookiesResult, error) {
		r, err := cdp.Call(ctx, target, network.GetCookies, network.GetCookiesParams{})
		return &r, err
	}))
	for _, c := range res.Cookies {
		if c.Name != "messenger_session" {
			continue
		}
		if !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteLax {
			t.Errorf("session cookie: HttpOnly=%v Secure=%v SameSite=%q, want true, true, Lax", c.HTTPOnly, c.Secure, c.SameSite)
		}
		return
	}
	t.Errorf("no messenger_session cookie after dev login; cookies: %+v", res.Cookies)
}
