package handlers_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

// racingEngine is an engine whose History first runs a hook once: what other requests
// publish while a resuming stream is between subscribing and reading the history.
type racingEngine struct {
	realtime.Engine
	mu     sync.Mutex
	before func()
}

func (r *racingEngine) History(ctx context.Context, channel, afterID string) ([]realtime.Event, error) {
	r.mu.Lock()
	hook := r.before
	r.before = nil
	r.mu.Unlock()
	if hook != nil {
		hook()
	}
	return r.Engine.History(ctx, channel, afterID)
}

// newEnvOn is newEnv on the given engine.
func newEnvOn(t *testing.T, engine realtime.Engine) *env {
	t.Helper()
	return newBase(t, nil).serve(t, engine)
}

// TestResumeReplaysOnce: events published while a resuming stream reads its history come
// both from the history and live; the live copies are skipped, also when a droppable event
// (presence, typing: no id, never in the history) comes between them.
func TestResumeReplaysOnce(t *testing.T) {
	mem := realtime.NewMemory(0)
	t.Cleanup(func() { mem.Close() })
	engine := &racingEngine{Engine: mem}
	e := newEnvOn(t, engine)
	ctx := context.Background()
	me := mustUser(t, e.db, "rr", "김선영", "org-r")
	token := sign(t, validClaims("rr", "김선영", "org-r"))
	channel := chat.UserChannel(me.ID)
	publish := func(typ, data string, droppable bool) {
		t.Helper()
		if err := e.engine.Publish(ctx, channel, realtime.Event{Type: typ, Data: []byte(data), Droppable: droppable}); err != nil {
			t.Fatal(err)
		}
	}

	first := e.openStream(token, "")
	publish(chat.EventConversationUpdated, `{"conversation_id":1,"reason":"e0"}`, false)
	ev := nextEvent(t, first)
	if ev.typ != chat.EventConversationUpdated || ev.id == "" {
		t.Fatalf("first event %s id %q, want e0 with an id", ev.typ, ev.id)
	}

	engine.mu.Lock()
	engine.before = func() {
		publish(chat.EventConversationUpdated, `{"conversation_id":1,"reason":"e1"}`, false)
		publish(chat.EventPresence, `{"user_id":"someone","online":true,"last_seen_at":null}`, true)
		publish(chat.EventConversationUpdated, `{"conversation_id":1,"reason":"e2"}`, false)
	}
	engine.mu.Unlock()
	resumed := e.openStream(token, ev.id)
	var got []string
	for range 3 {
		ev := nextEvent(t, resumed)
		got = append(got, ev.typ+" "+ev.data)
	}
	want := []string{
		chat.EventConversationUpdated + ` {"conversation_id":1,"reason":"e1"}`,
		chat.EventConversationUpdated + ` {"conversation_id":1,"reason":"e2"}`,
		chat.EventPresence + ` {"user_id":"someone","online":true,"last_seen_at":null}`,
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("resumed stream: %q, want %q", got, want)
		}
	}
	publish(chat.EventConversationUpdated, `{"conversation_id":1,"reason":"e3"}`, false)
	if ev := nextEvent(t, resumed); ev.data != `{"conversation_id":1,"reason":"e3"}` {
		t.Errorf("after the replay: %s %s, want e3 (a replayed event came twice)", ev.typ, ev.data)
	}
}

// TestZoneStreamCatchesUpOnResync: a resync on the zone's channel (the engine failed to
// publish a notice) makes the stream send the notices it lacks from the database.
func TestZoneStreamCatchesUpOnResync(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	teacher := mustUser(t, e.db, "zr", "김선영", "org-z")
	me := storetest.MustSignIn(t, e.db, "zrs", "이민준", "org-z", "org-z-zone", messenger.RoleStudent)
	claims := validClaims("zrs", "이민준", "org-z")
	claims["role"] = "student"
	events := e.openStream(sign(t, claims), "")
	// An event of the user channel that comes through says the stream is live.
	if err := e.engine.Publish(ctx, chat.UserChannel(me.ID), realtime.Event{
		Type: chat.EventConversationUpdated, Data: []byte(`{"conversation_id":0,"reason":"ready"}`)}); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, events)

	err := e.db.InTx(ctx, teacher.Identity(), func(tx *store.Tx) error {
		id, _, err := tx.ZoneAnnouncement(ctx)
		if err == nil {
			_, err = tx.InsertMessage(ctx, id, store.NewMessage{Kind: messenger.MessageText, Body: "공지", CanAnnounce: true})
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.engine.Publish(ctx, chat.ZoneChannel(teacher.ZoneID), realtime.Event{Type: chat.EventResync}); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, events)
	if ev.typ != chat.EventMessageNew || !strings.Contains(ev.data, `"body":"공지"`) {
		t.Fatalf("after the zone's resync: %s %s, want the notice", ev.typ, ev.data)
	}
	noEvent(t, events, "after the notice")
}
