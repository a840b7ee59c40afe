package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dreamseed/messenger/handlers"
	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/realtime/redistest"
)

// sseStream is an open stream as a client reads it: its events, and ended closed when the
// server ends the response.
type sseStream struct {
	events <-chan sseEvent
	ended  <-chan struct{}
}

// openSSE opens path with client and header and answers its stream (status 200 required);
// it closes with the test.
func (e *env) openSSE(client *http.Client, path string, header map[string]string) sseStream {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+path, nil)
	resp, err := roundTrip(client, req, header)
	if err != nil {
		e.t.Fatalf("open %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		e.t.Fatalf("open %s: status %d", path, resp.StatusCode)
	}
	out, ended := make(chan sseEvent, 100), make(chan struct{})
	go func() {
		defer close(ended)
		readEvents(resp.Body, out)
	}()
	return sseStream{events: out, ended: ended}
}

// waitClosed waits up to within for the stream to send stream.closed and end, and
// answers the reason; every other event before it fails the test unless allowed says it
// may come.
func waitClosed(t *testing.T, s sseStream, within time.Duration, allowed func(sseEvent) bool) string {
	t.Helper()
	deadline := time.After(within)
	reason := ""
	for {
		select {
		case ev := <-s.events:
			if ev.typ == "stream.closed" {
				var d struct{ Reason string }
				if err := json.Unmarshal([]byte(ev.data), &d); err != nil {
					t.Fatalf("stream.closed data %q: %v", ev.data, err)
				}
				reason = d.Reason
				continue
			}
			if reason != "" || allowed == nil || !allowed(ev) {
				t.Fatalf("unexpected event %s %s (closed: %q)", ev.typ, ev.data, reason)
			}
		case <-s.ended:
			for {
				select {
				case ev := <-s.events:
					if ev.typ == "stream.closed" {
						json.Unmarshal([]byte(ev.data), &struct{ Reason *string }{&reason})
					}
				default:
					if reason == "" {
						t.Fatal("the stream ended without stream.closed")
					}
					return reason
				}
			}
		case <-deadline:
			t.Fatalf("the stream was not closed within %v", within)
		}
	}
}

// wantSignedOut checks that each stream ends, within 5 s, because its session signed out.
func wantSignedOut(t *testing.T, streams ...sseStream) {
	t.Helper()
	for _, s := range streams {
		if reason := waitClosed(t, s, 5*time.Second, nil); reason != "signed_out" {
			t.Errorf("closed with %q, want signed_out", reason)
		}
	}
}

// stillOpen checks that s neither ended nor sent anything but what allowed lets through.
func stillOpen(t *testing.T, s sseStream, what string) {
	t.Helper()
	select {
	case ev := <-s.events:
		t.Errorf("%s: got %s %s", what, ev.typ, ev.data)
	case <-s.ended:
		t.Errorf("%s: the stream ended", what)
	case <-time.After(300 * time.Millisecond):
	}
}

// startDirect makes a 1:1 of a and b (who signs in first) through the API and answers its id.
func (e *env) startDirect(tokenA, tokenB, subB string) int64 {
	e.t.Helper()
	if resp := e.do(nil, "GET", "/api/v1/me", nil, map[string]string{"Authorization": "Bearer " + tokenB}); resp.StatusCode != http.StatusOK {
		e.t.Fatalf("sign in %s: status %d", subB, resp.StatusCode)
	}
	resp := e.do(nil, "POST", "/api/v1/conversations", strings.NewReader(`{"kind":"direct","participant_ids":["`+subB+`"]}`),
		map[string]string{"Authorization": "Bearer " + tokenA, "Content-Type": "application/json"})
	var c struct{ ID int64 }
	if resp.StatusCode/100 != 2 || jsonDecode(resp, &c) != nil {
		e.t.Fatalf("create direct: status %d", resp.StatusCode)
	}
	return c.ID
}

func (e *env) apiSend(token string, conv int64, body string) {
	e.t.Helper()
	resp := e.do(nil, "POST", fmt.Sprintf("/api/v1/conversations/%d/messages", conv),
		strings.NewReader(fmt.Sprintf(`{"body":%q,"client_msg_id":"%s"}`, body, newUUID())),
		map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json"})
	if resp.StatusCode != http.StatusCreated {
		e.t.Fatalf("send: status %d: %s", resp.StatusCode, readBody(e.t, resp))
	}
}

func newUUID() string {
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", time.Now().UnixNano()%1e12)
}

// TestStreamCap: a user's streams beyond the cap (default 10) close the oldest with
// stream.closed "replaced"; the others keep working.
func TestStreamCap(t *testing.T) {
	e := newEnv(t, nil)
	token := sign(t, validClaims("cap1", "한도윤", "org-a"))
	other := sign(t, validClaims("cap2", "정하늘", "org-a"))
	conv := e.startDirect(other, token, "cap1")
	auth := map[string]string{"Authorization": "Bearer " + token}
	var streams []sseStream
	for range 10 {
		streams = append(streams, e.openSSE(nil, "/api/v1/events", auth))
	}
	// Every stream is live: a message reaches all ten.
	e.apiSend(other, conv, "열 개")
	for i, s := range streams {
		if ev := nextEvent(t, s.events); ev.typ != "message.new" {
			t.Fatalf("stream %d: %s, want message.new", i, ev.typ)
		}
	}
	eleventh := e.openSSE(nil, "/api/v1/events", auth)
	if reason := waitClosed(t, streams[0], 5*time.Second, nil); reason != "replaced" {
		t.Errorf("the oldest stream closed with %q, want replaced", reason)
	}
	e.apiSend(other, conv, "열한 번째")
	for i, s := range append(streams[1:], eleventh) {
		if ev := nextEvent(t, s.events); ev.typ != "message.new" {
			t.Fatalf("stream %d after the cap: %s, want message.new", i+1, ev.typ)
		}
	}
}

// TestStreamEndsAtSignOut: a page's stream ends with stream.closed "signed_out" when its
// session signs out, here or everywhere from another browser, and delivers nothing after.
func TestStreamEndsAtSignOut(t *testing.T) {
	e := newEnv(t, nil)
	other := sign(t, validClaims("so2", "정하늘", "org-a"))
	tab := e.signInBrowser("so1", "한도윤", "org-a")
	conv := e.startDirect(other, sign(t, validClaims("so1", "한도윤", "org-a")), "so1")
	csrf := e.csrfToken(tab)

	first := e.openSSE(tab, "/events", nil)
	second := e.openSSE(tab, "/events", nil)
	e.apiSend(other, conv, "안녕")
	for _, s := range []sseStream{first, second} {
		if ev := nextEvent(t, s.events); ev.typ != "message.new" {
			t.Fatalf("before logout: %s", ev.typ)
		}
	}
	// Another browser of the same user keeps its stream when this one signs out.
	laptop := e.signInBrowser("so1", "한도윤", "org-a")
	onLaptop := e.openSSE(laptop, "/events", nil)

	resp := e.do(tab, "POST", "/logout", nil, map[string]string{"Origin": e.srv.URL, "X-CSRF-Token": csrf})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: status %d", resp.StatusCode)
	}
	wantSignedOut(t, first, second)
	stillOpen(t, onLaptop, "the other browser's stream at this browser's logout")

	// Everywhere: the laptop signs out all; the laptop's own stream ends, and so does a
	// stream of a third browser.
	phone := e.signInBrowser("so1", "한도윤", "org-a")
	onPhone := e.openSSE(phone, "/events", nil)
	csrf = e.csrfToken(laptop)
	resp = e.do(laptop, "POST", "/logout?all=1", strings.NewReader(url.Values{"csrf_token": {csrf}}.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": e.srv.URL})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout all: status %d", resp.StatusCode)
	}
	wantSignedOut(t, onLaptop, onPhone)
}

// TestStreamEndsWhenSessionReplaced: signing in again in the same browser revokes the
// session it had (its cookie opens nothing, its CSRF token is not the new one) and ends
// that session's streams.
func TestStreamEndsWhenSessionReplaced(t *testing.T) {
	e := newEnv(t, nil)
	c := e.signInBrowser("rs1", "한도윤", "org-a")
	u, _ := url.Parse(e.srv.URL)
	oldCookie := c.Jar.Cookies(u)[0].Value
	oldCSRF := e.csrfToken(c)
	stream := e.openSSE(c, "/events", nil)

	// The same browser signs in again: its cookie jar sends the old session along.
	form := url.Values{"token": {sign(t, validClaims("rs1", "한도윤", "org-a"))}}
	resp := e.do(c, "POST", "/auth/portal", strings.NewReader(form.Encode()), map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Origin": portal, "Sec-Fetch-Site": "cross-site",
	})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in again: status %d", resp.StatusCode)
	}
	if reason := waitClosed(t, stream, 5*time.Second, nil); reason != "session_replaced" {
		t.Errorf("the old session's stream closed with %q, want session_replaced", reason)
	}
	old := e.client()
	old.Jar.SetCookies(u, []*http.Cookie{{Name: c.Jar.Cookies(u)[0].Name, Value: oldCookie}})
	if resp := e.do(old, "GET", "/", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the replaced session still opens pages: status %d", resp.StatusCode)
	}
	if newCSRF := e.csrfToken(c); newCSRF == oldCSRF {
		t.Error("the CSRF token did not rotate with the session")
	}
	resp = e.do(c, "POST", "/logout", nil, map[string]string{"Origin": e.srv.URL, "X-CSRF-Token": oldCSRF})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("the old CSRF token was accepted: status %d", resp.StatusCode)
	}
}

// TestSessionCap: a user's sessions beyond the cap (default 20) revoke the oldest.
func TestSessionCap(t *testing.T) {
	e := newEnv(t, nil)
	var browsers []*http.Client
	for range 21 {
		browsers = append(browsers, e.signInBrowser("sc1", "한도윤", "org-a"))
	}
	if resp := e.do(browsers[0], "GET", "/", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the oldest of 21 sessions still opens pages: status %d", resp.StatusCode)
	}
	for i, b := range browsers[1:] {
		if resp := e.do(b, "GET", "/", nil, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("session %d: status %d", i+1, resp.StatusCode)
		}
	}
}

// TestAPIStreamEndsAtTokenExpiry: an API stream ends with stream.closed "expired" when
// its token expires, and delivers nothing after.
func TestAPIStreamEndsAtTokenExpiry(t *testing.T) {
	e := newEnv(t, nil)
	other := sign(t, validClaims("ex2", "정하늘", "org-a"))
	c := validClaims("ex1", "한도윤", "org-a")
	exp := time.Now().Add(3 * time.Second).Truncate(time.Second).Add(time.Second)
	c["exp"] = exp.Unix()
	token := sign(t, c)
	conv := e.startDirect(other, token, "ex1")
	stream := e.openSSE(nil, "/api/v1/events", map[string]string{"Authorization": "Bearer " + token})

	// Messages keep coming until exp; after it, none.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(250 * time.Millisecond):
			}
			req, _ := http.NewRequest("POST", e.srv.URL+fmt.Sprintf("/api/v1/conversations/%d/messages", conv),
				strings.NewReader(fmt.Sprintf(`{"body":"%d","client_msg_id":"%s"}`, i, newUUID())))
			req.Header.Set("Authorization", "Bearer "+other)
			req.Header.Set("Content-Type", "application/json")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	}()
	deliveredLate := func(ev sseEvent) bool {
		if time.Now().After(exp.Add(200 * time.Millisecond)) {
			t.Errorf("%s delivered %v after the token expired", ev.typ, time.Since(exp))
		}
		return true
	}
	if reason := waitClosed(t, stream, time.Until(exp)+25*time.Second, deliveredLate); reason != "expired" {
		t.Errorf("closed with %q, want expired", reason)
	}
	if late := time.Since(exp); late > 25*time.Second {
		t.Errorf("closed %v after exp", late)
	}
}

// TestCrossSiteStreamRefused: another site cannot open a page's stream with the user's
// cookie; the app itself and the portal can.
func TestCrossSiteStreamRefused(t *testing.T) {
	e := newEnv(t, nil)
	c := e.signInBrowser("cs1", "한도윤", "org-a")
	resp := e.do(c, "GET", "/events", nil, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site stream: status %d, want 403", resp.StatusCode)
	}
	resp = e.do(c, "GET", "/events", nil, map[string]string{"Sec-Fetch-Site": "cross-site"})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site stream without Origin: status %d, want 403", resp.StatusCode)
	}
	e.openSSE(c, "/events", map[string]string{"Sec-Fetch-Site": "same-origin"})
	e.openSSE(c, "/events", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": portal})
}

// newProcesses starts n messengers on one database and one Redis (a private key prefix),
// as processes behind a load balancer are.
func newProcesses(t *testing.T, n int, mutate func(*handlers.Config)) []*env {
	t.Helper()
	b := newBase(t, mutate)
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	redisURL, prefix := redistest.URL(t), fmt.Sprintf("test-streams-%d:", time.Now().UnixNano())
	var envs []*env
	for range n {
		engine, err := realtime.NewRedisWithPrefix(context.Background(), redisURL, 0, logger, prefix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { engine.Close() })
		envs = append(envs, b.serve(t, engine))
	}
	return envs
}

// TestStreamEndsAcrossProcesses: the cap counts a user's streams in every process, and a
// sign-out in one process ends the session's streams in another, at once.
func TestStreamEndsAcrossProcesses(t *testing.T) {
	procs := newProcesses(t, 2, func(c *handlers.Config) { c.MaxStreamsPerUser = 2 })
	a, b := procs[0], procs[1]
	// Cookies are per host, not port: the browser's session goes to both processes.
	browser := a.signInBrowser("xp1", "한도윤", "org-a")
	first := a.openSSE(browser, "/events", nil)
	second := b.openSSE(browser, "/events", nil)
	stillOpen(t, first, "two streams, two allowed")
	third := a.openSSE(browser, "/events", nil)
	if reason := waitClosed(t, first, 5*time.Second, nil); reason != "replaced" {
		t.Errorf("the oldest stream closed with %q, want replaced", reason)
	}
	stillOpen(t, second, "the second stream, in the other process, after the third opened")

	csrf := a.csrfToken(browser)
	resp := b.do(browser, "POST", "/logout", nil, map[string]string{"Origin": b.srv.URL, "X-CSRF-Token": csrf})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: status %d", resp.StatusCode)
	}
	wantSignedOut(t, second, third)
}

// TestStreamEndsWhenSessionRevoked: a session revoked without a notice to its streams (by
// an operator, in the database) ends them within a heartbeat.
func TestStreamEndsWhenSessionRevoked(t *testing.T) {
	e := newEnv(t, nil)
	c := e.signInBrowser("rv1", "한도윤", "org-a")
	stream := e.openSSE(c, "/events", nil)
	if _, err := e.owner.Exec(`UPDATE sessions SET revoked_at = now()`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if reason := waitClosed(t, stream, 25*time.Second, nil); reason != "signed_out" {
		t.Errorf("closed with %q, want signed_out", reason)
	}
	t.Logf("closed %v after the revocation", time.Since(start).Round(time.Millisecond))
}

// TestLostReplacedNoticeStillEnds: a stream evicted by the cap whose "replaced" notice
// was lost (the engine then publishes a resync on the user's streams channel, as the
// Redis engine does once it can publish again) still ends with "replaced"; a resync
// alone ends nothing.
func TestLostReplacedNoticeStillEnds(t *testing.T) {
	t.Run("memory", func(t *testing.T) { lostReplacedNotice(t, newEnv(t, nil)) })
	t.Run("redis", func(t *testing.T) { lostReplacedNotice(t, newProcesses(t, 1, nil)[0]) })
}

func lostReplacedNotice(t *testing.T, e *env) {
	ctx := context.Background()
	auth := map[string]string{"Authorization": "Bearer " + sign(t, validClaims("lost1", "한도윤", "org-a"))}
	stream := e.openSSE(nil, "/api/v1/events", auth)
	var uid int64
	if err := e.owner.QueryRow(`SELECT id FROM users WHERE sub = 'lost1'`).Scan(&uid); err != nil {
		t.Fatal(err)
	}
	resync := func() {
		t.Helper()
		if err := e.engine.Publish(ctx, "streams:"+strconv.FormatInt(uid, 10), realtime.Event{Type: realtime.EventResync}); err != nil {
			t.Fatal(err)
		}
	}
	resync()
	stillOpen(t, stream, "a resync of a stream still admitted")

	// Another stream (in another process, say) evicts it; the notice never comes.
	if _, err := e.engine.Connect(ctx, uid, "elsewhere"); err != nil {
		t.Fatal(err)
	}
	if evicted, err := e.engine.AdmitStream(ctx, uid, "elsewhere", 1); err != nil || len(evicted) != 1 {
		t.Fatalf("admit: evicted %v, %v", evicted, err)
	}
	stillOpen(t, stream, "evicted, its notice lost")
	resync()
	if reason := waitClosed(t, stream, 5*time.Second, nil); reason != "replaced" {
		t.Errorf("closed with %q, want replaced", reason)
	}
}

// TestSessionChecksBatched: the page streams of a process cost one session query per
// check interval, however many there are, and a session revoked without a notice still
// ends its streams at the next check while the others stay.
func TestSessionChecksBatched(t *testing.T) {
	e := newEnv(t, func(c *handlers.Config) { c.MaxStreamsPerUser = 1000 })
	const every = 400 * time.Millisecond
	queries := e.server.CountSessionChecksForTest(every)
	var browsers []*http.Client
	for i := range 4 {
		browsers = append(browsers, e.signInBrowser(fmt.Sprintf("batch%d", i), "한도윤", "org-a"))
	}
	var streams [][]sseStream
	for _, b := range browsers {
		var own []sseStream
		for range 50 {
			own = append(own, e.openSSE(b, "/events", nil))
		}
		streams = append(streams, own)
	}
	start, before := time.Now(), queries.Load()
	time.Sleep(5 * every)
	n, intervals := queries.Load()-before, int64(time.Since(start)/every)
	if n < 1 || n > intervals+1 {
		t.Errorf("200 streams: %d session queries in %d intervals, want one per interval", n, intervals)
	}
	t.Logf("200 streams: %d session queries in %d intervals", n, intervals)

	if _, err := e.owner.Exec(`UPDATE sessions SET revoked_at = now() WHERE user_id = (SELECT id FROM users WHERE sub = 'batch0')`); err != nil {
		t.Fatal(err)
	}
	for i, s := range streams[0] {
		if reason := waitClosed(t, s, 5*every, nil); reason != "signed_out" {
			t.Errorf("stream %d of the revoked session closed with %q, want signed_out", i, reason)
		}
	}
	for _, s := range streams[1] {
		select {
		case <-s.ended:
			t.Fatal("a stream of a live session ended")
		default:
		}
	}

	// Once no page stream is open, nothing of their guards is left: no more checks.
	if _, err := e.owner.Exec(`UPDATE sessions SET revoked_at = now()`); err != nil {
		t.Fatal(err)
	}
	for _, own := range streams[1:] {
		for _, s := range own {
			waitClosed(t, s, 5*every, nil)
		}
	}
	time.Sleep(every) // a check running as the last stream closed completes
	idle := queries.Load()
	time.Sleep(3 * every)
	if n := queries.Load() - idle; n != 0 {
		t.Errorf("%d session queries with no stream open", n)
	}
}
