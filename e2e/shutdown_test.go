package e2e

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dreamseed/messenger/internal/syncbuf"
)

// TestServeShutdownDrains: SIGTERM tells an open live stream to come back elsewhere (a
// retry hint and stream.closed {"reason":"shutdown"} at the stream's position), lets a
// send already under way finish (201, stored), refuses new connections, and the process
// exits 0 within MESSENGER_SHUTDOWN_TIMEOUT.
func TestServeShutdownDrains(t *testing.T) {
	const timeout = 10 * time.Second
	s := startServer(t, "MESSENGER_SHUTDOWN_TIMEOUT="+timeout.String())
	org := "org-shutdown-" + runNonce()
	alice := newUser(t, "shutdown-alice", "최유나", org, "teacher")
	bob := newUser(t, "shutdown-bob", "정하준", org, "student")
	conv := s.api(alice).directWith(s.api(bob))
	s.api(alice).mustSend(conv.ID, "before", uuid.NewString())

	// Bob's live stream, connected.
	req, err := http.NewRequest(http.MethodGet, s.URL+"/api/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+bob.Token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("events answered %d", resp.StatusCode)
	}
	var got syncbuf.Buffer
	streamEnded := make(chan struct{})
	go func() {
		io.Copy(&got, resp.Body)
		close(streamEnded)
	}()
	// A message while connected gives the stream a position.
	s.api(alice).mustSend(conv.ID, "while connected", uuid.NewString())
	wait := time.Now().Add(5 * time.Second)
	for !bytes.Contains([]byte(got.String()), []byte("event: message.new")) {
		if time.Now().After(wait) {
			t.Fatalf("the stream did not deliver the message: %q", got.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	ids := regexp.MustCompile(`(?m)^id: (\S+)$`).FindAllStringSubmatch(got.String(), -1)
	if len(ids) == 0 {
		t.Fatalf("the message came without an id: %q", got.String())
	}
	position := ids[len(ids)-1][1]

	// Alice's send, under way: its headers and half its body are in when SIGTERM comes.
	clientMsgID := uuid.NewString()
	body, _ := json.Marshal(map[string]string{"body": "in flight at SIGTERM", "client_msg_id": clientMsgID})
	conn, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/v1/conversations/%d/messages HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nAccept: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		conv.ID, s.Addr, alice.Token, len(body))
	half := len(body) / 2
	if _, err := conn.Write(body[:half]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the server has read what was sent

	terminated := time.Now()
	s.signal(syscall.SIGTERM)

	// The stream's last event.
	select {
	case <-streamEnded:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end within 5 s of SIGTERM")
	}
	text := got.String()
	closed := regexp.MustCompile(`(?m)^retry: (\d+)\nevent: stream\.closed\nid: (\S+)\ndata: (.*)\n\n\z`).FindStringSubmatch(text)
	if closed == nil {
		t.Fatalf("the stream ended with %q, want a retry and stream.closed with an id as its last event", text)
	}
	var ms int
	if fmt.Sscan(closed[1], &ms); ms < 500 || ms > 3000 {
		t.Errorf("retry: %s, want 500 to 3000 ms", closed[1])
	}
	if closed[2] != position {
		t.Errorf("stream.closed has id %q, want the stream's position %q", closed[2], position)
	}
	if closed[3] != `{"reason":"shutdown"}` {
		t.Errorf("stream.closed data %s, want {\"reason\":\"shutdown\"}", closed[3])
	}

	// New connections are refused once the listener has closed.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener still accepts connections 5 s after SIGTERM")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The send in flight finishes: 201, and the message is stored.
	if _, err := conn.Write(body[half:]); err != nil {
		t.Fatalf("finish the send's body: %v", err)
	}
	conn.SetReadDeadline(time.Now().Add(timeout))
	answer, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the send in flight got no answer: %v", err)
	}
	answer.Body.Close()
	if answer.StatusCode != http.StatusCreated {
		t.Errorf("the send in flight answered %d, want 201", answer.StatusCode)
	}

	select {
	case <-s.done:
		if s.err != nil {
			t.Errorf("the process exited with %v, want 0", s.err)
		}
		t.Logf("exited %s after SIGTERM", time.Since(terminated).Round(time.Millisecond))
	case <-time.After(timeout + 5*time.Second):
		t.Fatalf("the process did not exit within %s of SIGTERM", timeout+5*time.Second)
	}

	db, err := sql.Open("postgres", s.env("DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var stored int
	if err := db.QueryRow(`SELECT count(*) FROM messages WHERE conversation_id = $1 AND client_msg_id = $2`, conv.ID, clientMsgID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != 1 {
		t.Errorf("the send in flight stored %d messages, want 1", stored)
	}
	if bytes.Contains([]byte(s.Logs()), []byte("shutdown took longer")) {
		t.Error("the shutdown overran its bound")
	}
}

// TestShutdownPageReconnects: a page whose stream ends with reason shutdown is not
// signed out nor told its stream moved: it reconnects after the retry hint, to the process
// that took over the address, and what is sent there reaches it live.
func TestShutdownPageReconnects(t *testing.T) {
	first := startServer(t)
	teacher, direct, threadURL := teacherDirect(t, first)
	tb := signedInTab(t, newBrowser(t), first, demoParent.Name)
	openThread(tb, threadURL)
	nonce := runNonce()
	before := "재시작 전 " + nonce
	teacher.send(t, direct, before)
	waitJS(tb, "the page sees a message live", countTextJS(before)+" === 1", 5*time.Second)

	first.signal(syscall.SIGTERM)
	select {
	case <-first.done:
		if first.err != nil {
			t.Fatalf("the first process exited with %v", first.err)
		}
	case <-time.After(stopTimeout):
		t.Fatalf("the first process did not exit within %s of SIGTERM", stopTimeout)
	}
	second := startServerOn(t, first, "MESSENGER_ADDR="+first.Addr)

	after := "재시작 후 " + nonce
	newLiveAPI(t, second, demoTeacher).send(t, direct, after)
	waitJS(tb, "the page sees a message of the new process live", countTextJS(after)+" === 1", 20*time.Second)
	if eval[bool](tb, shownJS("signed-out", "")) || eval[bool](tb, shownJS("stream-replaced", "")) {
		t.Error("the page shows the signed-out or moved state after a shutdown")
	}
	if n := eval[int](tb, `window.__e2e.connects`); n < 2 {
		t.Errorf("the page's stream connected %d times, want a reconnect", n)
	}
	// No checkConsole: here one address has no process for a moment, and the page's
	// requests of that moment fail (behind a load balancer another process answers).
}
