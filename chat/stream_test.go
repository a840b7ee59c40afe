package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

// streamEnv is a chat service on a fresh database and a memory engine, with a teacher and
// a parent of one zone.
type streamEnv struct {
	*chatEnv
	teacher messenger.User
	parent  messenger.User
}

func newStreamEnv(t *testing.T) *streamEnv {
	t.Helper()
	e := newChatEnv(t)
	return &streamEnv{chatEnv: e,
		teacher: storetest.MustSignIn(t, e.db, "st-teacher", "김선영", "org-a", "zone-a", messenger.RoleTeacher),
		parent:  storetest.MustSignIn(t, e.db, "st-parent", "이민준", "org-a", "zone-a", messenger.RoleParent)}
}

// open opens a stream of u resuming after lastID, subscribed to its channels.
func (e *streamEnv) open(u messenger.User, lastID string) (*chat.Stream, *realtime.Subscription) {
	e.t.Helper()
	st := e.svc.OpenStream(u, lastID)
	sub, err := e.engine.Subscribe(context.Background(), st.Channels()...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(sub.Close)
	return st, sub
}

// publish publishes an event of type typ about data on u's channel, as the use cases do.
func (e *streamEnv) publish(u messenger.User, typ string, data any) {
	e.t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.engine.Publish(context.Background(), chat.UserChannel(u.ID), realtime.Event{Type: typ, Data: raw, Value: data}); err != nil {
		e.t.Fatal(err)
	}
}

// deliver hands the stream the next delivery of its subscription and answers what it
// makes of it.
func (e *streamEnv) deliver(st *chat.Stream, sub *realtime.Subscription) []realtime.Event {
	e.t.Helper()
	d, ok := within(sub, 5*time.Second)
	if !ok {
		e.t.Fatal("no delivery")
	}
	return st.Deliver(context.Background(), d)
}

// notices stores n notices of the zone without publishing them.
func (e *streamEnv) notices(n int) []messenger.Message {
	e.t.Helper()
	ctx := context.Background()
	var out []messenger.Message
	for i := range n {
		err := e.db.InTx(ctx, e.teacher.Identity(), func(tx *store.Tx) error {
			id, _, err := tx.ZoneAnnouncement(ctx)
			if err != nil {
				return err
			}
			sent, err := tx.InsertMessage(ctx, id, store.NewMessage{Kind: messenger.MessageText, Body: fmt.Sprintf("공지 %d", i+1), CanAnnounce: true})
			out = append(out, sent.Message)
			return err
		})
		if err != nil {
			e.t.Fatal(err)
		}
	}
	return out
}

// publishNotice publishes notice m on the zone's channel, its seq as id.
func (e *streamEnv) publishNotice(m messenger.Message) {
	e.t.Helper()
	raw, _ := json.Marshal(m.API())
	if err := e.engine.Publish(context.Background(), chat.ZoneChannel(e.teacher.ZoneID), realtime.Event{
		Type: chat.EventMessageNew, ID: fmt.Sprint(m.Seq), Data: raw}); err != nil {
		e.t.Fatal(err)
	}
}

// types answers the events' types, "" for a position alone.
func types(events []realtime.Event) []string {
	out := make([]string, len(events))
	for i, ev := range events {
		out[i] = ev.Type
	}
	return out
}

// TestStreamOpenAndResume: a new stream starts at the newest of everything and sends what
// comes, each event with the stream's position after it as id; a stream that resumes from
// one of those ids gets what came after it, once, even what is published while it opens.
func TestStreamOpenAndResume(t *testing.T) {
	e := newStreamEnv(t)
	ctx := context.Background()
	st, sub := e.open(e.parent, "")
	// Nothing to catch up but the position, the user channel's head: a client that gets no
	// event before it goes resumes from there.
	if got := st.CatchUp(ctx); len(got) != 1 || got[0].Type != "" || got[0].ID != st.Position() {
		t.Fatalf("a new stream caught up %+v, want its position alone", got)
	}
	zonePart := fmt.Sprintf(".z%d-0", e.parent.ZoneID)
	if !strings.HasSuffix(st.Position(), zonePart) || strings.HasPrefix(st.Position(), ".") {
		t.Errorf("a new stream's position %q, want the user channel's head and the zone's newest notice, none (%q)", st.Position(), zonePart)
	}
	var ids []string
	for i := range 3 {
		e.publish(e.parent, chat.EventConversationUpdated, chat.ConversationUpdate{ConversationID: int64(i + 1), Reason: "created"})
		got := e.deliver(st, sub)
		if len(got) != 1 || got[0].Type != chat.EventConversationUpdated || !strings.HasSuffix(got[0].ID, zonePart) || got[0].ID != st.Position() {
			t.Fatalf("event %d: %+v, want it with the stream's position (…%s) as id", i, got, zonePart)
		}
		ids = append(ids, got[0].ID)
	}

	resumed, rsub := e.open(e.parent, ids[0])
	e.publish(e.parent, chat.EventConversationUpdated, chat.ConversationUpdate{ConversationID: 4, Reason: "created"})
	missed := resumed.CatchUp(ctx)
	if len(missed) != 3 || missed[0].ID != ids[1] || missed[1].ID != ids[2] {
		t.Fatalf("resuming after the first: %+v, want the second, the third and the one published while opening", missed)
	}
	if got := e.deliver(resumed, rsub); len(got) != 0 {
		t.Errorf("the event published while the stream opened came twice: %+v", got)
	}
	e.publish(e.parent, chat.EventConversationUpdated, chat.ConversationUpdate{ConversationID: 5, Reason: "created"})
	if got := e.deliver(resumed, rsub); len(got) != 1 || got[0].Type != chat.EventConversationUpdated {
		t.Errorf("the next live event after resuming: %+v", got)
	}
}

// TestStreamResyncs: a stream whose position the engine no longer has, or whose position
// is of another zone, tells the client to resync, with the user channel's position now as
// id; what was published before that is not sent again, what comes after is.
func TestStreamResyncs(t *testing.T) {
	e := newStreamEnv(t)
	ctx := context.Background()
	for _, lastID := range []string{"0123abcd-17", fmt.Sprintf(".z%d-2", e.parent.ZoneID+1000)} {
		st, sub := e.open(e.parent, lastID)
		e.publish(e.parent, chat.EventConversationUpdated, chat.ConversationUpdate{ConversationID: 1, Reason: "before"})
		got := st.CatchUp(ctx)
		if len(got) != 1 || got[0].Type != chat.EventResync || got[0].ID != st.Position() {
			t.Fatalf("resuming from %q: %+v, want one resync at the stream's position", lastID, got)
		}
		if again := e.deliver(st, sub); len(again) != 0 {
			t.Errorf("resuming from %q: an event published before the resync was sent too: %+v", lastID, again)
		}
		e.publish(e.parent, chat.EventConversationUpdated, chat.ConversationUpdate{ConversationID: 2, Reason: "after"})
		if after := e.deliver(st, sub); len(after) != 1 || after[0].Type != chat.EventConversationUpdated {
			t.Errorf("resuming from %q: the event after the resync: %+v", lastID, after)
		}
		sub.Close()
	}
}

// TestStreamReceiptWatermarks: receipts of one reader may arrive out of order; a stream
// sends a reader's watermark only when it rises (a group's batch when any in it rises),
// and a stale one only moves the client's position.
func TestStreamReceiptWatermarks(t *testing.T) {
	e := newStreamEnv(t)
	st, sub := e.open(e.parent, "")
	st.CatchUp(context.Background())
	for _, c := range []struct {
		seq  int64
		sent bool
	}{{5, true}, {3, false}, {5, false}, {7, true}} {
		e.publish(e.parent, chat.EventReadReceipt, chat.ReadReceipt{ConversationID: 9, UserID: e.teacher.Sub, LastReadSeq: c.seq})
		got := e.deliver(st, sub)
		if len(got) != 1 || got[0].ID != st.Position() {
			t.Fatalf("receipt %d: %+v, want one event at the stream's position", c.seq, got)
		}
		if sent := got[0].Type == chat.EventReadReceipt; sent != c.sent {
			t.Errorf("receipt %d sent %v, want %v", c.seq, sent, c.sent)
		}
	}
	// Another reader's watermark is their own.
	e.publish(e.parent, chat.EventReadReceipt, chat.ReadReceipt{ConversationID: 9, UserID: e.parent.Sub, LastReadSeq: 1})
	if got := e.deliver(st, sub); len(got) != 1 || got[0].Type != chat.EventReadReceipt {
		t.Errorf("another reader's receipt: %+v", got)
	}
	// A group's batch goes when any watermark in it rises, and counts for the single
	// receipts after it; one with nothing new moves the position alone.
	batch := func(marks ...int64) chat.ReadReceipts {
		r := chat.ReadReceipts{ConversationID: 9}
		for i, sub := range []string{e.teacher.Sub, e.parent.Sub} {
			r.Receipts = append(r.Receipts, chat.Watermark{UserID: sub, LastReadSeq: marks[i]})
		}
		return r
	}
	for _, c := range []struct {
		what string
		typ  string
		data any
		sent bool
	}{
		{"a batch with nothing new", chat.EventReadReceipts, batch(7, 1), false},
		{"a batch with one rise", chat.EventReadReceipts, batch(6, 2), true},
		{"a single receipt below the batch", chat.EventReadReceipt, chat.ReadReceipt{ConversationID: 9, UserID: e.parent.Sub, LastReadSeq: 2}, false},
		{"a batch raising both", chat.EventReadReceipts, batch(8, 3), true},
	} {
		e.publish(e.parent, c.typ, c.data)
		got := e.deliver(st, sub)
		if len(got) != 1 || got[0].ID != st.Position() {
			t.Fatalf("%s: %+v, want one event at the stream's position", c.what, got)
		}
		if sent := got[0].Type == c.typ; sent != c.sent {
			t.Errorf("%s sent %v, want %v", c.what, sent, c.sent)
		}
	}
}

// TestStreamZoneOrder: the zone's notices reach a stream once each and in seq order, with
// the zone's position in their ids, however they are published: one published ahead of
// the others makes the stream catch up from the database, and those published late are
// not sent again. A stream that resumes at the newest notice gets nothing again.
func TestStreamZoneOrder(t *testing.T) {
	e := newStreamEnv(t)
	ctx := context.Background()
	st, sub := e.open(e.parent, "")
	st.CatchUp(ctx)
	notices := e.notices(3)
	e.publishNotice(notices[2])
	got := e.deliver(st, sub)
	if len(got) != 3 {
		t.Fatalf("notice 3 published first: %v, want the three notices", types(got))
	}
	for i, ev := range got {
		m, ok := ev.Value.(messenger.Message)
		if ev.Type != chat.EventMessageNew || !ok || m.Seq != int64(i+1) || m.Body != notices[i].Body {
			t.Errorf("event %d: %s %+v, want notice %d as a message", i, ev.Type, ev.Value, i+1)
		}
		if !strings.HasSuffix(ev.ID, fmt.Sprintf(".z%d-%d", e.parent.ZoneID, i+1)) {
			t.Errorf("event %d: id %q lacks the zone's position", i, ev.ID)
		}
	}
	e.publishNotice(notices[0])
	if late := e.deliver(st, sub); len(late) != 0 {
		t.Errorf("a notice published late was sent again: %v", types(late))
	}
	// The engine's word that it lost notices: caught up from the database (nothing new).
	if err := e.engine.Publish(ctx, chat.ZoneChannel(e.parent.ZoneID), realtime.Event{Type: chat.EventResync}); err != nil {
		t.Fatal(err)
	}
	if lost := e.deliver(st, sub); len(lost) != 0 {
		t.Errorf("a lost notice with nothing new: %v", types(lost))
	}
	resumed, _ := e.open(e.parent, st.Position())
	if again := resumed.CatchUp(ctx); len(again) != 0 {
		t.Errorf("resuming at the newest notice: %v", types(again))
	}
	behind, _ := e.open(e.parent, fmt.Sprintf(".z%d-1", e.parent.ZoneID))
	// (Its user channel's position is its own: none, from a client that had none.)
	if missed := behind.CatchUp(ctx); len(missed) != 2 || !strings.HasSuffix(st.Position(), missed[1].ID) {
		t.Errorf("resuming after notice 1: %+v, want notices 2 and 3", missed)
	}
}

// TestEventValue: an event carries its typed value to the streams of the process that
// published it, and one that crossed processes (data only) is decoded to the same type.
func TestEventValue(t *testing.T) {
	e := newStreamEnv(t)
	ctx := context.Background()
	sub, err := e.engine.Subscribe(ctx, chat.UserChannel(e.parent.ID))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	conv := newGroupOf(t, e)
	sent, _, err := e.svc.SendMessage(ctx, e.teacher, conv, "안녕하세요", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.MarkRead(ctx, e.parent, conv, sent.Seq); err != nil {
		t.Fatal(err)
	}
	next := func(typ string) realtime.Event {
		t.Helper()
		for {
			d, ok := within(sub, 5*time.Second)
			if !ok {
				t.Fatalf("no %s", typ)
			}
			if d.Event.Type == typ {
				return d.Event
			}
		}
	}
	if m, ok := next(chat.EventMessageNew).Value.(messenger.Message); !ok || m.ID != sent.ID || m.Body != sent.Body {
		t.Errorf("the new message carries %#v, want message %d", m, sent.ID)
	}
	ev := next(chat.EventReadReceipt)
	want := chat.ReadReceipt{ConversationID: conv, UserID: e.parent.Sub, LastReadSeq: sent.Seq}
	if ev.Value != want {
		t.Errorf("the receipt carries %#v, want %#v", ev.Value, want)
	}
	ev.Value = nil // as it comes from another process
	if v, err := chat.EventValue(ev); err != nil || v != want {
		t.Errorf("the receipt decoded: %#v, %v; want %#v", v, err, want)
	}
	m := messenger.Message{ID: 3, ConversationID: conv, Seq: 2, Kind: messenger.MessageText, Body: "안녕하세요",
		Sender: messenger.User{Sub: e.teacher.Sub, Name: e.teacher.Name, Role: e.teacher.Role}, CreatedAt: time.Now().UTC().Truncate(time.Second),
		JoinsPrevious: true}
	raw, _ := json.Marshal(m.API())
	v, err := chat.EventValue(realtime.Event{Type: chat.EventMessageNew, Data: raw})
	if got, ok := v.(messenger.Message); err != nil || !ok || got.Body != m.Body || got.Seq != m.Seq || got.Sender.Sub != m.Sender.Sub || !got.CreatedAt.Equal(m.CreatedAt) || !got.JoinsPrevious {
		t.Errorf("a message decoded: %#v, %v", v, err)
	}
}

// newGroupOf makes a group of the env's teacher with its parent, and answers its id.
func newGroupOf(t *testing.T, e *streamEnv) int64 {
	t.Helper()
	var id int64
	err := e.db.InTx(context.Background(), e.teacher.Identity(), func(tx *store.Tx) error {
		var err error
		id, err = tx.CreateGroup(context.Background(), "3학년 1반", []int64{e.parent.ID})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}
