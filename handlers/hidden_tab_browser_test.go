package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/handlers"
	"github.com/dreamseed/messenger/realtime"
)

// setHidden makes the page's tab hidden or visible as a browser does when its tab goes to
// the background or comes back: document.hidden and visibilityState change, then
// visibilitychange. (Headless Chromium has no window to hide; what the page reads is the
// same.)
func setHidden(hidden bool) chromedp.Action[chromedp.Void] {
	state := "visible"
	if hidden {
		state = "hidden"
	}
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		Object.defineProperty(document, "hidden", {configurable: true, get: () => %t});
		Object.defineProperty(document, "visibilityState", {configurable: true, get: () => %q});
		document.dispatchEvent(new Event("visibilitychange"));
	})()`, hidden, state))
}

// TestHiddenTabClosesStream: a tab hidden for MESSENGER_STREAM_HIDDEN_CLOSE (3 s here)
// closes its live stream, so its user goes offline for the people they talk to — not
// sooner; a message sent meanwhile reaches the page through the stream once the tab shows
// again (it resumes after its last event id), and the user is online again.
func TestHiddenTabClosesStream(t *testing.T) {
	chromium := chromiumOrSkip(t)
	const hiddenClose = 3 * time.Second
	engine := realtime.NewMemory(0)
	t.Cleanup(func() { engine.Close() })
	e := newBase(t, func(c *handlers.Config) {
		c.CookieSecure, c.CookieSameSite = false, http.SameSiteLaxMode
		c.StreamHiddenClose = hiddenClose
	}).serve(t, engine)
	ctx, stop := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); e.svc.StorePresence(ctx) }()
	t.Cleanup(func() { stop(); <-stopped })

	parent := mustUser(t, e.db, "hidden-parent", "최지훈", "org-a")
	teacher := mustUser(t, e.db, "hidden-teacher", "김선영", "org-a")
	conv := directConversation(t, e, parent, teacher)

	// The teacher's API stream: what they hear of the parent's presence, in order.
	var mu sync.Mutex
	var presence []chat.PresenceChange
	events := e.openStream(sign(t, validClaims(teacher.Sub, teacher.Name, "org-a")), "") // subscribed once it answers
	go func() {
		for ev := range events {
			var p chat.PresenceChange
			if ev.typ == chat.EventPresence && json.Unmarshal([]byte(ev.data), &p) == nil && p.UserID == parent.Sub {
				mu.Lock()
				presence = append(presence, p)
				mu.Unlock()
			}
		}
	}()
	heard := func() []chat.PresenceChange {
		mu.Lock()
		defer mu.Unlock()
		return append([]chat.PresenceChange(nil), presence...)
	}
	waitHeard := func(what string, n int, timeout time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for len(heard()) < n {
			if time.Since(start) > timeout {
				t.Fatalf("%s: the teacher heard %+v, want %d presence events", what, heard(), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(start)
	}

	browser := startChromium(t, chromium)
	tab, cancel := chromedp.NewContext(browser)
	defer cancel()
	if err := chromedp.Do(tab); err != nil {
		t.Fatal(err)
	}
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		browserStep(t, tab, what, 500, actions...)
	}
	wait := func(what, expr string, timeout time.Duration) {
		t.Helper()
		c, done := context.WithTimeout(tab, timeout+5*time.Second)
		defer done()
		if _, err := chromedp.Run(c, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(timeout))); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	token := sign(t, validClaims(parent.Sub, parent.Name, "org-a"))
	do("sign in",
		chromedp.Navigate(e.srv.URL+"/healthz"),
		chromedp.Evaluate[chromedp.Void](`fetch("/auth/portal", {method: "POST", body: new URLSearchParams({token: `+fmt.Sprintf("%q", token)+`}), redirect: "manual"}).then(() => true)`, chromedp.EvalAwaitPromise),
	)
	do("open the thread", chromedp.Navigate(fmt.Sprintf("%s/c/%d", e.srv.URL, conv)), chromedp.WaitVisible(chromedp.ID("composer")))
	waitHeard("the page's stream opens", 1, 10*time.Second)
	if p := heard()[0]; !p.Online {
		t.Fatalf("the teacher heard %+v, want the parent online", p)
	}
	do("listen to the page's live messages",
		chromedp.Evaluate[chromedp.Void](`window.liveMessages = []; document.addEventListener("message.new", (e) => window.liveMessages.push(e.detail.data))`))

	do("hide the tab", setHidden(true))
	hidden := time.Now()
	time.Sleep(hiddenClose / 2)
	if got := heard(); len(got) != 1 {
		t.Fatalf("%s after the tab was hidden the teacher heard %+v: the stream closed before %s", hiddenClose/2, got, hiddenClose)
	}
	waitHeard("the hidden tab's stream closes", 2, hiddenClose+10*time.Second)
	if p := heard()[1]; p.Online || p.LastSeenAt == nil {
		t.Fatalf("the teacher heard %+v, want the parent offline with last seen", p)
	}
	t.Logf("the parent went offline %s after the tab was hidden", time.Since(hidden).Round(time.Millisecond))
	wait("the stream is closed", `!document.getElementById("live")`, 2*time.Second)

	const body = "숨어 있는 동안 보낸 메시지"
	if _, _, err := e.svc.SendMessage(ctx, teacher, conv, body, uuid.NewString()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	do("show the tab", setHidden(false))
	wait("the message sent while hidden comes through the stream", fmt.Sprintf(`window.liveMessages.some((d) => d.includes(%q))`, body), 10*time.Second)
	wait("and shows in the thread", fmt.Sprintf(`document.getElementById("messages").textContent.includes(%q)`, body), 5*time.Second)
	c, done := context.WithTimeout(tab, 10*time.Second)
	resumed, err := chromedp.Run(c, chromedp.Evaluate[string](`document.getElementById("live").getAttribute("hx-sse:connect")`))
	done()
	if err != nil || resumed == "/events" {
		t.Errorf("the reopened stream is %q (%v), want it to resume after the last event id", resumed, err)
	}
	waitHeard("the shown tab's stream opens", 3, 10*time.Second)
	if p := heard()[2]; !p.Online {
		t.Errorf("the teacher heard %+v, want the parent online again", p)
	}
}
