package e2e

// A JSON API client and a Server-Sent Events client that behave like a real messenger
// client: the delivery tests assert what such a client observes.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dreamseed/messenger/auth"
)

// ---------------------------------------------------------------------------------------
// Users and the JSON API

// testUser is a portal user with a token the dev server accepts.
type testUser struct {
	Sub, Name, Org, Role string
	Token                string
}

// newUser mints a portal token (dev secret, one hour) for a user of organization org.
func newUser(t testing.TB, sub, name, org, role string) testUser {
	t.Helper()
	token, err := auth.MintToken([]byte(auth.DevSecret), "messenger", auth.Claims{
		Issuer: "dreamseed-portal", Subject: sub, Name: name, OrgID: org, Role: role,
	}, time.Hour)
	if err != nil {
		t.Fatalf("mint token for %s: %v", sub, err)
	}
	return testUser{Sub: sub, Name: name, Org: org, Role: role, Token: token}
}

// apiTransport is shared by the API clients of a test binary: enough idle connections
// for a hundred concurrent senders.
var apiTransport = &http.Transport{
	MaxIdleConns:        512,
	MaxIdleConnsPerHost: 256,
	IdleConnTimeout:     30 * time.Second,
}

// apiClient calls the JSON API as one user.
type apiClient struct {
	t    testing.TB
	base string
	user testUser
	http *http.Client
}

func (s *server) api(u testUser) *apiClient {
	return &apiClient{t: s.t, base: s.URL, user: u, http: &http.Client{Transport: apiTransport, Timeout: 30 * time.Second}}
}

// apiMessage is a Message of the API: the fields the tests look at.
type apiMessage struct {
	ID             int64   `json:"id"`
	ConversationID int64   `json:"conversation_id"`
	Seq            int64   `json:"seq"`
	Kind           string  `json:"kind"`
	Body           string  `json:"body"`
	ClientMsgID    *string `json:"client_msg_id"`
	Sender         struct {
		ID string `json:"id"`
	} `json:"sender"`
}

// apiConversation is a Conversation of the API: the fields the tests look at.
type apiConversation struct {
	ID           int64  `json:"id"`
	Kind         string `json:"kind"`
	Title        string `json:"title"`
	LastSeq      int64  `json:"last_seq"`
	Participants []struct {
		ID   string `json:"id"`
		Role string `json:"role"`
	} `json:"participants"`
}

// raw does one request and answers status and body; body is JSON-encoded unless it is a
// string or []byte, sent as is with contentType.
func (a *apiClient) raw(ctx context.Context, method, path, contentType string, body any) (int, []byte, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(enc)
		if contentType == "" {
			contentType = "application/json"
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.user.Token)
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, out, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	return resp.StatusCode, out, nil
}

// do is raw for the test goroutine: a transport error fails the test.
func (a *apiClient) do(method, path string, body any) (int, []byte) {
	a.t.Helper()
	status, out, err := a.raw(context.Background(), method, path, "", body)
	if err != nil {
		a.t.Fatalf("%s: %v", a.user.Sub, err)
	}
	return status, out
}

// mustJSON does a request that must answer want, and decodes the answer into v (if not nil).
func (a *apiClient) mustJSON(method, path string, body any, want int, v any) {
	a.t.Helper()
	status, out := a.do(method, path, body)
	if status != want {
		a.t.Fatalf("%s %s as %s: status %d, want %d; body %s", method, path, a.user.Sub, status, want, out)
	}
	if v != nil {
		if err := json.Unmarshal(out, v); err != nil {
			a.t.Fatalf("%s %s: decode %s: %v", method, path, out, err)
		}
	}
}

// me makes sure the user exists on the server (every authenticated request upserts it).
func (a *apiClient) me() {
	a.t.Helper()
	a.mustJSON(http.MethodGet, "/api/v1/me", nil, http.StatusOK, nil)
}

func (a *apiClient) createConversation(kind, title string, members ...string) apiConversation {
	a.t.Helper()
	var c apiConversation
	body := map[string]any{"kind": kind, "participant_ids": members}
	if title != "" {
		body["title"] = title
	}
	status, out := a.do(http.MethodPost, "/api/v1/conversations", body)
	if status != http.StatusCreated && status != http.StatusOK {
		a.t.Fatalf("create %s conversation as %s: status %d: %s", kind, a.user.Sub, status, out)
	}
	if err := json.Unmarshal(out, &c); err != nil {
		a.t.Fatalf("create conversation: decode %s: %v", out, err)
	}
	return c
}

func (a *apiClient) conversation(id int64) apiConversation {
	a.t.Helper()
	var c apiConversation
	a.mustJSON(http.MethodGet, fmt.Sprintf("/api/v1/conversations/%d", id), nil, http.StatusOK, &c)
	return c
}

// send posts a message and answers status and the message (when the status is 200/201).
func (a *apiClient) send(ctx context.Context, convID int64, body, clientMsgID string) (int, apiMessage, error) {
	in := map[string]any{"body": body}
	if clientMsgID != "" {
		in["client_msg_id"] = clientMsgID
	}
	status, out, err := a.raw(ctx, http.MethodPost, fmt.Sprintf("/api/v1/conversations/%d/messages", convID), "", in)
	var m apiMessage
	if err != nil {
		return status, m, err
	}
	if status == http.StatusOK || status == http.StatusCreated {
		if err := json.Unmarshal(out, &m); err != nil {
			return status, m, fmt.Errorf("decode message %s: %w", out, err)
		}
	} else {
		return status, m, fmt.Errorf("send to %d as %s: status %d: %s", convID, a.user.Sub, status, out)
	}
	return status, m, nil
}

// mustSend sends a message that must be created (201).
func (a *apiClient) mustSend(convID int64, body, clientMsgID string) apiMessage {
	a.t.Helper()
	status, m, err := a.send(context.Background(), convID, body, clientMsgID)
	if err != nil || status != http.StatusCreated {
		a.t.Fatalf("send as %s: status %d, err %v", a.user.Sub, status, err)
	}
	return m
}

// history pages through GET messages?after_seq=… and answers every message after
// afterSeq, ascending.
func (a *apiClient) history(ctx context.Context, convID, afterSeq int64) ([]apiMessage, error) {
	var all []apiMessage
	for range 10000 {
		status, out, err := a.raw(ctx, http.MethodGet,
			fmt.Sprintf("/api/v1/conversations/%d/messages?after_seq=%d&limit=200", convID, afterSeq), "", nil)
		if err != nil {
			return all, err
		}
		if status != http.StatusOK {
			return all, &statusError{status: status, body: string(out)}
		}
		var page struct {
			Messages []apiMessage `json:"messages"`
			HasMore  *bool        `json:"has_more"`
		}
		if err := json.Unmarshal(out, &page); err != nil {
			return all, fmt.Errorf("decode history page: %w", err)
		}
		if page.HasMore == nil {
			return all, fmt.Errorf("history page without has_more: %s", out)
		}
		for _, m := range page.Messages {
			if m.Seq <= afterSeq {
				return all, fmt.Errorf("history after_seq=%d answered seq %d (not ascending)", afterSeq, m.Seq)
			}
			afterSeq = m.Seq
			all = append(all, m)
		}
		if !*page.HasMore {
			return all, nil
		}
		if len(page.Messages) == 0 {
			return all, errors.New("history page is empty but has_more is true")
		}
	}
	return all, errors.New("history: too many pages")
}

type statusError struct {
	status int
	body   string
}

func (e *statusError) Error() string { return fmt.Sprintf("status %d: %s", e.status, e.body) }

// wantAPIError checks an answer against the JSON error shape of the contract.
func wantAPIError(t testing.TB, what string, status int, body []byte, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("%s: status %d, want %d; body %s", what, status, wantStatus, body)
		return
	}
	var e struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == nil {
		t.Errorf("%s: body is not the JSON error shape: %q (%v)", what, body, err)
		return
	}
	if e.Error.Code != wantCode || e.Error.Message == "" {
		t.Errorf("%s: error %+v, want code %q and a message", what, *e.Error, wantCode)
	}
}

// ---------------------------------------------------------------------------------------
// Browser session without a browser

// webSession is a signed-in browser session: cookies and the page's CSRF token.
type webSession struct {
	t       testing.TB
	base    string
	cookies map[string]string
	csrf    string
	http    *http.Client
}

var csrfMeta = regexp.MustCompile(`<meta\s+name="csrf-token"\s+content="([^"]+)"`)

// signInPortal posts the user's token to /auth/portal as the portal's sign-in form would
// and keeps the session cookie and the CSRF token of the conversation list.
func (s *server) signInPortal(u testUser) *webSession {
	s.t.Helper()
	w := &webSession{t: s.t, base: s.URL, cookies: map[string]string{}, http: &http.Client{
		Transport:     apiTransport,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	status, _, _ := w.request(http.MethodPost, "/auth/portal", url.Values{"token": {u.Token}})
	if status != http.StatusSeeOther || len(w.cookies) == 0 {
		s.t.Fatalf("portal sign-in of %s: status %d, cookies %v", u.Sub, status, w.cookies)
	}
	status, page, _ := w.request(http.MethodGet, "/", nil)
	m := csrfMeta.FindStringSubmatch(page)
	if status != http.StatusOK || m == nil {
		s.t.Fatalf("conversation list of %s: status %d, csrf meta found: %v", u.Sub, status, m != nil)
	}
	w.csrf = m[1]
	return w
}

// request does a page request with the session (a form post when form is not nil) and
// answers status, body and Content-Type; headers are "Name: value".
func (w *webSession) request(method, path string, form url.Values, headers ...string) (int, string, string) {
	w.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, w.base+path, body)
	if err != nil {
		w.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if method != http.MethodGet {
		req.Header.Set("Origin", w.base) // same origin, as the browser says
		if w.csrf != "" {
			req.Header.Set("X-CSRF-Token", w.csrf)
		}
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	for k, v := range w.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := w.http.Do(req)
	if err != nil {
		w.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(w.cookies, c.Name)
		} else {
			w.cookies[c.Name] = c.Value
		}
	}
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		w.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return resp.StatusCode, string(out), resp.Header.Get("Content-Type")
}

// ---------------------------------------------------------------------------------------
// The SSE client

// sseEvent is one dispatched event.
type sseEvent struct {
	Type string
	ID   string // the last event ID once this event was dispatched
	Data string
	Conn int // the connection that carried it, from 1
	At   time.Time
}

// convLog is what a client has seen of one conversation.
type convLog struct {
	have        map[int64]string // seq → how the client first got it: "stream" or "fetch"
	streamCount map[int64]int    // seq → message.new events that carried it
	arrival     []int64          // seqs in the order the client first got them
	maxSeen     int64
	lastID      string   // event id of maxSeen
	outOfOrder  []string // first arrivals below an already seen seq
	streamDups  []int64  // seqs the stream carried more than once
	fetched     int      // messages that only catch-up supplied
	messages    map[int64]apiMessage
	firstAt     map[int64]time.Time // when the seq first arrived
}

func newConvLog() *convLog {
	return &convLog{have: map[int64]string{}, streamCount: map[int64]int{}, messages: map[int64]apiMessage{},
		firstAt: map[int64]time.Time{}}
}

// contiguous answers the highest k such that seqs 1..k have all arrived.
func (l *convLog) contiguous() int64 {
	k := int64(0)
	for {
		if _, ok := l.have[k+1]; !ok {
			return k
		}
		k++
	}
}

// sseClient is one user's live connection to GET /api/v1/events, as a real client keeps
// it: it reconnects with Last-Event-ID after the server's retry delay, and on resync it
// catches up on the conversations it tracks with after_seq, deduplicating by seq.
type sseClient struct {
	t    testing.TB
	user testUser
	http *http.Client

	mu         sync.Mutex
	base       string
	lastID     string
	retry      time.Duration
	opened     int // connections that answered 200 and started the stream
	resyncs    int
	comments   int
	events     []sseEvent
	convs      map[int64]*convLog
	tracked    map[int64]bool
	problems   []string // protocol errors: bad answers, undecodable data
	disconnect []string // why connections ended
	running    bool
	cancel     context.CancelFunc
	done       chan struct{}
	keepEvents bool
	apiHTTP    *http.Client // the catch-up's client, when not the shared one (TLS to a proxy)
}

// newSSEClient answers a client of u on s; it connects on Start.
func (s *server) newSSEClient(u testUser) *sseClient {
	c := &sseClient{
		t: s.t, user: u, base: s.URL, retry: time.Second, keepEvents: true,
		http:    &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}},
		convs:   map[int64]*convLog{},
		tracked: map[int64]bool{},
	}
	s.t.Cleanup(c.Stop)
	return c
}

// SetBase points the client at another server (a restarted process).
func (c *sseClient) SetBase(base string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.base = base
}

// Track makes the client catch up on conversation id on resync.
func (c *sseClient) Track(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tracked[id] = true
	if c.convs[id] == nil {
		c.convs[id] = newConvLog()
	}
}

// Start connects (with the remembered Last-Event-ID, if any) and keeps reconnecting
// until Stop.
func (c *sseClient) Start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.running, c.cancel, c.done = true, cancel, make(chan struct{})
	go c.loop(ctx, c.done)
}

// Stop disconnects and stops reconnecting; the client keeps its last event ID.
func (c *sseClient) Stop() {
	c.mu.Lock()
	if !c.running {
		c.mu.Unlock()
		return
	}
	c.running = false
	cancel, done := c.cancel, c.done
	c.mu.Unlock()
	cancel()
	<-done
}

// StartAndWait starts the client and waits until its stream is open, i.e. subscribed.
func (c *sseClient) StartAndWait(timeout time.Duration) {
	c.t.Helper()
	c.mu.Lock()
	n := c.opened
	c.mu.Unlock()
	c.Start()
	if !c.waitUntil(timeout, func() bool { return c.opened > n }) {
		c.t.Fatalf("SSE stream of %s did not open within %s; problems: %v", c.user.Sub, timeout, c.Problems())
	}
}

func (c *sseClient) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	for {
		err := c.connect(ctx)
		if ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		c.disconnect = append(c.disconnect, fmt.Sprint(err))
		wait := c.retry
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// connect runs one connection until it ends; it answers why.
func (c *sseClient) connect(ctx context.Context) error {
	c.mu.Lock()
	base, lastID := c.base, c.lastID
	c.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/events", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.user.Token)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		c.problem("events answered %d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		return fmt.Errorf("status %d", resp.StatusCode)
	}

	br := bufio.NewReaderSize(resp.Body, 64<<10)
	var (
		conn    int
		evType  string
		data    strings.Builder
		hasData bool
		idBuf   = lastID
		first   = true
	)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err // a partial line at the end is not an event
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if first {
			// The server writes its first bytes after it has subscribed.
			first = false
			c.mu.Lock()
			c.opened++
			conn = c.opened
			c.mu.Unlock()
		}
		switch {
		case line == "":
			c.mu.Lock()
			c.lastID = idBuf
			c.mu.Unlock()
			if hasData {
				typ := evType
				if typ == "" {
					typ = "message"
				}
				d := strings.TrimSuffix(data.String(), "\n")
				c.handle(ctx, sseEvent{Type: typ, ID: idBuf, Data: d, Conn: conn, At: time.Now()})
			}
			evType, hasData = "", false
			data.Reset()
		case line[0] == ':':
			c.mu.Lock()
			c.comments++
			c.mu.Unlock()
		default:
			field, value, found := strings.Cut(line, ":")
			if found {
				value = strings.TrimPrefix(value, " ")
			}
			switch field {
			case "event":
				evType = value
			case "data":
				data.WriteString(value)
				data.WriteByte('\n')
				hasData = true
			case "id":
				if !strings.ContainsRune(value, 0) {
					idBuf = value
				}
			case "retry":
				if ms, err := strconv.Atoi(value); err == nil && ms >= 0 {
					c.mu.Lock()
					c.retry = time.Duration(ms) * time.Millisecond
					c.mu.Unlock()
				}
			}
		}
	}
}

// handle reacts to one event as a client does.
func (c *sseClient) handle(ctx context.Context, ev sseEvent) {
	c.mu.Lock()
	if c.keepEvents || ev.Type != "message.new" {
		c.events = append(c.events, ev)
	}
	c.mu.Unlock()
	switch ev.Type {
	case "message.new":
		var m apiMessage
		if err := json.Unmarshal([]byte(ev.Data), &m); err != nil || m.Seq <= 0 || m.ConversationID <= 0 {
			c.problem("message.new with bad data %q: %v", ev.Data, err)
			return
		}
		c.mu.Lock()
		c.record(m, "stream", ev.ID, ev.At)
		c.mu.Unlock()
	case "resync":
		if !json.Valid([]byte(ev.Data)) {
			c.problem("resync with data that is not JSON: %q", ev.Data)
		}
		c.mu.Lock()
		c.resyncs++
		c.mu.Unlock()
		c.catchUp(ctx)
	default:
		if !json.Valid([]byte(ev.Data)) {
			c.problem("%s with data that is not JSON: %q", ev.Type, ev.Data)
		}
	}
}

// record notes one message the client got; c.mu is held.
func (c *sseClient) record(m apiMessage, via, eventID string, at time.Time) {
	l := c.convs[m.ConversationID]
	if l == nil {
		l = newConvLog()
		c.convs[m.ConversationID] = l
	}
	if via == "stream" {
		l.streamCount[m.Seq]++
		if l.streamCount[m.Seq] == 2 {
			l.streamDups = append(l.streamDups, m.Seq)
		}
	}
	if _, ok := l.have[m.Seq]; ok {
		return
	}
	if m.Seq < l.maxSeen {
		where := via
		if eventID != "" {
			where += " id " + eventID
		}
		l.outOfOrder = append(l.outOfOrder, fmt.Sprintf("seq %d (%s) after seq %d (id %s)", m.Seq, where, l.maxSeen, l.lastID))
	}
	l.have[m.Seq] = via
	l.arrival = append(l.arrival, m.Seq)
	if m.Seq > l.maxSeen {
		l.maxSeen, l.lastID = m.Seq, eventID
	}
	l.messages[m.Seq] = m
	l.firstAt[m.Seq] = at
	if via == "fetch" {
		l.fetched++
	}
}

// catchUp fetches what the tracked conversations have after what the client has.
func (c *sseClient) catchUp(ctx context.Context) {
	c.mu.Lock()
	type job struct{ id, after int64 }
	var jobs []job
	for id := range c.tracked {
		jobs = append(jobs, job{id, c.convs[id].contiguous()})
	}
	api := &apiClient{t: c.t, base: c.base, user: c.user, http: &http.Client{Transport: apiTransport, Timeout: 30 * time.Second}}
	if c.apiHTTP != nil {
		api.http = c.apiHTTP
	}
	c.mu.Unlock()
	for _, j := range jobs {
		msgs, err := api.history(ctx, j.id, j.after)
		var se *statusError
		if errors.As(err, &se) && se.status == http.StatusNotFound {
			// Not a member any more: a client drops the conversation.
			c.mu.Lock()
			delete(c.tracked, j.id)
			c.mu.Unlock()
			continue
		}
		if err != nil && ctx.Err() == nil {
			c.problem("catch up on %d after %d: %v", j.id, j.after, err)
		}
		now := time.Now()
		c.mu.Lock()
		for _, m := range msgs {
			c.record(m, "fetch", "", now)
		}
		c.mu.Unlock()
	}
}

func (c *sseClient) problem(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// waitUntil polls cond (called with c.mu held) until it holds or timeout passes.
func (c *sseClient) waitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		c.mu.Lock()
		ok := cond()
		c.mu.Unlock()
		if ok {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitSeqs waits until the client has every seq 1..n of conversation id.
func (c *sseClient) WaitSeqs(id, n int64, timeout time.Duration) bool {
	return c.waitUntil(timeout, func() bool {
		l := c.convs[id]
		return l != nil && l.contiguous() >= n
	})
}

// convSnapshot is a copy of what a client has of one conversation.
type convSnapshot struct {
	Arrival     []int64
	StreamCount map[int64]int
	StreamDups  []int64
	OutOfOrder  []string
	Fetched     int
	Messages    map[int64]apiMessage
	FirstAt     map[int64]time.Time
}

// Conv answers a snapshot of what the client has of conversation id.
func (c *sseClient) Conv(id int64) convSnapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.convs[id]
	if l == nil {
		l = newConvLog()
	}
	s := convSnapshot{
		Arrival: slices.Clone(l.arrival), StreamDups: slices.Clone(l.streamDups),
		OutOfOrder: slices.Clone(l.outOfOrder), Fetched: l.fetched,
		StreamCount: make(map[int64]int, len(l.streamCount)), Messages: make(map[int64]apiMessage, len(l.messages)),
		FirstAt: make(map[int64]time.Time, len(l.firstAt)),
	}
	for k, v := range l.streamCount {
		s.StreamCount[k] = v
	}
	for k, v := range l.messages {
		s.Messages[k] = v
	}
	for k, v := range l.firstAt {
		s.FirstAt[k] = v
	}
	return s
}

// Events answers the events received so far (message.new only if keepEvents).
func (c *sseClient) Events() []sseEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.events)
}

// Stats answers connections opened, resyncs received and heartbeat comments.
func (c *sseClient) Stats() (opened, resyncs, comments int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opened, c.resyncs, c.comments
}

func (c *sseClient) LastID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastID
}

func (c *sseClient) Problems() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.problems)
}

func (c *sseClient) Disconnects() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.disconnect)
}

// checkExactlyOnce reports, as test errors, what the client got of conversation id other
// than seqs 1..n, each once, in increasing order; it answers the number of out-of-order
// arrivals.
func (c *sseClient) checkExactlyOnce(t testing.TB, id, n int64) int {
	t.Helper()
	issues, outOfOrder := c.exactlyOnceIssues(id, n)
	for _, is := range issues {
		t.Errorf("%s: %s", c.user.Sub, is)
	}
	return outOfOrder
}

// exactlyOnceIssues answers what the client got of conversation id other than seqs 1..n,
// each once, in increasing order, and the number of out-of-order arrivals.
func (c *sseClient) exactlyOnceIssues(id, n int64) (issues []string, outOfOrder int) {
	s := c.Conv(id)
	var missing []int64
	for seq := int64(1); seq <= n; seq++ {
		if _, ok := s.Messages[seq]; !ok {
			missing = append(missing, seq)
		}
	}
	var extra []int64
	for seq := range s.Messages {
		if seq < 1 || seq > n {
			extra = append(extra, seq)
		}
	}
	if len(missing) > 0 {
		issues = append(issues, fmt.Sprintf("%d of seqs 1..%d never arrived (stream or catch-up): %v", len(missing), n, firstN(missing, 20)))
	}
	if len(extra) > 0 {
		issues = append(issues, fmt.Sprintf("seqs beyond 1..%d arrived: %v", n, firstN(extra, 20)))
	}
	if len(s.StreamDups) > 0 {
		issues = append(issues, fmt.Sprintf("the stream carried %d seqs more than once: %v", len(s.StreamDups), firstN(s.StreamDups, 20)))
	}
	if len(s.OutOfOrder) > 0 {
		issues = append(issues, fmt.Sprintf("%d out-of-order arrivals, e.g. %v", len(s.OutOfOrder), firstN(s.OutOfOrder, 3)))
	}
	if p := c.Problems(); len(p) > 0 {
		issues = append(issues, fmt.Sprintf("protocol problems: %v", firstN(p, 5)))
	}
	return issues, len(s.OutOfOrder)
}

func firstN[T any](s []T, n int) []T {
	if len(s) > n {
		return s[:n]
	}
	return s
}
