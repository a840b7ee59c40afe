package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// sameBrowserTab opens another tab (in a window of its own, so it stays visible) of
// first's browser: same cookies, so the same session. It has the live probe installed.
func sameBrowserTab(t *testing.T, first *tab) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(first.ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	tb := &tab{t: t, ctx: ctx, lang: first.lang, console: newConsoleLog(ctx)}
	tb.do(
		cdpDo(network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": "ko-KR,ko;q=0.9"}}),
		cdpDo(page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspProbe}),
		cdpDo(page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: liveProbe}),
	)
	return tb
}

// shownJS is true when the element with id is on screen and its text has text.
func shownJS(id, text string) string {
	return fmt.Sprintf(`(() => { const d = document.getElementById(%q); return !!d && d.getClientRects().length > 0 && d.innerText.includes(%s) })()`,
		id, jsString(text))
}

// TestSignOutEndsOtherTabs: with a thread open in two tabs of one browser, signing out in
// one ends the other's live stream at once: it shows the signed-out state with a way to
// sign in, does not try to reconnect, and a message sent afterwards does not reach it.
func TestSignOutEndsOtherTabs(t *testing.T) {
	browser := newBrowser(t)
	srv := startServer(t)
	nonce := runNonce()
	teacher, direct, threadURL := teacherDirect(t, srv)

	a := signedInTab(t, browser, srv, demoParent.Name)
	b := sameBrowserTab(t, a)
	openThread(a, threadURL)
	openThread(b, threadURL)
	before := "로그아웃 전 " + nonce
	teacher.send(t, direct, before)
	waitJS(b, "B sees a message live", countTextJS(before)+" === 1", 5*time.Second)
	// B marks it read and its list asks the server for itself: let that settle first, so
	// that B's requests of the message do not race the sign-out (they would be refused).
	waitJS(b, "B's list shows the message", fmt.Sprintf(`document.querySelector("#conv-%d [data-role=preview]").textContent.includes(%s) && !document.querySelector("#conv-%d [data-role=badge]").checkVisibility()`, direct, jsString(before), direct), 5*time.Second)

	// A signs out with its menu's form.
	if _, err := runErr(a, chromedp.WaitEvent(page.LoadEventFired, nil,
		chromedp.Evaluate[chromedp.Void](`document.querySelector('form[action="/logout"]').requestSubmit()`))); err != nil {
		t.Fatalf("sign out in A: %v", err)
	}
	took := waitJS(b, "B shows the signed-out state", shownJS("signed-out", "로그아웃되었습니다"), 10*time.Second)
	t.Logf("B showed the signed-out state %v after A signed out", took.Round(time.Millisecond))
	screenshot(b, screenshotDir(t), "signed-out-ko-1280x800", 1280, 800, false)
	screenshot(b, screenshotDir(t), "signed-out-ko-390x844", 390, 844, true)
	if href := eval[string](b, `(document.querySelector("#signed-out a") || {}).pathname || ""`); href != "/dev/login" {
		t.Errorf("the signed-out state's sign-in link goes to %q, want /dev/login", href)
	}

	after := "로그아웃 후 " + nonce
	teacher.send(t, direct, after)
	// What B would have received live comes within a second; give it three.
	if _, _, ok := pollJS(b, countTextJS(after)+" > 0", 3*time.Second, func(n bool) bool { return n }); ok {
		t.Error("a message sent after the sign-out reached B")
	}
	if n := eval[int](b, `window.__e2e.connects`); n != 1 {
		t.Errorf("B's stream connected %d times, want once (no reconnect after the sign-out): %s", n,
			eval[string](b, `JSON.stringify(window.__e2e.sse)`))
	}
	if eval[bool](b, shownJS("conn-status", "")) {
		t.Error("B shows the connection banner besides the signed-out state")
	}
	checkConsole(b)
}

// TestStreamMovesToNewestTab: with one stream allowed per user, a second tab takes the
// live stream over; the first says so and takes it back with its button.
func TestStreamMovesToNewestTab(t *testing.T) {
	browser := newBrowser(t)
	srv := startServer(t, "MESSENGER_MAX_STREAMS_PER_USER=1")
	nonce := runNonce()
	teacher, direct, threadURL := teacherDirect(t, srv)

	a := signedInTab(t, browser, srv, demoParent.Name)
	openThread(a, threadURL)
	b := sameBrowserTab(t, a)
	openThread(b, threadURL)
	const moved = "이 창의 실시간 연결이 다른 창으로 옮겨졌습니다"
	waitJS(a, "A says its stream moved", shownJS("stream-replaced", moved), 10*time.Second)
	screenshot(a, screenshotDir(t), "stream-replaced-ko-390x844", 390, 844, true)
	screenshot(a, screenshotDir(t), "stream-replaced-ko-1280x800", 1280, 800, false)
	first := "B만 받음 " + nonce
	teacher.send(t, direct, first)
	waitJS(b, "B sees a message live", countTextJS(first)+" === 1", 5*time.Second)

	// A takes it back: the page reloads, its stream connects, and B's moves.
	if _, err := runErr(a, chromedp.WaitEvent(page.LoadEventFired, nil,
		chromedp.Click(chromedp.CSS(`#stream-replaced button`)))); err != nil {
		t.Fatalf("reconnect A: %v", err)
	}
	waitConnected(a, 1)
	waitJS(b, "B says its stream moved", shownJS("stream-replaced", moved), 10*time.Second)
	second := "다시 A로 " + nonce
	teacher.send(t, direct, second)
	waitJS(a, "A sees a message live again", countTextJS(second)+" === 1", 5*time.Second)
	checkConsole(a)
	checkConsole(b)
}

// TestSignInAgainInOtherTab: signing in again in one tab gives the browser a new session;
// the other tab's stream, of the old session, ends with a notice and a reload button, and
// after the reload it is live again with the new session.
func TestSignInAgainInOtherTab(t *testing.T) {
	browser := newBrowser(t)
	srv := startServer(t)
	nonce := runNonce()
	teacher, direct, threadURL := teacherDirect(t, srv)

	a := signedInTab(t, browser, srv, demoParent.Name)
	b := sameBrowserTab(t, a)
	openThread(b, threadURL)
	// B marks the thread read a moment after it opens; once the session is replaced that
	// mark would carry a stale CSRF token (a 403), so it goes first.
	waitJS(b, "B's thread is marked read", `(() => { const t = document.querySelector("#thread");
		const m = JSON.parse(t.dataset.marks || "{}"), rows = document.querySelectorAll("#messages > li.msg");
		return rows.length === 0 || (m[t.dataset.me] || 0) >= +rows[rows.length - 1].dataset.seq })()`, 5*time.Second)
	signInDev(a, srv.URL, demoParent.Name)
	waitJS(b, "B says the browser signed in again", shownJS("stream-replaced", "이 브라우저에서 다시 로그인되었습니다"), 10*time.Second)
	// (A script's click: a real one focuses the window first, and the page, whose CSRF
	// token went with the old session, may then try to mark the thread read: a 403.)
	if _, err := runErr(b, chromedp.WaitEvent(page.LoadEventFired, nil,
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#stream-replaced button").click()`))); err != nil {
		t.Fatalf("reload B: %v", err)
	}
	waitConnected(b, 1)
	text := "새 세션으로 " + nonce
	teacher.send(t, direct, text)
	waitJS(b, "B sees a message live with the new session", countTextJS(text)+" === 1", 5*time.Second)
	checkConsole(b)
}
