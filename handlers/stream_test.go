package handlers_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/handlers"
	"github.com/dreamseed/messenger/realtime"
)

// streamClient is the client of a stream served in this process, without a network: it
// reads what the stream writes as an EventSource does, and can stop reading (hold) as a
// slow client does, so that the stream's writes wait.
type streamClient struct {
	header  http.Header
	status  int
	pw      *io.PipeWriter
	reading sync.Mutex // held while the client does not read
	once    sync.Once
	opened  chan struct{} // closed at the response's first write
}

func (w *streamClient) Header() http.Header { return w.header }
func (w *streamClient) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}
func (w *streamClient) Flush() {}
func (w *streamClient) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.once.Do(func() { close(w.opened) })
	w.reading.Lock()
	defer w.reading.Unlock()
	return w.pw.Write(p)
}

// serveStream serves path (with header) to a client of its own, in this process, and
// answers the client and the stream as it reads it, once the stream has started (it has
// subscribed: what is published from then on reaches it); the stream ends with the test.
func (e *env) serveStream(path string, header map[string]string) (*streamClient, sseStream) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequestWithContext(ctx, "GET", path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	pr, pw := io.Pipe()
	client := &streamClient{header: http.Header{}, pw: pw, opened: make(chan struct{})}
	events, ended, served := make(chan sseEvent, 100), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(served)
		e.echo.ServeHTTP(client, req)
		pw.Close()
	}()
	go func() {
		defer close(ended)
		readEvents(pr, events)
	}()
	e.t.Cleanup(func() { cancel(); <-served })
	select {
	case <-client.opened:
	case <-time.After(5 * time.Second):
		e.t.Fatalf("%s did not start", path)
	}
	return client, sseStream{events: events, ended: ended}
}

// userID answers the id of the user of portal id sub.
func (e *env) userID(sub string) int64 {
	e.t.Helper()
	var id int64
	if err := e.owner.QueryRow(`SELECT id FROM users WHERE sub = $1`, sub).Scan(&id); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// publishUpdate publishes a conversation.updated event of conv to the user userID.
func (e *env) publishUpdate(userID, conv int64) {
	e.t.Helper()
	ev := realtime.Event{Type: chat.EventConversationUpdated, Data: fmt.Appendf(nil, `{"conversation_id":%d,"reason":"created"}`, conv)}
	if err := e.engine.Publish(context.Background(), chat.UserChannel(userID), ev); err != nil {
		e.t.Fatal(err)
	}
}

// TestStreamLife: a stream opens as an event stream and sends what comes with ids, and a
// stream that resumes from one of them gets what came after it.
func TestStreamLife(t *testing.T) {
	e := newEnv(t, nil)
	token := sign(t, validClaims("life1", "한도윤", "org-a"))
	auth := map[string]string{"Authorization": "Bearer " + token}
	client, stream := e.serveStream("/api/v1/events", auth)
	user := e.userID("life1")
	for conv := range int64(3) {
		e.publishUpdate(user, conv+1)
	}
	var ids []string
	for range 3 {
		ev := nextEvent(t, stream.events)
		if ev.typ != chat.EventConversationUpdated || ev.id == "" {
			t.Fatalf("a live event: %+v, want conversation.updated with an id", ev)
		}
		ids = append(ids, ev.id)
	}
	if client.status != http.StatusOK || client.header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("the stream opened with %d %q", client.status, client.header.Get("Content-Type"))
	}

	_, resumed := e.serveStream("/api/v1/events", map[string]string{"Authorization": "Bearer " + token, "Last-Event-ID": ids[0]})
	for _, want := range ids[1:] {
		if ev := nextEvent(t, resumed.events); ev.id != want {
			t.Errorf("resumed: %+v, want the event %s", ev, want)
		}
	}
	noEvent(t, resumed.events, "resumed at the newest")
}

// TestStreamClosesOnOverflow: a client that stops reading while more events come than its
// queue holds is disconnected without stream.closed (it reconnects and resumes).
func TestStreamClosesOnOverflow(t *testing.T) {
	engine := realtime.NewMemory(4)
	t.Cleanup(func() { engine.Close() })
	e := newEnvOn(t, engine)
	token := sign(t, validClaims("of1", "한도윤", "org-a"))
	client, stream := e.serveStream("/api/v1/events", map[string]string{"Authorization": "Bearer " + token})
	user := e.userID("of1")
	if n := e.counter("messenger_stream_overflows_total"); n != 0 {
		t.Errorf("messenger_stream_overflows_total = %v before any overflow, want 0", n)
	}
	e.publishUpdate(user, 1)
	nextEvent(t, stream.events)

	client.reading.Lock()
	for conv := range int64(20) {
		e.publishUpdate(user, conv+2)
	}
	client.reading.Unlock()
	got := 0
	for {
		select {
		case ev := <-stream.events:
			if ev.typ != chat.EventConversationUpdated {
				t.Fatalf("an overflowing stream sent %s %s", ev.typ, ev.data)
			}
			got++
			continue
		case <-stream.ended:
		case <-time.After(5 * time.Second):
			t.Fatal("the stream that overflowed is still open")
		}
		break
	}
	if got >= 20 {
		t.Errorf("all %d events came through a queue of 4", got)
	}
	if n := e.counter("messenger_stream_overflows_total"); n != 1 {
		t.Errorf("messenger_stream_overflows_total = %v after one overflow", n)
	}
}

// TestStreamEndsDirectly: a stream ends with stream.closed when its session signs out,
// when its token expires, and when its user opens more streams than the cap (the oldest).
func TestStreamEndsDirectly(t *testing.T) {
	e := newEnv(t, func(c *handlers.Config) { c.MaxStreamsPerUser = 2 })

	tab := e.signInBrowser("end1", "한도윤", "org-a")
	u, _ := url.Parse(e.srv.URL)
	var cookies []string
	for _, c := range tab.Jar.Cookies(u) {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	_, page := e.serveStream("/events", map[string]string{"Cookie": strings.Join(cookies, "; ")})
	stillOpen(t, page, "a page's stream before logout")
	csrf := e.csrfToken(tab)
	if resp := e.do(tab, "POST", "/logout", nil, map[string]string{"Origin": e.srv.URL, "X-CSRF-Token": csrf}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: status %d", resp.StatusCode)
	}
	if reason := waitClosed(t, page, 5*time.Second, nil); reason != "signed_out" {
		t.Errorf("at logout the stream closed with %q, want signed_out", reason)
	}

	c := validClaims("end2", "정하늘", "org-a")
	exp := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	c["exp"] = exp.Unix()
	_, expiring := e.serveStream("/api/v1/events", map[string]string{"Authorization": "Bearer " + sign(t, c)})
	if reason := waitClosed(t, expiring, time.Until(exp)+5*time.Second, nil); reason != "expired" {
		t.Errorf("at the token's expiry the stream closed with %q, want expired", reason)
	}

	auth := map[string]string{"Authorization": "Bearer " + sign(t, validClaims("end3", "한도윤", "org-a"))}
	_, oldest := e.serveStream("/api/v1/events", auth)
	stillOpen(t, oldest, "the first stream")
	_, second := e.serveStream("/api/v1/events", auth)
	stillOpen(t, second, "the second stream")
	_, third := e.serveStream("/api/v1/events", auth)
	if reason := waitClosed(t, oldest, 5*time.Second, nil); reason != "replaced" {
		t.Errorf("the oldest of three streams (cap 2) closed with %q, want replaced", reason)
	}
	stillOpen(t, second, "the second stream after the third opened")
	stillOpen(t, third, "the third stream")
}
