package main

import (
	"context"
	"crypto/ecdh"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// fakeServer speaks the parts of docs/api.md the load generator uses: Bearer portal
// tokens, conversation creation, sending, after_seq reads, and a resumable SSE stream per
// user. fault decides, per message and recipient, how the stream carries it.
type fakeServer struct {
	t      *testing.T
	secret []byte

	mu       sync.Mutex
	convs    map[int64]*fakeConv
	nextConv int64
	nextMsg  int64
	users    map[string]*fakeStream
	pushSubs map[string][]string // user -> the endpoints of their push subscriptions
	fault    func(msgID int64, recipient, sender string) faultKind
	// closeFirstAfter ends every user's first stream connection after this many events
	// (0: never), so that the client must resume with Last-Event-ID.
	closeFirstAfter int
	noConversations bool
	// sendCost makes the server take one send at a time, each for this long (0: no
	// limit): a server with a capacity of 1/sendCost sends a second.
	sendCost time.Duration
	sendOne  sync.Mutex
}

type faultKind int

const (
	deliver faultKind = iota
	drop
	duplicate
	dropAndResync
)

type fakeConv struct {
	members []string
	msgs    []map[string]any
}

// fakeStream is one user's event log; a connection replays it after Last-Event-ID.
type fakeStream struct {
	mu          sync.Mutex
	events      []string // SSE frames without their id line
	changed     chan struct{}
	connections int
}

func (s *fakeStream) append(frame string) {
	s.mu.Lock()
	s.events = append(s.events, frame)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

func newFakeServer(t *testing.T, secret string) *fakeServer {
	return &fakeServer{
		t: t, secret: []byte(secret), convs: map[int64]*fakeConv{}, users: map[string]*fakeStream{}, pushSubs: map[string][]string{},
		fault: func(int64, string, string) faultKind { return deliver },
	}
}

func (f *fakeServer) stream(sub string) *fakeStream {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.users[sub]
	if s == nil {
		s = &fakeStream{changed: make(chan struct{})}
		f.users[sub] = s
	}
	return s
}

func (f *fakeServer) auth(r *http.Request) (string, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return "", false
	}
	parsed, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return f.secret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer("dreamseed-portal"), jwt.WithAudience("messenger"))
	if err != nil {
		return "", false
	}
	sub, _ := parsed.Claims.GetSubject()
	return sub, sub != ""
}

func fakeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/metrics" {
		io.WriteString(w, "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 3.3554432e+07\n")
		return
	}
	sub, ok := f.auth(r)
	if !ok {
		fakeJSON(w, 401, map[string]any{"error": map[string]string{"code": "unauthorized"}})
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/") // api v1 ...
	switch {
	case r.Method == "GET" && r.URL.Path == "/api/v1/events":
		f.serveEvents(w, r, sub)
	case r.Method == "POST" && r.URL.Path == "/api/v1/push/subscriptions":
		var body struct {
			Endpoint string `json:"endpoint"`
			Keys     struct {
				P256DH string `json:"p256dh"`
				Auth   string `json:"auth"`
			} `json:"keys"`
		}
		err := json.NewDecoder(r.Body).Decode(&body)
		key, _ := base64.RawURLEncoding.DecodeString(body.Keys.P256DH)
		secret, _ := base64.RawURLEncoding.DecodeString(body.Keys.Auth)
		if _, kerr := ecdh.P256().NewPublicKey(key); err != nil || kerr != nil || len(secret) != 16 || !strings.HasPrefix(body.Endpoint, "https://") {
			fakeJSON(w, 400, map[string]any{"error": map[string]string{"code": "invalid"}})
			return
		}
		f.mu.Lock()
		f.pushSubs[sub] = append(f.pushSubs[sub], body.Endpoint)
		f.mu.Unlock()
		fakeJSON(w, 201, map[string]string{"id": "s"})
	case r.Method == "POST" && r.URL.Path == "/api/v1/conversations":
		if f.noConversations {
			fakeJSON(w, 404, map[string]any{"error": map[string]string{"code": "not_found", "message": "Not found."}})
			return
		}
		var in struct {
			Kind           string   `json:"kind"`
			ParticipantIDs []string `json:"participant_ids"`
		}
		json.NewDecoder(r.Body).Decode(&in)
		f.mu.Lock()
		f.nextConv++
		id := f.nextConv
		members := append([]string{sub}, in.ParticipantIDs...)
		f.convs[id] = &fakeConv{members: members}
		f.mu.Unlock()
		var ps []map[string]string
		for _, m := range members {
			ps = append(ps, map[string]string{"id": m})
		}
		fakeJSON(w, 201, map[string]any{"id": id, "kind": in.Kind, "last_seq": 0, "participants": ps})
	case len(parts) == 5 && parts[2] == "conversations" && parts[4] == "messages":
		id, _ := strconv.ParseInt(parts[3], 10, 64)
		f.mu.Lock()
		c := f.convs[id]
		f.mu.Unlock()
		if c == nil {
			fakeJSON(w, 404, map[string]any{"error": map[string]string{"code": "not_found"}})
			return
		}
		if r.Method == "POST" {
			f.send(w, r, sub, id, c)
			return
		}
		after, _ := strconv.ParseInt(r.URL.Query().Get("after_seq"), 10, 64)
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		f.mu.Lock()
		var page []map[string]any
		for _, m := range c.msgs[min(int(after), len(c.msgs)):] {
			page = append(page, m)
		}
		f.mu.Unlock()
		more := len(page) > limit
		if more {
			page = page[:limit]
		}
		fakeJSON(w, 200, map[string]any{"messages": page, "has_more": more})
	default:
		fakeJSON(w, 404, map[string]any{"error": map[string]string{"code": "not_found"}})
	}
}

func (f *fakeServer) send(w http.ResponseWriter, r *http.Request, sub string, convID int64, c *fakeConv) {
	var in struct {
		Body        string `json:"body"`
		ClientMsgID string `json:"client_msg_id"`
	}
	json.NewDecoder(r.Body).Decode(&in)
	if f.sendCost > 0 {
		f.sendOne.Lock()
		if r.Context().Err() == nil { // the client gave up waiting
			time.Sleep(f.sendCost)
		}
		f.sendOne.Unlock()
	}
	f.mu.Lock()
	f.nextMsg++
	m := map[string]any{
		"id": f.nextMsg, "conversation_id": convID, "seq": len(c.msgs) + 1, "body": in.Body,
		"client_msg_id": in.ClientMsgID, "sender": map[string]any{"id": sub, "name": "x"}, "kind": "text",
		"created_at": time.Now().UTC(), "read_count": 0,
	}
	c.msgs = append(c.msgs, m)
	id := f.nextMsg
	f.mu.Unlock()
	raw, _ := json.Marshal(m)
	for _, to := range c.members {
		s := f.stream(to)
		frame := "event: message.new\ndata: " + string(raw) + "\n"
		switch f.fault(id, to, sub) {
		case deliver:
			s.append(frame)
		case duplicate:
			s.append(frame)
			s.append(frame)
		case dropAndResync:
			s.append("event: resync\ndata: {}\n")
		case drop:
		}
	}
	fakeJSON(w, 201, m)
}

func (f *fakeServer) serveEvents(w http.ResponseWriter, r *http.Request, sub string) {
	s := f.stream(sub)
	s.mu.Lock()
	s.connections++
	first := s.connections == 1
	s.mu.Unlock()
	pos := 0
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		pos, _ = strconv.Atoi(last)
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	fl := w.(http.Flusher)
	io.WriteString(w, ": connected\n\n")
	fl.Flush()
	sentHere := 0
	heartbeat := time.NewTicker(100 * time.Millisecond)
	defer heartbeat.Stop()
	for {
		s.mu.Lock()
		frames := s.events[pos:]
		changed := s.changed
		s.mu.Unlock()
		for _, fr := range frames {
			pos++
			fmt.Fprintf(w, "id: %d\n%s\n", pos, fr)
			sentHere++
			if first && f.closeFirstAfter > 0 && sentHere >= f.closeFirstAfter {
				fl.Flush()
				return
			}
		}
		fl.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-changed:
		case <-heartbeat.C:
			io.WriteString(w, ": heartbeat\n\n")
			fl.Flush()
		}
	}
}

func testConfig(url, secret string) config {
	cfg := defaultConfig()
	cfg.URL, cfg.Secret, cfg.MetricsURL = url, secret, url+"/metrics"
	cfg.Users, cfg.Rate, cfg.Conns = 20, 300, 8
	cfg.Duration, cfg.Warmup, cfg.Grace = 700*time.Millisecond, 200*time.Millisecond, 1500*time.Millisecond
	cfg.Progress, cfg.Seed = 0, 1
	return cfg
}

func TestRunAgainstAFakeServerCountsWhatTheStreamsMissed(t *testing.T) {
	secret := strings.Repeat("k", 32)
	f := newFakeServer(t, secret)
	f.closeFirstAfter = 7
	// Message 5 never reaches its sender's stream; message 7 reaches it twice; message 9
	// does not reach its sender's stream either, but a resync there makes the client catch
	// up, so it is recovered, not lost.
	f.fault = func(id int64, to, sender string) faultKind {
		if to != sender {
			return deliver
		}
		switch id {
		case 5:
			return drop
		case 7:
			return duplicate
		case 9:
			return dropAndResync
		}
		return deliver
	}
	srv := httptest.NewServer(f)
	defer srv.Close()

	cfg := testConfig(srv.URL, secret)
	cfg.Timeline = filepath.Join(t.TempDir(), "timeline.csv")
	cfg.SendTimeline = filepath.Join(t.TempDir(), "sends.csv")
	cfg.PushSubscribe = true
	before := time.Now()
	sum, err := run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// The timelines have a row for every measured delivery and send, in order of due time:
	// the deliveries' from the window's start, the sends' as Unix ms of this run.
	checkTimeline(t, cfg.Timeline, "due_ms,latency_ms", sum.DeliveryLatency.Count, 0, float64(time.Since(before).Milliseconds()))
	checkTimeline(t, cfg.SendTimeline, "due_unix_ms,latency_ms", sum.SendLatency.Count, float64(before.UnixMilli()), float64(time.Now().UnixMilli()))
	// Every user subscribed to web push once, each at an endpoint of their own.
	endpoints := map[string]bool{}
	for _, eps := range f.pushSubs {
		if len(eps) == 1 {
			endpoints[eps[0]] = true
		}
	}
	if len(f.pushSubs) != cfg.Users || len(endpoints) != cfg.Users {
		t.Errorf("push subscriptions of %d users, %d distinct single ones; want %d", len(f.pushSubs), len(endpoints), cfg.Users)
	}
	if sum.Conversations.Direct != 10 || sum.Conversations.Group != 2 {
		t.Errorf("conversations = %+v, want 10 direct and 2 groups", sum.Conversations)
	}
	// Open loop: every slot is sent (0.9 s at 300/s: 270), none skipped, all acknowledged.
	if sum.Sends.Attempted != 270 || sum.Sends.OK != 270 || sum.Sends.Errors != 0 || sum.Sends.MeasuredOK != 210 {
		t.Errorf("sends = %+v, want all 270 slots sent and acknowledged, 210 of them measured", sum.Sends)
	}
	// About 300 achieved; a loaded machine (and the race detector) slows the fake server.
	if sum.Sends.OfferedPerSecond != 300 || sum.Sends.PerSecond < 50 || sum.Sends.PerSecond > 330 {
		t.Errorf("offered %.1f/s achieved %.1f/s, want 300 and about 300", sum.Sends.OfferedPerSecond, sum.Sends.PerSecond)
	}
	if sum.Delivery.Lost != 1 || sum.Delivery.Duplicated != 1 {
		t.Errorf("lost %d duplicated %d, want 1 1; notes %q", sum.Delivery.Lost, sum.Delivery.Duplicated, sum.Notes)
	}
	if sum.Streams.Resyncs != 1 || sum.Delivery.Recovered < 1 || sum.Streams.CatchUps < 1 {
		t.Errorf("resyncs %d recovered %d catch-ups %d, want 1, >= 1, >= 1", sum.Streams.Resyncs, sum.Delivery.Recovered, sum.Streams.CatchUps)
	}
	if sum.Streams.Reconnects < 20 {
		t.Errorf("reconnects = %d, want every user's stream to have resumed once", sum.Streams.Reconnects)
	}
	if sum.Delivery.Live+sum.Delivery.Recovered < sum.Delivery.Expected-1 || sum.Delivery.Expected < 3*sum.Sends.OK {
		t.Errorf("delivery = %+v for %d sends", sum.Delivery, sum.Sends.OK)
	}
	if sum.DeliveryLatency.Count == 0 || sum.SendLatency.Count == 0 || sum.DeliveryLatency.P99 > 5000 {
		t.Errorf("latencies: send %+v delivery %+v", sum.SendLatency, sum.DeliveryLatency)
	}
	if sum.Delivery.NotStored == nil || *sum.Delivery.NotStored != 0 {
		t.Errorf("not stored = %v, want 0", sum.Delivery.NotStored)
	}
	if sum.RSS.MaxBytes != 32<<20 || sum.RSS.Samples < 1 {
		t.Errorf("rss = %+v", sum.RSS)
	}
	var out strings.Builder
	printTable(&out, sum)
	for _, want := range []string{"LOST", "DUPLICATED", "send → delivered", "32.0 MiB"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRunStopsWithAClearMessage(t *testing.T) {
	secret := strings.Repeat("k", 32)
	t.Run("conversation creation fails", func(t *testing.T) {
		f := newFakeServer(t, secret)
		f.noConversations = true
		srv := httptest.NewServer(f)
		defer srv.Close()
		_, err := run(context.Background(), testConfig(srv.URL, secret), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "create direct conversation") || !strings.Contains(err.Error(), "HTTP 404") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		srv := httptest.NewServer(newFakeServer(t, secret))
		defer srv.Close()
		_, err := run(context.Background(), testConfig(srv.URL, strings.Repeat("x", 32)), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "/api/v1/events") || !strings.Contains(err.Error(), "HTTP 401") {
			t.Errorf("err = %v", err)
		}
	})
}

// overloadedServer is a server that delivers every send but takes 10 ms over each, one
// at a time: 100 sends/s at most.
func overloadedServer(t *testing.T, secret string) *httptest.Server {
	t.Helper()
	f := newFakeServer(t, secret)
	f.fault = func(int64, string, string) faultKind { return deliver }
	f.sendCost = 10 * time.Millisecond
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv
}

// An overloaded server: the generator keeps sending on schedule (open loop), the achieved
// rate is the server's capacity, and the latency counts the queue from each send's due time.
func TestOpenLoopShowsTheQueueOfAnOverloadedServer(t *testing.T) {
	secret := strings.Repeat("k", 32)
	srv := overloadedServer(t, secret)

	cfg := testConfig(srv.URL, secret)
	cfg.Grace = 3 * time.Second
	sum, err := run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sends.Attempted != 270 || sum.Sends.OK != 270 || sum.Sends.Errors != 0 {
		t.Errorf("sends = %+v, want all 270 slots sent and acknowledged: none skipped", sum.Sends)
	}
	// At most the server's 100/s; less on a loaded machine, where its 10 ms sleeps run long.
	if sum.Sends.OfferedPerSecond != 300 || sum.Sends.PerSecond < 20 || sum.Sends.PerSecond > 130 {
		t.Errorf("offered %.1f/s achieved %.1f/s, want 300 offered and the server's 100/s achieved", sum.Sends.OfferedPerSecond, sum.Sends.PerSecond)
	}
	if sum.Sends.InFlightAtEnd < 50 || sum.Sends.MaxInFlight < sum.Sends.InFlightAtEnd || sum.Sends.DrainS < 0.5 || sum.Sends.Shed != 0 {
		t.Errorf("in flight max %d at end %d, drain %.1fs: want the backlog shown", sum.Sends.MaxInFlight, sum.Sends.InFlightAtEnd, sum.Sends.DrainS)
	}
	// The last sends were due at 0.9 s and answered at about 2.7 s: from their due time,
	// not from when their request got a connection (8 of them), they waited over a second.
	if sum.SendLatency.P99 < 1000 || sum.DeliveryLatency.P99 < 1000 {
		t.Errorf("send p99 %.0f ms, delivery p99 %.0f ms: the queue does not show", sum.SendLatency.P99, sum.DeliveryLatency.P99)
	}
	if sum.QueueDelay.P99 > 200 {
		t.Errorf("generator lag p99 %.0f ms: the generator itself fell behind", sum.QueueDelay.P99)
	}
	if sum.Delivery.Lost != 0 || sum.Delivery.Duplicated != 0 {
		t.Errorf("lost %d duplicated %d", sum.Delivery.Lost, sum.Delivery.Duplicated)
	}
}

// A send whose answer does not come by its due time + -timeout is an error, counted.
func TestOpenLoopCountsTimeouts(t *testing.T) {
	secret := strings.Repeat("k", 32)
	f := newFakeServer(t, secret)
	f.fault = func(int64, string, string) faultKind { return deliver }
	f.sendCost = 50 * time.Millisecond // 20 sends/s: most of 270 miss a 1 s deadline
	srv := httptest.NewServer(f)
	defer srv.Close()

	cfg := testConfig(srv.URL, secret)
	cfg.Timeout, cfg.Verify = time.Second, false
	sum, err := run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sends.Attempted != 270 || sum.Sends.OK+sum.Sends.Errors != 270 || sum.Sends.ErrorKinds["timeout"] < 100 {
		t.Errorf("sends = %+v, want every slot attempted and most of them timed out", sum.Sends)
	}
	if sum.SendLatency.Max > 1100 {
		t.Errorf("send max %.0f ms: an answer after the deadline counted as a success", sum.SendLatency.Max)
	}
}

// -convs groups sends only to the group conversations.
func TestSendToGroupsOnly(t *testing.T) {
	secret := strings.Repeat("k", 32)
	f := newFakeServer(t, secret)
	f.fault = func(int64, string, string) faultKind { return deliver }
	srv := httptest.NewServer(f)
	defer srv.Close()

	cfg := testConfig(srv.URL, secret)
	cfg.Convs = "groups"
	sum, err := run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sends.OK != 270 || sum.Convs != "groups" {
		t.Errorf("sends = %+v convs %q", sum.Sends, sum.Convs)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, c := range f.convs {
		if len(c.members) == 2 && len(c.msgs) > 0 {
			t.Errorf("direct conversation %d got %d messages", id, len(c.msgs))
		}
	}
}

// -max-in-flight bounds the generator's backlog in a saturation run: what it does not send
// is counted as shed, and what it sends is answered.
func TestMaxInFlightShedsAndCounts(t *testing.T) {
	secret := strings.Repeat("k", 32)
	srv := overloadedServer(t, secret)

	cfg := testConfig(srv.URL, secret)
	cfg.MaxInFlight, cfg.Verify = 20, false
	sum, err := run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sends.Shed < 100 || sum.Sends.Attempted+sum.Sends.Shed != 270 || sum.Sends.Errors != 0 || sum.Sends.MaxInFlight > 20 {
		t.Errorf("sends = %+v, want 270 slots sent or shed, at most 20 in flight, no errors", sum.Sends)
	}
	if sum.Sends.PerSecond < 20 || sum.Sends.PerSecond > 130 {
		t.Errorf("achieved %.1f/s, want the server's 100/s", sum.Sends.PerSecond)
	}
}

// checkTimeline checks the CSV file at path: header, then count rows of "due,latency" with
// due in [from, to] and in order, and every latency above zero.
func checkTimeline(t *testing.T, path, header string, count int64, from, to float64) {
	t.Helper()
	timeline, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(string(timeline)), "\n")
	if rows[0] != header || int64(len(rows)-1) != count || count == 0 {
		t.Errorf("%s: header %q and %d rows, want %s and %d", path, rows[0], len(rows)-1, header, count)
	}
	latencyOrder := true // each row's latency is its own: not also in order of latency
	for i, prev, prevLat := 1, from, 0.0; i < len(rows); i++ {
		var due, lat float64
		if _, err := fmt.Sscanf(rows[i], "%f,%f", &due, &lat); err != nil || due < prev || due > to || lat <= 0 {
			t.Fatalf("%s row %d %q after due %.3f: want %s in order, due up to %.0f", path, i, rows[i], prev, header, to)
		}
		latencyOrder = latencyOrder && lat >= prevLat
		prev, prevLat = due, lat
	}
	if latencyOrder && count >= 50 {
		t.Errorf("%s: %d rows in order of due time and of latency too: latencies sorted apart from their times", path, count)
	}
}
