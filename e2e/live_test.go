package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/uuid"

	"github.com/dreamseed/messenger/auth"
)

// TestLiveChat is two people chatting in two browsers: the demo teacher 김선영 (A) and the
// demo parent 최지훈 (B), each in a browser context of their own. It checks what they
// see: live delivery, the list and the title following along, the composer's keys, a
// connection that drops and comes back, a send that fails and is retried, history paging,
// the page without JavaScript, and screenshots of it all.
func TestLiveChat(t *testing.T) {
	browser := newBrowser(t)
	srv := startServer(t)
	shots := screenshotDir(t)
	nonce := strconv.FormatInt(time.Now().UnixNano()%1e6, 36) // makes texts unique per run

	teacherAPI := newLiveAPI(t, srv, demoTeacher)
	parentAPI := newLiveAPI(t, srv, demoParent)
	direct, group := demoConversationIDs(t, teacherAPI)

	// B reaches the server through a proxy that can cut B's connections, as a network
	// that drops does: browser network emulation alone leaves an open stream alive.
	proxy := newCutProxy(t, srv.Addr)
	a := newLiveTab(t, browser, "ko")
	signInDev(a, srv.URL, demoTeacher.Name)
	b := newLiveTab(t, browser, "ko")
	signInDev(b, proxy.URL, demoParent.Name)
	for _, tb := range []*tab{a, b} {
		if v := eval[string](tb, `document.visibilityState`); v != "visible" {
			t.Fatalf("a tab is %q: live updates pause in hidden tabs, so this test needs visible ones", v)
		}
	}
	threadURL := func(id int64) string { return srv.URL + "/c/" + strconv.FormatInt(id, 10) }
	threadURLB := func(id int64) string { return proxy.URL + "/c/" + strconv.FormatInt(id, 10) }

	t.Run("live delivery", func(t *testing.T) {
		a, b := a.with(t), b.with(t)
		openThread(a, threadURL(direct))
		openThread(b, threadURLB(direct))

		// The composer is found by its label.
		if id := eval[string](a, `(() => { const l = Array.from(document.querySelectorAll("label")).find(l => l.textContent.trim() === "메시지 입력"); return l && l.control ? l.control.id : "" })()`); id != "composer" {
			t.Fatalf(`no textarea labelled "메시지 입력" (found %q)`, id)
		}
		titleBefore, badgeBefore := titleCount(b), badge(b, direct)

		text := "안녕하세요 지훈 아버님 " + nonce
		typeInComposer(a, text)
		start := time.Now()
		pressEnter(a)
		waitJS(a, "A sees the message", countTextJS(text)+" === 1", 5*time.Second)
		waitJS(b, "B sees A's message live", countTextJS(text)+" === 1", 5*time.Second)
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("B saw the message %s after A pressed Enter, want within 2 s", took.Round(time.Millisecond))
		} else {
			t.Logf("B saw the message %s after A pressed Enter", took.Round(time.Millisecond))
		}
		ra, rb := rowWithText(a, text), rowWithText(b, text)
		if !ra.Mine || !ra.RightSide {
			t.Errorf("A's own message is not on the right as A's (mine=%v right=%v): %+v", ra.Mine, ra.RightSide, ra)
		}
		if rb.Mine || rb.RightSide {
			t.Errorf("A's message is on B's side in B's thread (mine=%v right=%v): %+v", rb.Mine, rb.RightSide, rb)
		}
		if ra.ID != rb.ID || ra.Seq != rb.Seq || rb.Sender != demoTeacher.Sub {
			t.Errorf("the same message differs between the tabs: A %+v, B %+v", ra, rb)
		}
		if v := run(a, chromedp.Value(chromedp.ID("composer"))); v != "" {
			t.Errorf("A's composer still holds %q after the send", v)
		}
		// B reads the thread as it arrives: it is marked read, so no badge for it, and the
		// title no longer counts it.
		// B's list asks the server for itself once B has marked the message read.
		if top, _, ok := pollJS(b, `(() => { const li = document.querySelector("#conversation-rows > li"); return li ? +li.dataset.conversation : 0 })()`,
			3*time.Second, func(id int64) bool { return id == direct }); !ok {
			t.Errorf("B's list: the conversation with the new message is not on top (top is %d)", top)
		}
		waitJS(b.with(t), "B's badge of the open conversation to clear",
			fmt.Sprintf(`!document.querySelector("#conv-%d [data-role=badge]").checkVisibility()`, direct), 3*time.Second)
		// The title is recounted after the badge clears: wait for it rather than race it.
		want := titleBefore - badgeBefore.Count
		deadline := time.Now().Add(3 * time.Second)
		for titleCount(b) != want && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if n := titleCount(b); n != want {
			t.Errorf("B's title count went from %d to %d; want %d once the open conversation is read", titleBefore, n, want)
		}

		// B on the list: another conversation is on top, then A writes again.
		b.do(chromedp.Navigate(proxy.URL + "/"))
		waitConnected(b, 1)
		teacherAPI.send(t, group, "알림방 공지 "+nonce)
		waitJS(b, "the group moves to the top of B's list", fmt.Sprintf(`document.querySelector("#conversation-rows > li").id === "conv-%d"`, group), 5*time.Second)
		before, titleBefore := badge(b, direct).Count, titleCount(b)
		text2 := "오늘 상담 가능하실까요? " + nonce
		typeInComposer(a, text2)
		pressEnter(a)
		waitJS(b, "the direct conversation moves to the top of B's list", fmt.Sprintf(`document.querySelector("#conversation-rows > li").id === "conv-%d"`, direct), 5*time.Second)
		waitJS(b, "B's badge counts the new message", fmt.Sprintf(`(%s).count === %d`, badgeJS(direct), before+1), 3*time.Second)
		if bd := badge(b, direct); !bd.Visible || bd.Text != strconv.Itoa(before+1) {
			t.Errorf("B's badge = %+v, want %d shown", bd, before+1)
		}
		if n := titleCount(b); n != titleBefore+1 {
			t.Errorf("B's title %q counts %d, want %d", run(b, chromedp.Title()), n, titleBefore+1)
		}
		if p := eval[string](b, fmt.Sprintf(`document.querySelector("#conv-%d [data-role=preview]").textContent.trim()`, direct)); p != text2 {
			t.Errorf("B's list preview = %q, want %q", p, text2)
		}

		// B reading another conversation: the list beside it still follows.
		openThread(b, threadURLB(group))
		// The group's notice is read once the page has marked it: count from then, not
		// from a title that still holds it.
		waitJS(b.with(t), "B's badge of the group to clear",
			fmt.Sprintf(`!document.querySelector("#conv-%d [data-role=badge]").checkVisibility()`, group), 5*time.Second)
		// The title is recounted after the badge clears: wait until it holds still.
		for last, since := titleCount(b), time.Now(); time.Since(since) < 300*time.Millisecond; {
			time.Sleep(50 * time.Millisecond)
			if n := titleCount(b); n != last {
				last, since = n, time.Now()
			}
		}
		before, titleBefore = badge(b, direct).Count, titleCount(b)
		text3 := "답장 기다릴게요 " + nonce
		typeInComposer(a, text3)
		pressEnter(a)
		waitJS(b, "the direct conversation moves to the top while B reads the group", fmt.Sprintf(`document.querySelector("#conversation-rows > li").id === "conv-%d"`, direct), 5*time.Second)
		waitJS(b, "B's badge counts the message while B reads the group", fmt.Sprintf(`(%s).count === %d`, badgeJS(direct), before+1), 3*time.Second)
		if n := titleCount(b); n != titleBefore+1 {
			t.Errorf("B's title %q counts %d, want %d", run(b, chromedp.Title()), n, titleBefore+1)
		}
		if n := eval[int](b, countTextJS(text3)); n != 0 {
			t.Errorf("a message of the direct conversation shows in the group's thread (%d times)", n)
		}
		waitJS(a, "A sees its three messages", countTextJS(text2)+" === 1 && "+countTextJS(text3)+" === 1", 5*time.Second)
	})

	t.Run("composer", func(t *testing.T) {
		a, b := a.with(t), b.with(t)
		openThread(b, threadURLB(direct))
		rowsBefore := len(threadRows(a))
		posts := postCount(a)

		// Shift+Enter is a new line.
		first, second := "첫 줄 "+nonce, "둘째 줄"
		typeInComposer(a, first)
		pressKey(a, "Enter", chromedp.ModifierShift)
		typeInComposer(a, second)
		if v := run(a, chromedp.Value(chromedp.ID("composer"))); v != first+"\n"+second {
			t.Errorf("after Shift+Enter the composer holds %q, want %q", v, first+"\n"+second)
		}
		if n := postCount(a); n != posts {
			t.Errorf("Shift+Enter sent something (%d posts)", n-posts)
		}

		// Enter during an IME composition only ends the composition. Chromium marks the
		// keydown of a real IME with isComposing and keyCode 229; both are simulated.
		for _, init := range []string{`{key: "Enter", code: "Enter", isComposing: true, bubbles: true, cancelable: true}`,
			`{key: "Enter", code: "Enter", keyCode: 229, bubbles: true, cancelable: true}`} {
			prevented := eval[bool](a, `(() => { const e = new KeyboardEvent("keydown", `+init+`); document.getElementById("composer").dispatchEvent(e); return e.defaultPrevented })()`)
			if prevented || postCount(a) != posts {
				t.Errorf("keydown %s: the composer handled it as a send (defaultPrevented=%v, %d posts)", init, prevented, postCount(a)-posts)
			}
		}
		// And with the browser's own IME machinery: a composition in progress, then Enter.
		a.do(chromedp.Focus(chromedp.ID("composer")), cdpDo(input.ImeSetComposition, input.ImeSetCompositionParams{Text: "한", SelectionStart: 1, SelectionEnd: 1}))
		a.do(chromedp.Evaluate[chromedp.Void](`window.__e2e.keys = []`))
		pressKey(a, "Enter", 0)
		keys := eval[[]struct {
			Key         string `json:"key"`
			IsComposing bool   `json:"isComposing"`
		}](a, `window.__e2e.keys`)
		if len(keys) != 1 || keys[0].Key != "Enter" || !keys[0].IsComposing {
			t.Errorf("Enter during an IME composition reached the page as %+v, want one keydown with isComposing", keys)
		}
		if n := postCount(a); n != posts {
			t.Errorf("Enter during an IME composition sent the message (%d posts)", n-posts)
		}
		// End the composition without keeping its text, as if the user deleted it.
		a.do(cdpDo(input.ImeSetComposition, input.ImeSetCompositionParams{Text: ""}))
		setComposer(a, first+"\n"+second)

		// Enter sends; the line break is kept; the composer is cleared.
		pressEnter(a)
		text := first + "\n" + second
		waitJS(a, "A sees the two-line message", countTextJS(text)+" === 1", 5*time.Second)
		waitJS(a, "the composer is cleared after the send", `document.getElementById("composer").value === ""`, 3*time.Second)
		waitJS(b, "B sees the two-line message with its line break", countTextJS(text)+" === 1", 5*time.Second)
		if h := eval[float64](b, lineCountJS(text)); h < 1.8 {
			t.Errorf("B's bubble of a two-line message is %.1f lines high", h)
		}
		if n := postCount(a) - posts; n != 1 {
			t.Errorf("%d posts for one message", n)
		}
		if n := len(threadRows(a)) - rowsBefore; n != 1 {
			t.Errorf("A's thread grew by %d rows for one message", n)
		}

		// Screenshots of the exchange so far.
		screenshot(a, shots, "live-ko-thread-1280x800", 1280, 800, false)
		screenshot(a, shots, "live-ko-thread-390x844", 390, 844, true)
		screenshot(b, shots, "live-ko-thread-parent-1280x800", 1280, 800, false)
		a.do(chromedp.EmulateViewport(1280, 800))

		// Nothing to send: an error shows, nothing is posted.
		posts = postCount(a)
		setComposer(a, "   \n   ")
		pressEnter(a)
		waitJS(a, "the empty message error shows", `!document.getElementById("composer-error").classList.contains("hidden")`, 3*time.Second)
		if msg := eval[string](a, `document.getElementById("composer-error-text").textContent.trim()`); msg != "메시지를 입력하세요." {
			t.Errorf("error for a blank message = %q", msg)
		}
		if vis := shown(a, "#composer-retry"); vis {
			t.Error("a blank message offers a retry")
		}
		if n := postCount(a); n != posts {
			t.Errorf("a blank message was posted (%d posts)", n-posts)
		}
		// The button does the same as Enter.
		a.do(chromedp.Click(chromedp.ID("composer-send")))
		if n := postCount(a); n != posts {
			t.Errorf("a blank message was posted with the button (%d posts)", n-posts)
		}
		setComposer(a, "")
	})

	t.Run("offline and back", func(t *testing.T) {
		a, b := a.with(t), b.with(t)
		openThread(b, threadURLB(direct))
		connects := waitConnected(b, 1)
		draft := "보내지 않은 메모 " + nonce
		typeInComposer(b, draft)

		b.do(chromedp.Evaluate[chromedp.Void](`window.__e2eMarker = "before the drop"`))
		setOffline(b, proxy, true)
		t.Cleanup(func() { setOffline(b, proxy, false) })
		waitJS(b, "the lost-connection banner shows", `(() => { const s = document.getElementById("conn-status"); return s && s.checkVisibility() && s.textContent.trim() === "연결이 끊겼습니다 — 다시 연결 중..." })()`, 5*time.Second)
		screenshot(b, shots, "live-ko-offline-1280x800", 1280, 800, false)
		screenshot(b, shots, "live-ko-offline-390x844", 390, 844, true)
		b.do(chromedp.EmulateViewport(1280, 800))

		var texts []string
		for i := 1; i <= 5; i++ {
			text := fmt.Sprintf("오프라인 중 메시지 %d %s", i, nonce)
			texts = append(texts, text)
			typeInComposer(a, text)
			pressEnter(a)
			waitJS(a, "A sees "+text, countTextJS(text)+" === 1", 5*time.Second)
			waitJS(a, "A's composer is ready again", `document.getElementById("composer").value === "" && !document.getElementById("composer-send").disabled`, 5*time.Second)
		}
		if n := eval[int](b, countTextJS(texts[0])); n != 0 {
			t.Fatalf("B, offline, shows a message sent meanwhile: the tab is not offline")
		}

		// Stay offline long enough for the reconnect backoff to grow (0.5 s, 1 s, 2 s, then
		// 4 s between attempts): coming back must not wait for the end of it.
		waitJS(b, "B's reconnect attempts fail meanwhile", `window.__e2e.sseErrors >= 4`, 10*time.Second)
		setOffline(b, proxy, false)
		start := time.Now()
		allJS := "[" + strings.Join(mapEach(texts, countTextJS), ",") + "].every(n => n === 1)"
		waitJS(b, "B shows the 5 messages sent while offline", allJS, 20*time.Second)
		t.Logf("B showed the missed messages %s after coming back online; its stream: %v", time.Since(start).Round(time.Millisecond), eval[[]string](b, `window.__e2e.sse`))
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("B took %s after coming back online to show what it missed", took.Round(time.Millisecond))
		}
		waitConnected(b, connects+1)
		waitJS(b, `"다시 연결되었습니다" shows`, `window.__e2e.banner.some(s => s.visible && s.text === "다시 연결되었습니다")`, 5*time.Second)
		waitJS(b, "the banner goes away", `document.getElementById("conn-status").classList.contains("hidden")`, 6*time.Second)

		rows := threadRows(b)
		var seqs []int64
		for _, want := range texts {
			n := 0
			for _, r := range rows {
				if r.Text == want {
					n++
					seqs = append(seqs, r.Seq)
				}
			}
			if n != 1 {
				t.Errorf("B shows %q %d times, want once", want, n)
			}
		}
		if !slices.IsSorted(seqs) || len(slices.Compact(slices.Clone(seqs))) != len(seqs) {
			t.Errorf("B shows the messages out of order: seqs %v in sending order", seqs)
		}
		checkThreadOrder(t, rows)
		checkUniqueIDs(b)
		if v := run(b, chromedp.Value(chromedp.ID("composer"))); v != draft {
			t.Errorf("B's unsent text after the reconnect = %q, want %q", v, draft)
		}
		setComposer(b, "")
		// The page was not reloaded: what was put on it before is still there.
		if !eval[bool](b, `window.__e2eMarker === "before the drop"`) {
			t.Error("B's page was reloaded")
		}
	})

	t.Run("offline blip", func(t *testing.T) {
		b := b.with(t)
		// The browser says it is offline and back, but the open stream survives (a short
		// blip, or a network change the socket did not notice): the banner must not stay.
		connects := waitConnected(b, 1)
		b.do(chromedp.Evaluate[chromedp.Void](`window.__e2e.banner = []`))
		setOffline(b, nil, true)
		waitJS(b, "the lost-connection banner shows", `(() => { const s = document.getElementById("conn-status"); return s.checkVisibility() && s.textContent.trim() === "연결이 끊겼습니다 — 다시 연결 중..." })()`, 5*time.Second)
		setOffline(b, nil, false)
		waitJS(b, `"다시 연결되었습니다" shows after the blip`, `window.__e2e.banner.some(s => s.visible && s.text === "다시 연결되었습니다")`, 5*time.Second)
		waitJS(b, "the banner goes away after the blip", `document.getElementById("conn-status").classList.contains("hidden")`, 6*time.Second)
		text := "잠깐 끊긴 뒤의 메시지 " + nonce
		teacherAPI.send(t, direct, text)
		waitJS(b, "B still gets messages after the blip", countTextJS(text)+" === 1", 5*time.Second)
		t.Logf("live stream connections: %d before the blip, %d after", connects, eval[int](b, `window.__e2e.connects`))
	})

	t.Run("retry without duplicates", func(t *testing.T) {
		a, b := a.with(t), b.with(t)
		openThread(a, threadURL(direct))
		if !strings.HasSuffix(b.location(), "/c/"+strconv.FormatInt(direct, 10)) {
			openThread(b, threadURLB(direct))
		}

		// A is offline: the send fails, the text stays, a retry is offered.
		text := "재전송 테스트 " + nonce
		setOffline(a, nil, true)
		t.Cleanup(func() { setOffline(a, nil, false) })
		typeInComposer(a, text)
		pressEnter(a)
		waitJS(a, "the retry button shows", `(() => { const r = document.getElementById("composer-retry"); return r && r.checkVisibility() })()`, 10*time.Second)
		if msg := eval[string](a, `document.getElementById("composer-error-text").textContent.trim()`); msg != "메시지를 보내지 못했습니다." {
			t.Errorf("send error = %q", msg)
		}
		if v := run(a, chromedp.Value(chromedp.ID("composer"))); v != text {
			t.Errorf("after a failed send the composer holds %q, want %q", v, text)
		}
		screenshot(a, shots, "live-ko-retry-1280x800", 1280, 800, false)
		screenshot(a, shots, "live-ko-retry-390x844", 390, 844, true)
		a.do(chromedp.EmulateViewport(1280, 800))

		setOffline(a, nil, false)
		a.do(chromedp.Click(chromedp.ID("composer-retry")))
		waitJS(a, "the retried message shows", countTextJS(text)+" === 1", 5*time.Second)
		waitJS(a, "the composer is cleared and the error gone", `document.getElementById("composer").value === "" && document.getElementById("composer-error").classList.contains("hidden")`, 3*time.Second)
		waitJS(b, "B sees the retried message", countTextJS(text)+" === 1", 5*time.Second)
		if n := teacherAPI.countBody(t, direct, text); n != 1 {
			t.Errorf("the server stored %q %d times, want once", text, n)
		}

		// The worse case: the server stored the message but its answer was lost. The
		// retry carries the same client_msg_id and must not store it again.
		text2 := "응답이 사라진 메시지 " + nonce
		stop := failNextPostResponse(a, "*/c/*/messages")
		typeInComposer(a, text2)
		pressEnter(a)
		waitJS(a, "the retry button shows after the lost answer", `(() => { const r = document.getElementById("composer-retry"); return r && r.checkVisibility() })()`, 10*time.Second)
		stop()
		if n := teacherAPI.countBody(t, direct, text2); n != 1 {
			t.Fatalf("the server stored %q %d times before the retry, want once (the answer was lost, not the request)", text2, n)
		}
		a.do(chromedp.Click(chromedp.ID("composer-retry")))
		waitJS(a, "the composer is cleared after the retry", `document.getElementById("composer").value === "" && document.getElementById("composer-error").classList.contains("hidden")`, 5*time.Second)
		waitJS(a, "A shows the message", countTextJS(text2)+" >= 1", 5*time.Second)
		if n := eval[int](a, countTextJS(text2)); n != 1 {
			t.Errorf("A shows %q %d times, want once", text2, n)
		}
		waitJS(b, "B shows the message", countTextJS(text2)+" >= 1", 5*time.Second)
		if n := eval[int](b, countTextJS(text2)); n != 1 {
			t.Errorf("B shows %q %d times, want once", text2, n)
		}
		if n := teacherAPI.countBody(t, direct, text2); n != 1 {
			t.Errorf("after the retry the server has %q %d times, want once", text2, n)
		}
		checkUniqueIDs(a)
		checkUniqueIDs(b)
	})

	t.Run("history", func(t *testing.T) {
		b := b.with(t)
		conv := teacherAPI.createGroup(t, "지난 이야기 "+nonce, demoParent.Sub)
		const total = 130
		for i := 1; i <= total; i++ {
			// Runs of three by each sender, so that grouping changes as pages join.
			api := teacherAPI
			if (i-1)/3%2 == 1 {
				api = parentAPI
			}
			api.send(t, conv, fmt.Sprintf("기록 %03d", i))
		}
		// The page asks the server for what came since it was rendered once its live
		// stream is up; the reader scrolls up before the answer comes.
		var middle float64
		release := holdRequests(b, "*/messages?after_seq=*", func() {
			waitJS(b, "the thread opens scrolled to the bottom", atBottomJS+" <= 2", 5*time.Second)
			hist := historyRows(b)
			if len(hist) != 50 || hist[0].Text != "기록 081" || hist[len(hist)-1].Text != "기록 130" {
				t.Fatalf("the thread opens with %d history rows (%s … %s), want 50: 기록 081 … 기록 130", len(hist), firstText(hist), lastText(hist))
			}
			if !eval[bool](b, `!!document.getElementById("older")`) {
				t.Fatal("no #older loader above the first page")
			}
			middle = eval[float64](b, `(() => { const s = document.getElementById("thread-scroll"); s.scrollTop = Math.floor(s.scrollHeight / 2); return s.scrollTop })()`)
		})
		b.do(chromedp.Navigate(threadURLB(conv)), chromedp.WaitVisible(chromedp.ID("composer")))
		release()
		waitJS(b, "the catch-up answer arrives", `performance.getEntriesByType("resource").some(e => e.name.includes("after_seq=") && e.responseEnd > 0)`, 5*time.Second)
		b.do(chromedp.Evaluate[chromedp.Void](`new Promise(r => setTimeout(() => requestAnimationFrame(() => requestAnimationFrame(r)), 50))`, chromedp.EvalAwaitPromise))
		if now := eval[float64](b, `document.getElementById("thread-scroll").scrollTop`); math.Abs(now-middle) > 2 {
			t.Errorf("the catch-up moved the reader's view from %.0f to %.0f", middle, now)
		}

		// Scrolled to the top, the page before loads and the view stays where it was.
		anchor := eval[struct {
			ID  string  `json:"id"`
			Top float64 `json:"top"`
		}](b, `(() => {
			const s = document.getElementById("thread-scroll");
			s.scrollTop = 0;
			const first = document.querySelector("#messages > li.msg");
			const bubble = first.querySelector(".bubble-me, .bubble-them, .whitespace-pre-wrap") || first;
			return {id: first.id, top: bubble.getBoundingClientRect().top};
		})()`)
		waitJS(b, "the previous 50 load", `document.querySelectorAll("#messages > li.msg").length >= 100`, 5*time.Second)
		b.do(chromedp.Evaluate[chromedp.Void](`new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))`, chromedp.EvalAwaitPromise))
		after := eval[float64](b, fmt.Sprintf(`(() => { const li = document.getElementById(%q); return (li.querySelector(".bubble-me, .bubble-them, .whitespace-pre-wrap") || li).getBoundingClientRect().top })()`, anchor.ID))
		if d := after - anchor.Top; math.Abs(d) > 4 {
			t.Errorf("loading older messages moved the message the user was looking at by %.0f px (%s: %.0f → %.0f)", d, anchor.ID, anchor.Top, after)
		} else {
			t.Logf("loading older messages moved the view by %.1f px", d)
		}
		hist := historyRows(b)
		if len(hist) != 100 || hist[0].Text != "기록 031" {
			t.Errorf("after one older page: %d rows from %s, want 100 from 기록 031", len(hist), firstText(hist))
		}
		// Once more to the top: the rest, and no loader any more.
		b.do(chromedp.Evaluate[chromedp.Void](`document.getElementById("thread-scroll").scrollTop = 0`))
		waitJS(b, "the oldest page loads", fmt.Sprintf(`document.querySelectorAll("#messages > li.msg").length >= %d && !document.getElementById("older")`, total), 5*time.Second)
		hist = historyRows(b)
		for i, r := range hist {
			if want := fmt.Sprintf("기록 %03d", i+1); r.Text != want {
				t.Errorf("history row %d is %q, want %q", i, r.Text, want)
				break
			}
		}
		if len(hist) != total {
			t.Errorf("the whole history shows %d rows, want %d", len(hist), total)
		}
		checkThreadOrder(t, threadRows(b))
		checkUniqueIDs(b)

		// Scrolled up, a new message does not move the view: a pill says it is there.
		scrollTop := eval[float64](b, `(() => { const s = document.getElementById("thread-scroll"); s.scrollTop = Math.floor(s.scrollHeight / 3); return s.scrollTop })()`)
		newText := "스크롤 위에서 받은 메시지 " + nonce
		teacherAPI.send(t, conv, newText)
		waitJS(b, "the new message arrives", countTextJS(newText)+" === 1", 5*time.Second)
		waitJS(b, "the new-message pill shows", `(() => { const p = document.getElementById("new-pill"); return p && !p.hidden && p.checkVisibility() })()`, 3*time.Second)
		if pill := eval[string](b, `document.getElementById("new-pill").textContent.trim()`); pill != "새 메시지 ↓" {
			t.Errorf("pill text = %q", pill)
		}
		if now := eval[float64](b, `document.getElementById("thread-scroll").scrollTop`); math.Abs(now-scrollTop) > 2 {
			t.Errorf("the view moved from %.0f to %.0f while the user was reading above", scrollTop, now)
		}
		screenshot(b, shots, "live-ko-new-pill-1280x800", 1280, 800, false)
		b.do(chromedp.EmulateViewport(1280, 800))
		b.do(chromedp.Click(chromedp.ID("new-pill")))
		waitJS(b, "clicking the pill scrolls to the bottom", atBottomJS+" <= 2 && document.getElementById(\"new-pill\").hidden", 3*time.Second)
	})

	t.Run("message while connecting", func(t *testing.T) {
		b := b.with(t)
		// A message sent after B's page was rendered but before its live stream was
		// up must still show.
		text := "연결 중에 보낸 메시지 " + nonce
		release := holdRequests(b, "*/events*", func() { teacherAPI.send(t, direct, text) })
		b.do(chromedp.Navigate(threadURLB(direct)))
		release()
		waitConnected(b, 1)
		waitJS(b, "the message sent while B connected shows", countTextJS(text)+" === 1", 5*time.Second)
	})

	t.Run("without JavaScript", func(t *testing.T) {
		a := a.with(t)
		c := newLiveTab(t, browser, "ko")
		signInDev(c, srv.URL, demoParent.Name)
		c.do(cdpDo(emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}))
		c.do(chromedp.Navigate(threadURL(direct)), chromedp.WaitVisible(chromedp.ID("composer")))
		text := "자바스크립트 없이 보냅니다 " + nonce
		c.do(chromedp.Focus(chromedp.ID("composer")), cdpDo(input.InsertText, input.InsertTextParams{Text: text}))
		if _, err := runErr(c, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.ID("composer-send")))); err != nil {
			t.Fatalf("post the composer without JavaScript: %v", err)
		}
		loc := run(c, chromedp.Location())
		if !regexp.MustCompile(`/c/` + strconv.FormatInt(direct, 10) + `#msg-\d+$`).MatchString(loc) {
			t.Errorf("after posting without JavaScript the page is %s, want the thread with #msg-{id}", loc)
		}
		if eval[bool](c, `typeof window.htmx !== "undefined"`) {
			t.Fatal("scripts ran in the tab with JavaScript disabled")
		}
		if n := eval[int](c, countTextJS(text)); n != 1 {
			t.Errorf("the thread after the post shows %q %d times, want once", text, n)
		}
		waitJS(a, "A sees the message posted without JavaScript", countTextJS(text)+" === 1", 5*time.Second)
		// A blank message without JavaScript: the server says so on the page, in Korean,
		// and stores nothing.
		c.do(chromedp.SetValue(chromedp.ID("composer"), "   "))
		if _, err := runErr(c, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.ID("composer-send")))); err != nil {
			t.Fatalf("post a blank message without JavaScript: %v", err)
		}
		if !shown(c, "#composer-error") {
			t.Error("posting a blank message without JavaScript shows no error")
		} else if msg := eval[string](c, `document.getElementById("composer-error-text").textContent.trim()`); msg != "메시지를 입력하세요." {
			t.Errorf("the error for a blank message posted without JavaScript is %q on a Korean page, want %q", msg, "메시지를 입력하세요.")
		}
		if n := parentAPI.countBody(t, direct, ""); n != 0 {
			t.Errorf("a blank message was stored")
		}
	})

	t.Run("screenshots", func(t *testing.T) {
		a := a.with(t)
		a.do(chromedp.Navigate(srv.URL+"/new"), chromedp.WaitVisible(chromedp.ID("people-q")))
		screenshot(a, shots, "live-ko-new-1280x800", 1280, 800, false)
		screenshot(a, shots, "live-ko-new-390x844", 390, 844, true)
		a.do(chromedp.EmulateViewport(1280, 800))

		en := newLiveTab(t, browser, "en")
		signInDev(en, srv.URL, demoTeacher.Name)
		openThread(en, threadURL(direct))
		if l := eval[string](en, `(() => { const l = Array.from(document.querySelectorAll("label")).find(l => l.control && l.control.id === "composer"); return l ? l.textContent.trim() : "" })()`); l != "Message" {
			t.Errorf(`English composer label = %q, want "Message"`, l)
		}
		screenshot(en, shots, "live-en-thread-1280x800", 1280, 800, false)
		screenshot(en, shots, "live-en-thread-390x844", 390, 844, true)
		// Narrowed to a phone, a reader who was at the newest message still sees it.
		if d := eval[float64](en, atBottomJS); d > 2 {
			t.Errorf("after the window narrowed to a phone's, the thread is %.0f px above its newest message", d)
		}
		checkLiveConsole(en)
	})

	checkLiveConsole(a)
	checkLiveConsole(b)
	checkServerErrors(t, srv)
}

// knownBug reports a bug already described to the people who own that code: it fails the
// test only with E2E_STRICT=1, so that the rest of the test keeps guarding what works.
func knownBug(t testing.TB, owner, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf("KNOWN BUG (%s): ", owner) + fmt.Sprintf(format, args...)
	if os.Getenv("E2E_STRICT") == "1" {
		t.Error(msg)
	} else {
		t.Log(msg)
	}
}

// ---------------------------------------------------------------------------------------
// People and the JSON API

type demoPerson struct{ Sub, Name, Role string }

var (
	demoTeacher = demoPerson{"demo-teacher-kim", "김선영", "teacher"}
	demoParent  = demoPerson{"demo-parent-choi", "최지훈", "parent"}
)

// liveAPI calls the JSON API as one demo person, with a token signed by the dev secret.
type liveAPI struct {
	srv   *server
	token string
}

func newLiveAPI(t *testing.T, srv *server, p demoPerson) *liveAPI {
	t.Helper()
	token, err := auth.MintToken([]byte(auth.DevSecret), "messenger", auth.Claims{
		Issuer: "dreamseed-portal", Subject: p.Sub, Name: p.Name, Role: p.Role,
		OrgID: "demo-org-dreamseed", ZoneID: "demo-zone-grade5",
	}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &liveAPI{srv: srv, token: token}
}

var liveHTTP = &http.Client{Timeout: 10 * time.Second}

// call does one API request and decodes the answer into out; it fails the test unless
// the status is one of want.
func (c *liveAPI) call(t testing.TB, method, path string, in, out any, want ...int) {
	t.Helper()
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := liveHTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if !slices.Contains(want, resp.StatusCode) {
		t.Fatalf("%s %s: %d %s, want %v", method, path, resp.StatusCode, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, raw)
		}
	}
}

type liveMessage struct {
	ID   int64  `json:"id"`
	Seq  int64  `json:"seq"`
	Body string `json:"body"`
}

func (c *liveAPI) send(t testing.TB, convID int64, body string) liveMessage {
	t.Helper()
	var m liveMessage
	c.call(t, http.MethodPost, fmt.Sprintf("/api/v1/conversations/%d/messages", convID),
		map[string]string{"body": body, "client_msg_id": uuid.NewString()}, &m, http.StatusCreated)
	return m
}

func (c *liveAPI) createGroup(t testing.TB, title string, members ...string) int64 {
	t.Helper()
	var conv struct {
		ID int64 `json:"id"`
	}
	c.call(t, http.MethodPost, "/api/v1/conversations",
		map[string]any{"kind": "group", "title": title, "participant_ids": members}, &conv, http.StatusCreated)
	return conv.ID
}

// countBody answers how many messages of a conversation have exactly body, reading the
// whole history page by page.
func (c *liveAPI) countBody(t testing.TB, convID int64, body string) int {
	t.Helper()
	n := 0
	before := int64(0)
	for {
		path := fmt.Sprintf("/api/v1/conversations/%d/messages?limit=200", convID)
		if before > 0 {
			path += "&before_seq=" + strconv.FormatInt(before, 10)
		}
		var page struct {
			Messages []liveMessage `json:"messages"`
			HasMore  bool          `json:"has_more"`
		}
		c.call(t, http.MethodGet, path, nil, &page, http.StatusOK)
		for _, m := range page.Messages {
			if m.Body == body {
				n++
			}
			before = m.Seq
		}
		if !page.HasMore || len(page.Messages) == 0 {
			return n
		}
	}
}

// demoConversationIDs answers the demo teacher's direct conversation with the demo
// parent and the class's group.
func demoConversationIDs(t *testing.T, teacher *liveAPI) (direct, group int64) {
	t.Helper()
	var list struct {
		Conversations []struct {
			ID           int64  `json:"id"`
			Kind         string `json:"kind"`
			Title        string `json:"title"`
			Participants []struct {
				ID string `json:"id"`
			} `json:"participants"`
		} `json:"conversations"`
	}
	teacher.call(t, http.MethodGet, "/api/v1/conversations", nil, &list, http.StatusOK)
	for _, c := range list.Conversations {
		switch {
		case c.Kind == "direct" && slices.ContainsFunc(c.Participants, func(p struct {
			ID string `json:"id"`
		}) bool {
			return p.ID == demoParent.Sub
		}):
			direct = c.ID
		case c.Kind == "group" && c.Title == "5학년 2반 알림방":
			group = c.ID
		}
	}
	if direct == 0 || group == 0 {
		t.Fatalf("the demo data lacks the teacher's direct conversation with the parent or the class group: %+v", list)
	}
	return direct, group
}

// ---------------------------------------------------------------------------------------
// Tabs

// with answers the tab reporting to t: a sub-test's failures must go to the sub-test.
func (tb *tab) with(t testing.TB) *tab {
	c := *tb
	c.t = t
	return &c
}

// liveProbe is installed in every page of a live tab before its scripts run: it counts
// the composer's posts, the live stream's connections, the keydowns of the composer and
// the states of the connection banner.
const liveProbe = `(() => {
  const e2e = window.__e2e = {posts: 0, connects: 0, sseErrors: 0, keys: [], banner: [], fetches: []};
  const realFetch = window.fetch;
  window.fetch = function (input, init) {
    const method = String((init && init.method) || "GET").toUpperCase();
    if (method === "POST" && /\/messages$/.test(String(input))) e2e.posts++;
    e2e.fetches.push(method + " " + String(input));
    return realFetch.apply(this, arguments);
  };
  const t0 = Date.now();
  e2e.sse = [];
  document.addEventListener("htmx:sse:before:connection", (e) => { e2e.sse.push("before#" + ((e.detail.connection || {}).attempt) + "@" + (Date.now() - t0)); });
  document.addEventListener("htmx:sse:after:connection", () => { e2e.connects++; e2e.sse.push("connected@" + (Date.now() - t0)); });
  document.addEventListener("htmx:sse:error", () => { e2e.sseErrors++; e2e.sse.push("error@" + (Date.now() - t0)); });
  addEventListener("offline", () => e2e.sse.push("offline@" + (Date.now() - t0)));
  addEventListener("online", () => e2e.sse.push("online@" + (Date.now() - t0)));
  document.addEventListener("keydown", (e) => {
    if (e.target && e.target.id === "composer") e2e.keys.push({key: e.key, keyCode: e.keyCode, isComposing: e.isComposing, prevented: e.defaultPrevented});
  }, true);
  document.addEventListener("DOMContentLoaded", () => {
    const box = document.getElementById("conn-status");
    if (!box) return;
    const record = () => {
      const s = {text: box.textContent.trim(), visible: !box.classList.contains("hidden"), at: Date.now()};
      const last = e2e.banner[e2e.banner.length - 1];
      if (!last || last.text !== s.text || last.visible !== s.visible) e2e.banner.push(s);
    };
    new MutationObserver(record).observe(box, {attributes: true, childList: true, subtree: true, characterData: true});
  });
})();`

// newLiveTab is newTab with the live probe installed.
func newLiveTab(t *testing.T, browser context.Context, lang string) *tab {
	t.Helper()
	tb := newTab(t, browser, lang)
	tb.do(cdpDo(page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: liveProbe}))
	return tb
}

// cdpDo is an action that sends one protocol command and ignores its result.
func cdpDo[P, R any](cmd cdp.Command[P, R], params P) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		_, err := cdp.Call(ctx, target, cmd, params)
		return err
	})
}

// openThread opens a thread and waits until its live stream is connected.
func openThread(tb *tab, url string) {
	tb.t.Helper()
	tb.do(chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("composer")))
	waitConnected(tb, 1)
}

// waitConnected waits until the page's live stream has connected n times; it answers
// how many times it has.
func waitConnected(tb *tab, n int) int {
	tb.t.Helper()
	if _, _, ok := pollJS(tb, fmt.Sprintf(`!!(window.__e2e && window.__e2e.connects >= %d)`, n), 10*time.Second, func(b bool) bool { return b }); !ok {
		var console []string
		for _, m := range tb.consoleMessages() {
			console = append(console, describe(m))
		}
		tb.t.Fatalf("the live stream connects (%d): not within 10s (at %s); console %q; stream events %s; fetches %s; page %s", n, tb.location(), console,
			eval[string](tb, `JSON.stringify(window.__e2e && window.__e2e.sse)`),
			eval[string](tb, `JSON.stringify(window.__e2e && window.__e2e.fetches.slice(-10))`),
			eval[string](tb, `JSON.stringify({ready: document.readyState, visibility: document.visibilityState, htmx: typeof htmx, age: Math.round(performance.now()), resources: performance.getEntriesByType("resource").map(e => e.name.replace(location.origin, "") + " " + Math.round(e.duration))})`))
	}
	return eval[int](tb, `window.__e2e.connects`)
}

// waitJS polls a JavaScript expression until it is true; it fails the test with what
// after timeout. It answers how long it waited.
func waitJS(tb *tab, what, expr string, timeout time.Duration) time.Duration {
	tb.t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(tb.ctx, timeout+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr,
		chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(timeout))); err != nil {
		tb.t.Fatalf("%s: not within %s: %v (at %s)", what, timeout, err, tb.location())
	}
	return time.Since(start)
}

// setOffline cuts the tab off the network (new requests fail and navigator.onLine says
// so; with proxy, the tab's open connections break too) or brings it back.
func setOffline(tb *tab, proxy *cutProxy, offline bool) {
	tb.t.Helper()
	if proxy != nil && offline {
		proxy.setDown(true)
		defer proxy.setDown(false) // the emulation below keeps the tab off from here on
	}
	conds := []*network.Conditions{}
	if offline {
		conds = append(conds, &network.Conditions{Offline: true, DownloadThroughput: -1, UploadThroughput: -1})
	}
	tb.do(
		cdpDo(network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{MatchedNetworkConditions: conds}),
		cdpDo(network.OverrideNetworkState, network.OverrideNetworkStateParams{Offline: offline, DownloadThroughput: -1, UploadThroughput: -1}),
	)
}

// failNextPostResponse lets the next POST matching pattern reach the server and then
// fails its response as a dropped connection would: the server did the work, the page
// never hears of it. stop ends the interception.
func failNextPostResponse(tb *tab, pattern string) (stop func()) {
	tb.t.Helper()
	failed := false
	return interceptRequests(tb, pattern, fetch.RequestStageResponse, func(ctx context.Context, target *chromedp.Target, ev *fetch.EventRequestPaused) error {
		if !failed && ev.Request.Method == http.MethodPost {
			failed = true
			_, err := cdp.Call(ctx, target, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonConnectionReset})
			return err
		}
		_, err := cdp.Call(ctx, target, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
		return err
	})
}

// interceptRequests pauses each request matching pattern at stage and hands it to
// answer, which continues, fulfils or fails it, until stop.
func interceptRequests(tb *tab, pattern string, stage fetch.RequestStage,
	answer func(context.Context, *chromedp.Target, *fetch.EventRequestPaused) error) (stop func()) {
	tb.t.Helper()
	ctx, cancel := context.WithCancel(tb.ctx)
	events := chromedp.Events(ctx, fetch.RequestPaused)
	tb.do(cdpDo(fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: pattern, RequestStage: stage}}}))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev, err := range events {
			if err != nil {
				return
			}
			act := chromedp.Func(func(ctx context.Context, target *chromedp.Target) error { return answer(ctx, target, &ev) })
			if err := chromedp.Do(tb.ctx, act); err != nil {
				tb.t.Logf("interception: %v", err)
			}
		}
	}()
	return func() {
		tb.do(cdpDo(fetch.Disable, cdp.Empty{}))
		cancel()
		<-done
	}
}

// holdRequests holds the requests matching pattern until release, which first runs
// meanwhile and then lets them go.
func holdRequests(tb *tab, pattern string, meanwhile func()) (release func()) {
	tb.t.Helper()
	ctx, cancel := context.WithCancel(tb.ctx)
	events := chromedp.Events(ctx, fetch.RequestPaused)
	tb.do(cdpDo(fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: pattern}}}))
	held := make(chan fetch.RequestID, 16)
	go func() {
		for ev, err := range events {
			if err != nil {
				return
			}
			held <- ev.RequestID
		}
	}()
	return func() {
		tb.t.Helper()
		var id fetch.RequestID
		select {
		case id = <-held:
		case <-time.After(10 * time.Second):
			tb.t.Fatalf("no request matching %s to hold", pattern)
		}
		meanwhile()
		tb.do(cdpDo(fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: id}), cdpDo(fetch.Disable, cdp.Empty{}))
		cancel()
	}
}

// ---------------------------------------------------------------------------------------
// What the page shows

// jsString is s as a JavaScript string literal.
func jsString(s string) string {
	raw, _ := json.Marshal(s)
	return string(raw)
}

func mapEach(ss []string, f func(string) string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = f(s)
	}
	return out
}

// bubbleTextJS is the text of a message row's bubble as the user reads it.
const bubbleTextJS = `((li) => (li.querySelector(".bubble-me, .bubble-them, .whitespace-pre-wrap") || li).innerText.trim())`

// countTextJS counts the thread's message rows whose text is text.
func countTextJS(text string) string {
	return fmt.Sprintf(`Array.from(document.querySelectorAll("#messages > li.msg")).filter(li => %s(li) === %s).length`, bubbleTextJS, jsString(text))
}

// lineCountJS answers how many lines high the bubble with text is.
func lineCountJS(text string) string {
	return fmt.Sprintf(`(() => { const li = Array.from(document.querySelectorAll("#messages > li.msg")).find(li => %s(li) === %s); const b = li.querySelector(".bubble-me, .bubble-them, .whitespace-pre-wrap"); const cs = getComputedStyle(b); return (b.clientHeight - parseFloat(cs.paddingTop) - parseFloat(cs.paddingBottom)) / parseFloat(cs.lineHeight) })()`, bubbleTextJS, jsString(text))
}

// atBottomJS is how many pixels the thread is scrolled above its bottom.
const atBottomJS = `(() => { const s = document.getElementById("thread-scroll"); return s.scrollHeight - s.scrollTop - s.clientHeight })()`

type msgRow struct {
	ID        string `json:"id"`
	Seq       int64  `json:"seq"`
	Sender    string `json:"sender"`
	Mine      bool   `json:"mine"`
	RightSide bool   `json:"right"` // the bubble sits in the right half of the thread
	Text      string `json:"text"`
}

const threadRowsJS = `(() => {
  const list = document.getElementById("messages");
  if (!list) return [];
  const box = list.getBoundingClientRect(), middle = box.left + box.width / 2;
  return Array.from(list.querySelectorAll(":scope > li.msg")).map(li => {
    const b = li.querySelector(".bubble-me, .bubble-them, .whitespace-pre-wrap") || li;
    const r = b.getBoundingClientRect();
    return {id: li.id, seq: +li.dataset.seq, sender: li.dataset.sender || "", mine: li.classList.contains("mine"),
      right: r.left > middle && r.right > box.right - 40, text: ` + bubbleTextJS + `(li)};
  });
})()`

func threadRows(tb *tab) []msgRow {
	tb.t.Helper()
	return eval[[]msgRow](tb, threadRowsJS)
}

func rowWithText(tb *tab, text string) msgRow {
	tb.t.Helper()
	for _, r := range threadRows(tb) {
		if r.Text == text {
			return r
		}
	}
	tb.t.Fatalf("no message %q in the thread", text)
	return msgRow{}
}

func historyRows(tb *tab) []msgRow {
	var out []msgRow
	for _, r := range threadRows(tb) {
		if strings.HasPrefix(r.Text, "기록 ") {
			out = append(out, r)
		}
	}
	return out
}

func firstText(rows []msgRow) string {
	if len(rows) == 0 {
		return "nothing"
	}
	return rows[0].Text
}

func lastText(rows []msgRow) string {
	if len(rows) == 0 {
		return "nothing"
	}
	return rows[len(rows)-1].Text
}

// checkThreadOrder checks that the rows are in strictly increasing seq order, each once.
func checkThreadOrder(t testing.TB, rows []msgRow) {
	t.Helper()
	for i := 1; i < len(rows); i++ {
		if rows[i].Seq <= rows[i-1].Seq {
			t.Errorf("thread rows out of order: %s (seq %d) after %s (seq %d)", rows[i].ID, rows[i].Seq, rows[i-1].ID, rows[i-1].Seq)
		}
	}
}

// checkUniqueIDs fails the test for any id used twice in the page.
func checkUniqueIDs(tb *tab) {
	tb.t.Helper()
	dups := eval[[]string](tb, `(() => { const seen = {}, dups = []; document.querySelectorAll("[id]").forEach(n => { if (seen[n.id]) dups.push(n.id); seen[n.id] = true; }); return dups })()`)
	if len(dups) > 0 {
		tb.t.Errorf("ids used more than once in the page: %q", dups)
	}
}

// postCount answers how many messages the page has posted.
func postCount(tb *tab) int {
	tb.t.Helper()
	return eval[int](tb, `window.__e2e.posts`)
}

func shown(tb *tab, selector string) bool {
	tb.t.Helper()
	return eval[bool](tb, fmt.Sprintf(`(() => { const n = document.querySelector(%s); return !!n && n.checkVisibility() })()`, jsString(selector)))
}

// typeInComposer types text at the end of the composer, as an IME or a paste would.
func typeInComposer(tb *tab, text string) {
	tb.t.Helper()
	tb.do(chromedp.Focus(chromedp.ID("composer")),
		chromedp.Evaluate[chromedp.Void](`(() => { const c = document.getElementById("composer"); c.selectionStart = c.selectionEnd = c.value.length })()`),
		cdpDo(input.InsertText, input.InsertTextParams{Text: text}))
}

// setComposer replaces the composer's text, as selecting all and typing would.
func setComposer(tb *tab, text string) {
	tb.t.Helper()
	tb.do(chromedp.Focus(chromedp.ID("composer")),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("composer").select()`))
	if text == "" {
		tb.do(chromedp.KeyEvent(kb.Delete))
		return
	}
	for i, line := range strings.Split(text, "\n") {
		if i > 0 {
			pressKey(tb, "Enter", chromedp.ModifierShift)
		}
		if line != "" {
			tb.do(cdpDo(input.InsertText, input.InsertTextParams{Text: line}))
		}
	}
}

func pressEnter(tb *tab) {
	tb.t.Helper()
	tb.do(chromedp.Focus(chromedp.ID("composer")))
	pressKey(tb, "Enter", 0)
}

// pressKey presses Enter (or another key whose text is its name's first letter) as a
// keyboard does: one keydown carrying the text, so that a keydown the page prevents types
// nothing. (chromedp.KeyEvent sends the text as a separate char event, which Chromium types
// even when the keydown was prevented, which a real keyboard does not.)
func pressKey(tb *tab, key string, modifiers chromedp.Modifier) {
	tb.t.Helper()
	text, code := key[:1], int64(key[0])
	if key == "Enter" {
		text, code = "\r", 13
	}
	down := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyDown, Modifiers: int64(modifiers), Key: key, Code: key,
		WindowsVirtualKeyCode: code, NativeVirtualKeyCode: code, Text: text, UnmodifiedText: text}
	up := down
	up.Type, up.Text, up.UnmodifiedText = input.DispatchKeyEventTypeKeyUp, "", ""
	tb.do(cdpDo(input.DispatchKeyEvent, down), cdpDo(input.DispatchKeyEvent, up))
}

var titleCountRE = regexp.MustCompile(`^\((\d+)\+?\) `)

// titleCount answers the unread count in the page title, 0 without one.
func titleCount(tb *tab) int {
	tb.t.Helper()
	m := titleCountRE.FindStringSubmatch(run(tb, chromedp.Title()))
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

type badgeState struct {
	Count   int    `json:"count"` // data-unread, 0 without
	Text    string `json:"text"`
	Visible bool   `json:"visible"`
}

func badgeJS(convID int64) string {
	return fmt.Sprintf(`(() => { const b = document.querySelector("#conv-%d [data-role=badge]"); if (!b) return {count: -1, text: "", visible: false}; return {count: +(b.dataset.unread || 0), text: b.querySelector("[data-role=count]").textContent.trim(), visible: b.checkVisibility()} })()`, convID)
}

func badge(tb *tab, convID int64) badgeState {
	tb.t.Helper()
	return eval[badgeState](tb, badgeJS(convID))
}

// firstListRow answers the conversation on top of the list.
func firstListRow(tb *tab) int64 {
	tb.t.Helper()
	id := eval[string](tb, `(() => { const li = document.querySelector("#conversation-rows > li"); return li ? li.dataset.conversation || "" : "" })()`)
	n, _ := strconv.ParseInt(id, 10, 64)
	return n
}

// checkLiveConsole is checkConsole for tabs that went offline on purpose: the failed
// requests of that time are expected, anything else is not.
func checkLiveConsole(tb *tab) {
	tb.t.Helper()
	for _, m := range tb.consoleMessages() {
		// htmx logs every failed attempt of the live stream as an error, and a fragment
		// (the list) the cut network did not fetch; a request the cut network drops before
		// its answer is reset, or empty (the proxy accepted it, then died).
		expected := strings.Contains(m.Text, "ERR_INTERNET_DISCONNECTED") || strings.Contains(m.Text, "ERR_CONNECTION_RESET") ||
			strings.Contains(m.Text, "ERR_EMPTY_RESPONSE") ||
			strings.Contains(m.Text, "ERR_INCOMPLETE_CHUNKED_ENCODING") || strings.Contains(m.Text, "ERR_SOCKET_NOT_CONNECTED") ||
			strings.Contains(m.Text, "htmx:sse:error") || strings.Contains(m.Text, "htmx:error: Failed to fetch")
		bad := m.Type == chromedp.ConsoleError || m.IsException() ||
			strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "CSP violation")
		if bad && !expected {
			tb.t.Errorf("console (%s): %s", tb.lang, describe(m))
		} else {
			tb.t.Logf("console (%s): %s", tb.lang, describe(m))
		}
	}
}

// cutProxy is a TCP proxy in front of the server whose connections can be cut, as a
// network that drops would: open connections break, new ones fail while it is down.
type cutProxy struct {
	URL    string
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
}

func newCutProxy(t testing.TB, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{URL: "http://localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.setDown(true)
	})
	return p
}

func (p *cutProxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.forward(in)
	}
}

func (p *cutProxy) forward(in net.Conn) {
	out, err := net.Dial("tcp", p.target)
	if err != nil {
		in.Close()
		return
	}
	if !p.track(in, out) {
		reset(in)
		out.Close()
		return
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(out, in); done <- struct{}{} }()
	go func() { io.Copy(in, out); done <- struct{}{} }()
	<-done
	in.Close()
	out.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, in)
	delete(p.conns, out)
	p.mu.Unlock()
}

func (p *cutProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

// setDown cuts every open connection (with a reset, as a dead network answers) and
// refuses new ones while down.
func (p *cutProxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			reset(c)
			delete(p.conns, c)
		}
	}
}

func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}
