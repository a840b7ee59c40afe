package handlers_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/handlers"
	"github.com/dreamseed/messenger/internal/syncbuf"
	"github.com/dreamseed/messenger/internal/trace"
	"github.com/dreamseed/messenger/realtime"
)

// openAPIStream opens user sub's JSON stream over the network with client.
func (e *env) openAPIStream(client *http.Client, token string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/api/v1/events", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("the stream answered %d: %s", resp.StatusCode, readBody(e.t, resp))
	}
	return resp
}

// online reports whether user id has a live connection.
func (e *env) online(id int64) bool {
	e.t.Helper()
	m, err := e.engine.Online(context.Background(), []int64{id})
	if err != nil {
		e.t.Fatal(err)
	}
	return m[id]
}

// TestDetachedStream: an HTTP/1.1 stream, served from its own goroutine once caught up,
// sends its events as a well-formed chunked body (Go's client reads them), ends the user's
// presence the moment the client closes the connection, and on a shutdown sends its last
// event and the body's end, which the server waits for.
func TestDetachedStream(t *testing.T) {
	e := newEnv(t, nil)
	token := sign(t, validClaims("detach1", "한도윤", "org-a"))
	resp := e.openAPIStream(e.client(), token)
	if te := resp.TransferEncoding; len(te) != 1 || te[0] != "chunked" {
		t.Fatalf("Transfer-Encoding %v, want chunked", te)
	}
	events := streamEvents(resp.Body)
	user := e.userID("detach1")
	// Many events at once, some larger than a chunk buffer: all arrive, in order, whole.
	big := strings.Repeat("가", 30_000)
	for conv := range int64(50) {
		ev := realtime.Event{Type: chat.EventConversationUpdated, Data: []byte(`{"conversation_id":` + itoa(conv+1) + `,"reason":"created","pad":"` + big[:int(conv%3)*30_000] + `"}`)}
		if err := e.engine.Publish(context.Background(), chat.UserChannel(user), ev); err != nil {
			t.Fatal(err)
		}
	}
	for conv := range int64(50) {
		ev := nextEvent(t, events)
		if ev.typ != chat.EventConversationUpdated || !strings.Contains(ev.data, `"conversation_id":`+itoa(conv+1)+`,`) {
			t.Fatalf("event %d: %s %.80s", conv, ev.typ, ev.data)
		}
	}
	if !e.online(user) {
		t.Fatal("not online with a stream open")
	}
	// The client goes: offline at once, not at the next heartbeat.
	resp.Body.Close()
	deadline := time.Now().Add(2 * time.Second)
	for e.online(user) {
		if time.Now().After(deadline) {
			t.Fatal("still online 2 s after the stream's connection closed")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A shutdown: stream.closed, then the end of the body (not a broken connection).
	resp = e.openAPIStream(e.client(), token)
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "retry: 1000\n" {
		t.Fatalf("the stream began %q, %v", line, err)
	}
	e.server.Drain()
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("the stream's body ended with %v after %q, want its end", err, rest)
	}
	if !strings.Contains(string(rest), "event: stream.closed") || !strings.Contains(string(rest), `"reason":"shutdown"`) {
		t.Fatalf("the stream's last words: %q", rest)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.server.WaitStreams(ctx); err != nil {
		t.Fatalf("the streams did not end after Drain: %v", err)
	}
}

// TestStreamHTTP10: an HTTP/1.0 client gets a body that ends with the connection, not
// chunks.
func TestStreamHTTP10(t *testing.T) {
	e := newEnv(t, nil)
	token := sign(t, validClaims("detach2", "한도윤", "org-a"))
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /api/v1/events HTTP/1.0\r\nAuthorization: Bearer "+token+"\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || len(resp.TransferEncoding) != 0 {
		t.Fatalf("%d, Transfer-Encoding %v: want 200 and a body to the connection's end", resp.StatusCode, resp.TransferEncoding)
	}
	events := streamEvents(resp.Body)
	e.publishUpdate(e.userID("detach2"), 7)
	if ev := nextEvent(t, events); ev.typ != chat.EventConversationUpdated || !strings.Contains(ev.data, `"conversation_id":7`) {
		t.Fatalf("the event: %+v", ev)
	}
	e.server.Drain()
	for ev := range events {
		if ev.typ == "stream.closed" {
			return
		}
	}
	t.Fatal("the body ended without stream.closed")
}

// TestStreamHTTP2: HTTP/2 cannot be hijacked: the stream stays on net/http and works.
func TestStreamHTTP2(t *testing.T) {
	b := newBase(t, nil)
	engine := realtime.NewMemory(0)
	t.Cleanup(func() { engine.Close() })
	logger := slog.New(trace.NewJSON(&syncbuf.Buffer{}, slog.LevelInfo))
	svc := chat.NewService(b.db, engine, logger, prometheus.NewRegistry(), b.cfg.Limits)
	h, server := handlers.New(b.cfg, b.db, svc, b.verifier, engine, logger)
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		server.Drain()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		server.WaitStreams(ctx)
	})
	client := srv.Client() // trusts the server's certificate, speaks HTTP/2
	token := sign(t, validClaims("detach3", "한도윤", "org-a"))
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %d, want HTTP/2 200", resp.Proto, resp.StatusCode)
	}
	events := streamEvents(resp.Body)
	var id int64
	if err := b.owner.QueryRow(`SELECT id FROM users WHERE sub = 'detach3'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	ev := realtime.Event{Type: chat.EventConversationUpdated, Data: []byte(`{"conversation_id":9,"reason":"created"}`)}
	if err := engine.Publish(context.Background(), chat.UserChannel(id), ev); err != nil {
		t.Fatal(err)
	}
	if got := nextEvent(t, events); got.typ != chat.EventConversationUpdated || !strings.Contains(got.data, `"conversation_id":9`) {
		t.Fatalf("the event over HTTP/2: %+v", got)
	}
	resp.Body.Close()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
