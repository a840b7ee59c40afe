package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// focusJS describes the focused element as a user sees it: what it is, its name as far
// as the page tells, and whether the browser draws its keyboard focus.
const focusJS = `(() => {
  const a = document.activeElement;
  if (!a || a === document.body) return {id: "", tag: "body", text: "", visible: false, selector: ""};
  const r = a.getBoundingClientRect();
  return {id: a.id || "", tag: a.tagName.toLowerCase(), text: (a.getAttribute("aria-label") || a.innerText || "").trim().slice(0, 80),
    visible: a.matches(":focus-visible") && r.width > 1 && r.height > 1,
    selector: a.closest("#conv-` + "%d" + `") ? "group-row" : ""};
})()`

type focusInfo struct {
	ID       string `json:"id"`
	Tag      string `json:"tag"`
	Text     string `json:"text"`
	Visible  bool   `json:"visible"`
	Selector string `json:"selector"`
}

// press sends one key (with Shift when shift) to whatever has the focus.
func press(tb *tab, key string, shift bool) {
	tb.t.Helper()
	if shift {
		tb.do(chromedp.KeyEvent(key, chromedp.KeyModifiers(chromedp.ModifierShift)))
	} else {
		tb.do(chromedp.KeyEvent(key))
	}
}

// tabUntil presses Tab (Shift+Tab when back) until the focused element matches the CSS
// selector, at most max times, and answers how many presses it took.
func tabUntil(tb *tab, selector string, back bool, max int) int {
	tb.t.Helper()
	for i := 1; i <= max; i++ {
		press(tb, "\t", back)
		if eval[bool](tb, fmt.Sprintf(`!!document.activeElement && document.activeElement.matches(%s)`, jsString(selector))) {
			return i
		}
	}
	tb.t.Fatalf("%q not reached with %d presses of Tab (focus on %+v)", selector, max, eval[focusInfo](tb, fmt.Sprintf(focusJS, 0)))
	return 0
}

// focusVisible fails unless the focused element shows its keyboard focus.
func focusVisible(tb *tab, what string) {
	tb.t.Helper()
	if f := eval[focusInfo](tb, fmt.Sprintf(focusJS, 0)); !f.Visible {
		tb.t.Errorf("%s: the focus is not visible (%+v)", what, f)
	}
}

// TestKeyboardOnlyConversation goes through a conversation with the keyboard alone:
// after signing in (a click), every step is a key press, found as a user would, by Tab.
func TestKeyboardOnlyConversation(t *testing.T) {
	browser := newBrowser(t)
	srv := startServer(t, "MESSENGER_RATE_SEND=1000:1000")
	teacher := newLiveAPI(t, srv, demoTeacher)
	_, group := demoConversationIDs(t, teacher)
	nonce := runNonce()
	// Three pages of messages: the group has older ones to load.
	for i := 0; i < 150; i++ {
		teacher.send(t, group, fmt.Sprintf("history %d %s", i, nonce))
	}

	tb := newLiveTab(t, browser, "ko")
	tb.do(chromedp.EmulateViewport(1280, 844))
	signInDev(tb, srv.URL, demoTeacher.Name)
	shots := screenshotDir(t)

	// The list: Tab to the group's row, Enter opens it.
	groupRow := fmt.Sprintf("#conv-%d a", group)
	n := tabUntil(tb, groupRow, false, 40)
	focusVisible(tb, "the group's row")
	t.Logf("the group's row after %d presses of Tab", n)
	press(tb, "\r", false)
	tb.do(chromedp.WaitVisible(chromedp.ID("composer")))
	waitConnected(tb, 1)
	if loc := tb.location(); !strings.HasSuffix(loc, "/c/"+strconv.FormatInt(group, 10)) {
		t.Fatalf("Enter on the group's row opened %s", loc)
	}

	// The skip link is the first stop of the thread page and goes to the composer.
	press(tb, "\t", false)
	if f := eval[focusInfo](tb, fmt.Sprintf(focusJS, group)); f.ID != "skip-composer" || f.Text != "메시지 입력으로 건너뛰기" || !f.Visible {
		t.Fatalf("the first Tab on the thread reached %+v, want the visible skip link", f)
	}
	screenshot(tb, shots, "keyboard-skip-link", 1280, 844, false)
	press(tb, "\r", false)
	if id := eval[string](tb, `document.activeElement.id`); id != "composer" {
		t.Fatalf("the skip link put the focus on %q, want the composer", id)
	}

	// Type and send with Enter.
	body := "keyboard only " + nonce
	tb.do(chromedp.KeyEvent(body))
	if v := eval[string](tb, `document.getElementById("composer").value`); v != body {
		t.Fatalf("the composer holds %q after typing %q (focus on %+v)", v, body, eval[focusInfo](tb, fmt.Sprintf(focusJS, 0)))
	}
	enterDown(tb)
	waitJS(tb, "the sent message in the thread", fmt.Sprintf(
		`[...document.querySelectorAll("#messages > li.msg.mine")].some(li => li.innerText.includes(%s)) && document.getElementById("composer").value === ""`,
		jsString(body)), 10*time.Second)
	if id := eval[string](tb, `document.activeElement.id`); id != "composer" {
		t.Errorf("after sending, the focus is on %q, want the composer", id)
	}

	// A send that fails (the network is gone) offers a retry: reached with Tab, pressed
	// with Enter once the network is back, and the message arrives once.
	failed := "keyboard retry " + nonce
	setOffline(tb, nil, true)
	tb.do(chromedp.KeyEvent(failed))
	enterDown(tb)
	waitJS(tb, "the retry offered", `!document.getElementById("composer-retry").classList.contains("hidden")`, 10*time.Second)
	setOffline(tb, nil, false)
	waitConnected(tb, 2)
	tabUntil(tb, "#composer-retry", true, 10)
	focusVisible(tb, "the retry button")
	press(tb, "\r", false)
	waitJS(tb, "the retried message in the thread", fmt.Sprintf(
		`[...document.querySelectorAll("#messages > li.msg.mine")].filter(li => li.innerText.includes(%s)).length === 1`, jsString(failed)), 10*time.Second)
	if n := teacher.countBody(t, group, failed); n != 1 {
		t.Errorf("%d messages %q stored after the retry, want 1", n, failed)
	}

	// Leaving: the header's button is reached with Tab and shows its focus (pressing it
	// asks to confirm; the groups' tests leave).
	tabUntil(tb, "#thread-header form[action$='/leave'] button", true, 40)
	focusVisible(tb, "the leave button")

	// The member panel: Shift+Tab back to its summary, Enter opens, Escape closes it and
	// gives the focus back to the summary.
	tabUntil(tb, "#members > summary", true, 80)
	focusVisible(tb, "the members summary")
	if name := eval[string](tb, `document.querySelector("#members > summary").innerText.replace(/\s+/g, " ").trim()`); !strings.Contains(name, "명") {
		t.Errorf("the members summary reads %q", name)
	}
	press(tb, "\r", false)
	waitJS(tb, "the member panel open", `document.getElementById("members").open`, 3*time.Second)
	tabUntil(tb, "#member-panel a[href$='/invite']", false, 5)
	focusVisible(tb, "the invite link")
	screenshot(tb, shots, "keyboard-members", 1280, 844, false)
	press(tb, kbEscape, false)
	waitJS(tb, "the member panel closed by Escape", `!document.getElementById("members").open`, 3*time.Second)
	if !eval[bool](tb, `document.activeElement === document.querySelector("#members > summary")`) {
		t.Errorf("after Escape the focus is on %+v, want the members summary", eval[focusInfo](tb, fmt.Sprintf(focusJS, 0)))
	}

	// Inviting: Enter on the panel's invite link opens the invitation, where a person is
	// ticked with Space and invited with Enter on the button; back in the thread.
	press(tb, "\r", false)
	waitJS(tb, "the member panel open again", `document.getElementById("members").open`, 3*time.Second)
	tabUntil(tb, "#member-panel a[href$='/invite']", false, 5)
	press(tb, "\r", false)
	tb.do(chromedp.WaitVisible(chromedp.CSS("#people")))
	tabUntil(tb, "#people input[type=checkbox]", false, 30)
	focusVisible(tb, "a person to invite")
	invited := eval[string](tb, `document.activeElement.value`)
	press(tb, " ", false)
	if !eval[bool](tb, `document.activeElement.checked`) {
		t.Fatal("Space did not tick the person")
	}
	tabUntil(tb, "form[action$='/participants'] button[type=submit]", false, 40)
	focusVisible(tb, "the invite button")
	press(tb, "\r", false)
	tb.do(chromedp.WaitVisible(chromedp.ID("composer")))
	var conv struct {
		Participants []struct {
			ID string `json:"id"`
		} `json:"participants"`
	}
	teacher.call(t, http.MethodGet, fmt.Sprintf("/api/v1/conversations/%d", group), nil, &conv, http.StatusOK)
	if !slices.ContainsFunc(conv.Participants, func(p struct {
		ID string `json:"id"`
	}) bool {
		return p.ID == invited
	}) {
		t.Errorf("%s was not invited: %+v", invited, conv.Participants)
	}

	// "Earlier messages": reached with Tab, Enter loads them in place.
	if !eval[bool](tb, `!!document.querySelector("#older a")`) {
		t.Fatal("the group of three pages shows no way to its earlier messages")
	}
	before, at := eval[int](tb, `document.querySelectorAll("#messages > li.msg").length`), tb.location()
	tabUntil(tb, "#older a", false, 20)
	focusVisible(tb, "earlier messages")
	press(tb, "\r", false)
	waitJS(tb, "older messages loaded", fmt.Sprintf(`document.querySelectorAll("#messages > li.msg").length > %d`, before), 10*time.Second)
	if loc := tb.location(); loc != at {
		t.Errorf("loading older messages left the page %s for %s", at, loc)
	}

	// Settings: Shift+Tab to the account menu, Enter opens it, Tab to settings, Enter.
	tabUntil(tb, "#me-menu > summary", true, 150)
	focusVisible(tb, "the account menu")
	press(tb, "\r", false)
	waitJS(tb, "the account menu open", `document.getElementById("me-menu").open`, 3*time.Second)
	tabUntil(tb, "#settings-link", false, 3)
	press(tb, "\r", false)
	tb.do(chromedp.WaitVisible(chromedp.CSS("h1#settings-title")))
	if h := eval[string](tb, `document.querySelector("h1").textContent.trim()`); h == "" {
		t.Error("the settings page has no h1")
	}
	checkLiveConsole(tb) // the send made offline failed on purpose
}

// enterDown presses Enter as a key press whose keydown is taken (the composer sends on
// it): the key down and up, without the separate character event that chromedp's
// KeyEvent sends after it, which a real keyboard's taken keydown does not produce.
func enterDown(tb *tab) {
	tb.t.Helper()
	for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
		tb.do(cdpDo(input.DispatchKeyEvent, input.DispatchKeyEventParams{Type: typ, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13}))
	}
}

// kbEscape is the Escape key as chromedp's kb package spells it.
const kbEscape = "\u001b"

// axNode is what the test reads of an accessibility node.
type axNode struct {
	Role, Name string
	Live       string
	Parent     string
}

// axTree answers the tab's accessibility tree as Chromium exposes it to screen readers,
// by node id.
func axTree(tb *tab) map[string]axNode {
	tb.t.Helper()
	var nodes []*accessibility.Node
	tb.do(chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		res, err := cdp.Call(ctx, target, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
		if err != nil {
			return err
		}
		nodes = res.Nodes
		return nil
	}))
	str := func(v *accessibility.Value) string {
		if v == nil || len(v.Value) == 0 {
			return ""
		}
		var s string
		if err := json.Unmarshal([]byte(v.Value), &s); err != nil {
			return string(v.Value)
		}
		return s
	}
	out := map[string]axNode{}
	for _, n := range nodes {
		if n.Ignored {
			continue
		}
		a := axNode{Role: str(n.Role), Name: str(n.Name), Parent: string(n.ParentID)}
		for _, p := range n.Properties {
			if p.Name == "live" {
				a.Live = str(p.Value)
			}
		}
		out[string(n.NodeID)] = a
	}
	return out
}

// spokenIn answers whether a node of the tree whose name holds text sits in a polite
// live region.
func spokenIn(tree map[string]axNode, text string) bool {
	for _, n := range tree {
		if n.Role != "StaticText" || !strings.Contains(n.Name, text) {
			continue
		}
		for p, ok := tree[n.Parent]; ok; p, ok = tree[p.Parent] {
			if p.Live == "polite" {
				return true
			}
		}
	}
	return false
}

const announcerJS = `document.getElementById("announcer").innerText`

// TestScreenReaderAnnouncements: the teacher has the direct conversation open; what the
// parent sends is said in the page's live region, the teacher's own sends are not, and
// messages caught up at once after a lost connection are said as one count.
func TestScreenReaderAnnouncements(t *testing.T) {
	browser := newBrowser(t)
	srv := startServer(t)
	nonce := runNonce()
	teacherAPI := newLiveAPI(t, srv, demoTeacher)
	parentAPI := newLiveAPI(t, srv, demoParent)
	direct, _ := demoConversationIDs(t, teacherAPI)
	proxy := newCutProxy(t, srv.Addr)
	tb := newLiveTab(t, browser, "ko")
	signInDev(tb, proxy.URL, demoTeacher.Name)
	openThread(tb, proxy.URL+"/c/"+strconv.FormatInt(direct, 10))

	// The thread is a log named by the conversation's title, which does not announce
	// itself: the announcer does.
	title := eval[string](tb, `document.getElementById("thread-title").textContent.trim()`)
	var logs []axNode
	for _, n := range axTree(tb) {
		if n.Role == "log" {
			logs = append(logs, n)
		}
	}
	if len(logs) != 1 || logs[0].Name != title {
		t.Errorf("the page's logs are %+v, want one named %q", logs, title)
	}
	if n := eval[int](tb, `document.querySelectorAll("[aria-live=polite]").length`); n != 1 {
		t.Errorf("the page has %d polite live regions, want the announcer alone", n)
	}
	if live := eval[string](tb, `document.getElementById("thread-scroll").getAttribute("aria-live")`); live != "off" {
		t.Errorf("the log's aria-live is %q, want off", live)
	}

	// A message from the parent is said as "최지훈: body".
	body := "안녕하세요 선생님 " + nonce
	parentAPI.send(t, direct, body)
	said := demoParent.Name + ": " + body
	waitJS(tb, "the parent's message announced", fmt.Sprintf(`document.getElementById("announcer").innerText.includes(%s)`, jsString(said)), 10*time.Second)
	if tree := axTree(tb); !spokenIn(tree, said) {
		t.Errorf("the accessibility tree has no %q in a polite live region", said)
	}
	// The row reads its sender and time before its text.
	row := eval[string](tb, fmt.Sprintf(`[...document.querySelectorAll("#messages > li.msg")].find(li => li.innerText.includes(%s)).querySelector(".msg-sr").textContent`, jsString(body)))
	if !strings.HasPrefix(row, demoParent.Name+", ") {
		t.Errorf("the parent's row reads %q first, want the sender and time", row)
	}

	// The teacher's own send is not said.
	mine := "제 답장입니다 " + nonce
	tb.do(chromedp.Focus(chromedp.ID("composer")), chromedp.KeyEvent(mine))
	enterDown(tb)
	waitJS(tb, "my message shown", fmt.Sprintf(`[...document.querySelectorAll("#messages > li.msg.mine")].some(li => li.innerText.includes(%s))`, jsString(mine)), 10*time.Second)
	time.Sleep(1500 * time.Millisecond)
	if text := eval[string](tb, announcerJS); strings.Contains(text, mine) {
		t.Errorf("my own message was announced: %q", text)
	}
	mineRow := eval[string](tb, fmt.Sprintf(`[...document.querySelectorAll("#messages > li.msg.mine")].find(li => li.innerText.includes(%s)).querySelector(".msg-sr").textContent`, jsString(mine)))
	if !strings.HasPrefix(mineRow, "나, ") || !(strings.Contains(mineRow, "전송됨") || strings.Contains(mineRow, "읽음")) {
		t.Errorf("my row reads %q, want me, the time and the read state", mineRow)
	}

	// The parent types for three seconds, signalling as a page does: said once, not at
	// every signal.
	typing := demoParent.Name + "님이 입력 중..."
	for i := 0; i < 4; i++ {
		parentAPI.call(t, http.MethodPost, fmt.Sprintf("/api/v1/conversations/%d/typing", direct), map[string]any{"typing": true}, nil, http.StatusNoContent)
		time.Sleep(time.Second)
	}
	if n := strings.Count(eval[string](tb, announcerJS), typing); n != 1 {
		t.Errorf("the typing was said %d times (%q), want once", n, eval[string](tb, announcerJS))
	}
	parentAPI.call(t, http.MethodPost, fmt.Sprintf("/api/v1/conversations/%d/typing", direct), map[string]any{"typing": false}, nil, http.StatusNoContent)

	// Cut off, then back: what came meanwhile is said as one count, not message by message.
	setOffline(tb, proxy, true)
	waitJS(tb, "the lost connection shown", `!document.getElementById("conn-status").classList.contains("hidden")`, 10*time.Second)
	var bodies []string
	for i := 0; i < 5; i++ {
		b := fmt.Sprintf("밀린 메시지 %d %s", i, nonce)
		bodies = append(bodies, b)
		parentAPI.send(t, direct, b)
	}
	setOffline(tb, proxy, false)
	waitJS(tb, "the caught-up messages shown", fmt.Sprintf(`[...document.querySelectorAll("#messages > li.msg")].some(li => li.innerText.includes(%s))`, jsString(bodies[4])), 20*time.Second)
	waitJS(tb, "one count of the caught-up messages", `document.getElementById("announcer").innerText.includes("새 메시지 5개")`, 5*time.Second)
	time.Sleep(time.Second)
	text := eval[string](tb, announcerJS)
	for _, b := range bodies {
		if strings.Contains(text, b) {
			t.Errorf("a caught-up message was said on its own: %q", text)
		}
	}
	if strings.Count(text, "새 메시지 5개") != 1 || strings.Count(text, "연결이 끊겼습니다") != 1 || strings.Count(text, "다시 연결되었습니다") != 1 {
		t.Errorf("the announcer said %q: want the count, the lost and the back banner once each", text)
	}
	if !spokenIn(axTree(tb), "새 메시지 5개") {
		t.Error("the accessibility tree has no count in a polite live region")
	}
}
