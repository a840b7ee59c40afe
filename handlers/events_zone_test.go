package handlers_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

// sseEvent is one event of a stream as a client reads it.
type sseEvent struct{ typ, id, data string }

// streamEvents reads body's events, as readEvents does, into a channel closed when body
// ends.
func streamEvents(body io.ReadCloser) chan sseEvent {
	out := make(chan sseEvent, 100)
	go func() {
		defer close(out)
		readEvents(body, out)
	}()
	return out
}

// readEvents reads an event stream's body until it ends, sending each event to out.
func readEvents(body io.ReadCloser, out chan<- sseEvent) {
	defer body.Close()
	sc := bufio.NewScanner(body)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.typ != "" {
				out <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			ev.typ = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			ev.data += strings.TrimPrefix(line, "data: ")
		}
	}
}

// openStream opens GET /api/v1/events with token (and lastID as Last-Event-ID) and answers
// its events as they come; the stream closes with the test.
func (e *env) openStream(token, lastID string) <-chan sseEvent {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		e.t.Fatalf("open stream: %v %v", err, resp)
	}
	return streamEvents(resp.Body)
}

func nextEvent(t *testing.T, events <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(15 * time.Second): // a loaded CI machine (-race, the browser tests beside) has taken over 5 s
		t.Fatal("no event within 15 s")
	}
	return sseEvent{}
}

func noEvent(t *testing.T, events <-chan sseEvent, what string) {
	t.Helper()
	select {
	case ev := <-events:
		t.Errorf("%s: got %s %s", what, ev.typ, ev.data)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestZoneStreamOrder: notices reach a zone's streams once and in seq order even when
// they are published out of order (two processes) or not at all (a failed publish): a
// notice that is not the next one makes the stream fetch the missing ones. A client that
// resumes with the position of another zone (it moved) is told to resync.
func TestZoneStreamOrder(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	teacher := mustUser(t, e.db, "zt", "김선영", "org-a")
	student := storetest.MustSignIn(t, e.db, "zs", "이민준", "org-a", "org-a-zone", messenger.RoleStudent)
	studentClaims := validClaims("zs", "이민준", "org-a")
	studentClaims["role"] = "student"
	token := sign(t, studentClaims)
	events := e.openStream(token, "")
	// An event of the student's own channel that comes through says the stream has taken
	// its zone position (the newest notice, none yet) and is live.
	if err := e.engine.Publish(ctx, chat.UserChannel(student.ID), realtime.Event{
		Type: chat.EventConversationUpdated, Data: []byte(`{"conversation_id":0,"reason":"ready"}`)}); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, events); ev.typ != chat.EventConversationUpdated {
		t.Fatalf("first event %s, want the ready mark", ev.typ)
	}

	// Three notices stored, none published; then the third published alone.
	var notices []messenger.Message
	var zoneConv int64
	for i := range 3 {
		err := e.db.InTx(ctx, teacher.Identity(), func(tx *store.Tx) error {
			id, _, err := tx.ZoneAnnouncement(ctx)
			zoneConv = id
			if err != nil {
				return err
			}
			sent, err := tx.InsertMessage(ctx, id, store.NewMessage{Kind: messenger.MessageText, Body: fmt.Sprintf("공지 %d", i+1), CanAnnounce: true})
			notices = append(notices, sent.Message)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	publish := func(m messenger.Message) {
		t.Helper()
		m.Sender = teacher
		raw, _ := json.Marshal(m.API())
		if err := e.engine.Publish(ctx, chat.ZoneChannel(teacher.ZoneID), realtime.Event{
			Type: chat.EventMessageNew, ID: fmt.Sprint(m.Seq), Data: raw}); err != nil {
			t.Fatal(err)
		}
	}
	publish(notices[2])
	var last sseEvent
	for want := int64(1); want <= 3; want++ {
		ev := nextEvent(t, events)
		var m struct {
			ConversationID int64 `json:"conversation_id"`
			Seq            int64 `json:"seq"`
		}
		if ev.typ != "message.new" || json.Unmarshal([]byte(ev.data), &m) != nil || m.Seq != want || m.ConversationID != zoneConv {
			t.Fatalf("event %d: %s %s, want the notice with seq %d", want, ev.typ, ev.data, want)
		}
		if !strings.HasSuffix(ev.id, fmt.Sprintf(".z%d-%d", teacher.ZoneID, want)) {
			t.Errorf("event id %q does not carry the zone position %d-%d", ev.id, teacher.ZoneID, want)
		}
		last = ev
	}
	// The earlier ones, published late, are not sent again.
	publish(notices[0])
	publish(notices[1])
	noEvent(t, events, "a notice published late, sent already")

	// A notice changed in place (its sender deleted its file: a tombstone) goes out live
	// on the zone's channel, without an id of its own, and moves no position.
	tomb := notices[0]
	tomb.Sender, tomb.Deleted, tomb.Body = teacher, true, ""
	raw, _ := json.Marshal(tomb.API())
	if err := e.engine.Publish(ctx, chat.ZoneChannel(teacher.ZoneID), realtime.Event{Type: chat.EventMessageUpdated, Data: raw}); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, events)
	var got messenger.APIMessage
	if ev.typ != chat.EventMessageUpdated || json.Unmarshal([]byte(ev.data), &got) != nil || got.Seq != 1 || !got.Deleted {
		t.Errorf("the tombstone on the zone's channel reached the stream as %s %s", ev.typ, ev.data)
	}
	if ev.id != last.id {
		t.Errorf("the tombstone's id %q, want the stream's position unchanged (%q)", ev.id, last.id)
	}

	// Resuming from the last id: nothing missed, nothing again.
	resumed := e.openStream(token, last.id)
	noEvent(t, resumed, "resuming at the newest notice")
	// Resuming with a position of another zone: resync.
	resyncs := e.counter("messenger_stream_resyncs_total")
	moved := e.openStream(token, ".z999999-2")
	if ev := nextEvent(t, moved); ev.typ != "resync" {
		t.Errorf("resuming with another zone's position: %s, want resync", ev.typ)
	}
	if n := e.counter("messenger_stream_resyncs_total"); n != resyncs+1 {
		t.Errorf("messenger_stream_resyncs_total went from %v to %v over one resync", resyncs, n)
	}
}
