package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/handlers"
	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/store/storetest"
)

// TestStreamWriteTimeout: a client that opens a stream over TCP and never reads, while
// events are published to it until the kernel's buffers fill, is dropped by the server
// within MESSENGER_STREAM_WRITE_TIMEOUT (plus slack) — not by its queue overflowing — and
// its user goes offline: a contact's stream hears it and last_seen_at is stored.
func TestStreamWriteTimeout(t *testing.T) {
	const timeout = 2 * time.Second
	engine := realtime.NewMemory(0)
	t.Cleanup(func() { engine.Close() })
	e := newBase(t, func(c *handlers.Config) { c.StreamWriteTimeout = timeout }).serve(t, engine)
	ctx, stop := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); e.svc.StorePresence(ctx) }()
	t.Cleanup(func() { stop(); <-stopped })

	stuck := storetest.MustSignIn(t, e.db, "stuck", "멈춤", "org-w", "org-w-zone", messenger.RoleTeacher)
	contact := storetest.MustSignIn(t, e.db, "contact", "친구", "org-w", "org-w-zone", messenger.RoleTeacher)
	if _, _, err := e.svc.CreateConversation(ctx, contact, messenger.KindGroup, "반", []string{stuck.Sub}); err != nil {
		t.Fatal(err)
	}
	heard := make(chan chat.PresenceChange, 10)
	events := e.openStream(sign(t, validClaims(contact.Sub, contact.Name, "org-w")), "") // subscribed once it answers
	go func() {
		for ev := range events {
			var p chat.PresenceChange
			if ev.typ == chat.EventPresence && json.Unmarshal([]byte(ev.data), &p) == nil && p.UserID == stuck.Sub {
				heard <- p
			}
		}
	}()

	// The stuck client: a request, then never a read.
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET /api/v1/events HTTP/1.1\r\nHost: messenger\r\nAuthorization: Bearer %s\r\n\r\n", sign(t, validClaims(stuck.Sub, stuck.Name, "org-w")))
	select {
	case p := <-heard:
		if !p.Online {
			t.Fatalf("the contact heard %+v, want the stuck user online", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stuck user's stream did not open")
	}

	// Events far larger than the sockets' buffers, far fewer than the queue holds.
	big := fmt.Appendf(nil, `{"conversation_id":1,"reason":"%s"}`, strings.Repeat("가", 100_000))
	for range 100 {
		if err := engine.Publish(ctx, chat.UserChannel(stuck.ID), realtime.Event{Type: chat.EventConversationUpdated, Data: big}); err != nil {
			t.Fatal(err)
		}
	}
	published := time.Now()
	select {
	case p := <-heard:
		took := time.Since(published)
		if p.Online || p.LastSeenAt == nil {
			t.Fatalf("the contact heard %+v, want the stuck user offline with last seen", p)
		}
		if took > timeout+3*time.Second {
			t.Errorf("the stuck stream closed %s after the events, want within %s and slack", took, timeout)
		}
		t.Logf("the stuck stream closed and its user went offline %s after 30 MB were published to it (write timeout %s)", took.Round(time.Millisecond), timeout)
	case <-time.After(timeout + 10*time.Second):
		t.Fatalf("the stuck stream still open %s after the events", timeout+10*time.Second)
	}
	var seen *time.Time
	if err := e.owner.QueryRow(`SELECT last_seen_at FROM users WHERE id = $1`, stuck.ID).Scan(&seen); err != nil || seen == nil {
		t.Errorf("the stuck user's last_seen_at: %v, %v", seen, err)
	}
	if n := e.counter("messenger_stream_overflows_total"); n != 0 {
		t.Errorf("messenger_stream_overflows_total = %v: the queue, not the write timeout, closed the stream", n)
	}
}
