package chat

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/internal/trace"
	"github.com/dreamseed/messenger/realtime"
)

// Stream is one live stream of a user, below HTTP: where the client is (its position) and
// the rules that decide what it is sent, in which order, with which id. A stream carries
// the events of the user's channel, resumed after the client's position from the engine's
// history when it still has it and with a resync when it does not, and the notices of the
// user's zone, resumed from the database.
//
// A stream's position is the id of every event it sends: "<user channel id>.z<zone>-<seq>"
// (the zone's newest notice sent), or the user channel's id alone for a user without a
// zone. An event without a Type in what a Stream answers is a position alone: the client's
// position moves on without an event.
//
// A Stream is used by one goroutine: OpenStream, subscribe to Channels, CatchUp, then
// Deliver each delivery of those channels and Resync when the engine may have lost some.
type Stream struct {
	s       *Service
	me      messenger.User
	channel string // the user's channel
	zone    string // the zone's channel; "" for a user without a zone
	pos     streamPosition

	// zoneResync: the client resumed without a position in this zone, so it may have
	// missed notices.
	zoneResync bool
	marks      receiptMarks
	// replayed are the ids CatchUp sent from history: events published between Subscribe
	// and History arrive live too, and are skipped.
	replayed map[string]bool
	// resynced: the client was told to resync, so what was published before it is skipped.
	resynced bool
	// fresh: the client gave no position (a stream that starts now).
	fresh bool
	// started: a new stream took the user channel's head as its position (CatchUp), so
	// that a client that never got an event still resumes from somewhere; events published
	// between Subscribe and that head arrive live, are sent, and leave the position alone.
	started bool
}

// OpenStream answers the stream of me that resumes after lastEventID, the client's
// Last-Event-ID ("" for a stream that starts now).
func (s *Service) OpenStream(me messenger.User, lastEventID string) *Stream {
	st := &Stream{s: s, me: me, channel: UserChannel(me.ID), pos: parseStreamPosition(lastEventID), marks: receiptMarks{},
		fresh: lastEventID == ""}
	// The zone's position: where the client was (if it was in this zone), else the newest
	// notice, once CatchUp knows it.
	switch {
	case me.ZoneID == 0:
		st.pos.hasZone = false
	case !st.pos.hasZone || st.pos.zone != me.ZoneID:
		st.zoneResync = lastEventID != ""
		st.pos.zone, st.pos.zoneSeq, st.pos.hasZone = me.ZoneID, -1, true
	}
	if me.ZoneID != 0 {
		st.zone = ZoneChannel(me.ZoneID)
	}
	return st
}

// Channels answers the channels the stream's subscription carries.
func (st *Stream) Channels() []string {
	if st.zone == "" {
		return []string{st.channel}
	}
	return []string{st.channel, st.zone}
}

// Position answers the stream's position now: the id of the last event it answered.
func (st *Stream) Position() string { return st.pos.String() }

// CatchUp answers what the client missed before the stream's subscription: the zone's
// notices after its position, from the database; the user channel's events after its
// position, from the engine's history; and a resync for what neither can answer. Call it
// once, after subscribing.
func (st *Stream) CatchUp(ctx context.Context) []realtime.Event {
	var out []realtime.Event
	if st.zone != "" {
		var again bool
		out, again = st.zoneCatchUp(ctx, out)
		st.zoneResync = st.zoneResync || again
	}
	if st.pos.user != "" {
		missed, err := st.s.events.History(ctx, st.channel, st.pos.user)
		if err != nil {
			if !errors.Is(err, realtime.ErrHistoryGone) {
				st.s.logger.Log(ctx, trace.FailureLevel(err), "stream history", slog.Int64("user_id", st.me.ID), slog.String("error", err.Error()))
			}
			out = append(out, st.Resync(ctx))
		} else {
			st.replayed = make(map[string]bool, len(missed))
			for _, ev := range missed {
				st.replayed[ev.ID] = true
				out = st.appendUser(out, ev)
			}
		}
	}
	if st.zoneResync && !st.resynced {
		out = append(out, st.Resync(ctx))
	}
	if st.fresh && !st.resynced {
		out = st.start(ctx, out)
	}
	return out
}

// start gives a new stream the user channel's head as its position, and the client that
// position (an event without a type): a page whose stream closes before any event came —
// a tab hidden for long — resumes from it, with nothing lost meanwhile. Without the head
// (the engine does not answer) the stream starts as before, without a position.
func (st *Stream) start(ctx context.Context, out []realtime.Event) []realtime.Event {
	head, err := st.s.events.Head(ctx, st.channel)
	if err != nil {
		st.s.logger.Log(ctx, trace.FailureLevel(err), "stream head", slog.Int64("user_id", st.me.ID), slog.String("error", err.Error()))
		return out
	}
	st.pos.user, st.started = head, true
	return append(out, realtime.Event{ID: st.pos.String()})
}

// Deliver answers what a live delivery of the stream's channels is for the client: nothing
// (sent already, or stale), the event with the stream's position after it as id, a
// position alone, or the zone's notices caught up from the database, in order.
func (st *Stream) Deliver(ctx context.Context, d realtime.Delivery) []realtime.Event {
	switch d.Channel {
	case st.channel:
		return st.deliverUser(d.Event)
	case st.zone:
		return st.deliverZone(ctx, d.Event)
	}
	return nil
}

// Resync answers the event that tells the client to catch up from the database. Its id
// is the user channel's position now, so a client that reconnects after catching up
// resumes from there instead of being told to resync again; what was published before it
// and is still to be delivered is skipped (the catch-up has it).
func (st *Stream) Resync(ctx context.Context) realtime.Event {
	id, err := st.s.events.Head(ctx, st.channel)
	if err != nil {
		st.s.logger.Log(ctx, trace.FailureLevel(err), "stream head", slog.Int64("user_id", st.me.ID), slog.String("error", err.Error()))
		id = "resync-" + strconv.FormatInt(time.Now().UnixMilli(), 10)
	}
	st.resynced = true
	st.pos.user = id
	return realtime.Event{Type: EventResync, ID: st.pos.String()}
}

// deliverUser orders an event of the user channel. Live events with ids come in id order,
// so the first one not replayed from history ends the skipping of replayed ones; droppable
// ones (no id, never in the history) pass without ending it.
func (st *Stream) deliverUser(ev realtime.Event) []realtime.Event {
	if st.replayed != nil && ev.ID != "" {
		if st.replayed[ev.ID] {
			return nil
		}
		st.replayed = nil
	}
	if st.resynced && ev.ID != "" {
		if cmp, ok := realtime.CompareEventIDs(ev.ID, st.pos.user); ok && cmp <= 0 {
			return nil // published before the resync: the client's catch-up has it
		}
	}
	if st.started && ev.ID != "" {
		if cmp, ok := realtime.CompareEventIDs(ev.ID, st.pos.user); ok && cmp <= 0 {
			ev.ID = st.pos.String() // published before the head the client has
			return []realtime.Event{ev}
		}
		st.started = false
	}
	return st.appendUser(nil, ev)
}

// appendUser appends an event of the user channel with the stream's position after it as
// id (none for droppable events); a stale receipt moves the position alone.
func (st *Stream) appendUser(out []realtime.Event, ev realtime.Event) []realtime.Event {
	if (ev.Type == EventReadReceipt || ev.Type == EventReadReceipts) && st.marks.stale(ev) {
		if ev.ID == "" {
			return out
		}
		st.pos.user = ev.ID
		return append(out, realtime.Event{ID: st.pos.String()})
	}
	if ev.ID != "" {
		st.pos.user = ev.ID
		ev.ID = st.pos.String()
	}
	return append(out, ev)
}

// deliverZone orders a notice of the zone's channel, whose id is its seq. Notices of two
// processes may be published out of seq order, and a publish may fail (the engine's
// resync): a live notice that is not the next one makes the stream catch up from the
// database, so each goes out once, in order.
func (st *Stream) deliverZone(ctx context.Context, ev realtime.Event) []realtime.Event {
	if ev.Type == EventMessageUpdated {
		// A notice changed in place (a tombstone): live only, it moves no position.
		ev.ID = st.pos.String()
		return []realtime.Event{ev}
	}
	seq, err := strconv.ParseInt(ev.ID, 10, 64)
	lost := ev.Type == EventResync // the engine failed to publish notices
	switch {
	case !lost && (err != nil || (st.pos.zoneSeq >= 0 && seq <= st.pos.zoneSeq)):
		return nil // sent already, from the database
	case !lost && (st.pos.zoneSeq < 0 || seq == st.pos.zoneSeq+1):
		st.pos.zoneSeq = seq
		ev.ID = st.pos.String()
		return []realtime.Event{ev}
	}
	out, again := st.zoneCatchUp(ctx, nil)
	if again {
		out = append(out, st.Resync(ctx))
	}
	return out
}

// zoneCatchUp appends the notices after the stream's zone position, from the database
// (none, for a position not known yet: it becomes the newest notice). again reports that
// not all could be caught up this way: the client must resync.
func (st *Stream) zoneCatchUp(ctx context.Context, out []realtime.Event) (_ []realtime.Event, again bool) {
	missed, last, err := st.s.ZoneCatchUp(ctx, st.me, st.pos.zoneSeq, PageSize)
	if err != nil {
		st.s.logger.Log(ctx, trace.FailureLevel(err), "stream zone catch-up", slog.Int64("user_id", st.me.ID), slog.String("error", err.Error()))
		return out, true
	}
	if st.pos.zoneSeq < 0 {
		st.pos.zoneSeq = last
		return out, false
	}
	for _, m := range missed {
		ev, err := liveEvent(EventMessageNew, m, false)
		if err != nil {
			st.s.logger.ErrorContext(ctx, "encode notice", slog.Int64("message_id", m.ID), slog.String("error", err.Error()))
			return out, true
		}
		st.pos.zoneSeq = m.Seq
		ev.ID = st.pos.String()
		out = append(out, ev)
	}
	return out, len(missed) == PageSize
}

// receiptMarks is the highest watermark a stream has announced per (conversation,
// reader). Two marks of one reader commit in order, but their receipts are published
// after the commits, by whichever process served each, so they can arrive the other way
// round: a receipt at or below what the stream announced already is stale, and is not
// sent (clients keep the higher one anyway), so the watermarks a client sees only rise.
type receiptMarks map[string]int64

// maxReceiptMarks bounds the memory of a long-lived stream; forgetting only lets a rare
// late receipt through as it came.
const maxReceiptMarks = 4096

// stale reports whether receipt ev (a message.read_receipt, or a message.read_receipts:
// stale when every watermark in it is) says nothing new to this stream, and otherwise notes
// it. A batch with anything new goes as it is: clients keep the higher watermark anyway.
func (m receiptMarks) stale(ev realtime.Event) bool {
	v, err := EventValue(ev)
	if err != nil {
		return false
	}
	switch r := v.(type) {
	case ReadReceipt:
		return !m.raise(r.ConversationID, r.UserID, r.LastReadSeq)
	case ReadReceipts:
		raised := false
		for _, w := range r.Receipts {
			raised = m.raise(r.ConversationID, w.UserID, w.LastReadSeq) || raised
		}
		return !raised
	}
	return false
}

// raise notes reader's watermark in conv and reports whether it is higher than the one
// noted.
func (m receiptMarks) raise(conv int64, reader string, seq int64) bool {
	key := strconv.FormatInt(conv, 10) + " " + reader
	if high, ok := m[key]; ok && seq <= high {
		return false
	}
	if len(m) >= maxReceiptMarks {
		clear(m)
	}
	m[key] = seq
	return true
}

// streamPosition is where a stream is: the last event id of the user channel ("" before
// any), and, for a user with a zone, the zone and its newest announcement seq sent (-1:
// not known yet).
type streamPosition struct {
	user    string
	zone    int64
	zoneSeq int64
	hasZone bool
}

// parseStreamPosition reads a Last-Event-ID ("<user id>.z<zone>-<seq>"); a malformed
// zone part counts as none.
func parseStreamPosition(id string) streamPosition {
	user, zonePart, found := strings.Cut(id, ".z")
	p := streamPosition{user: user}
	if !found {
		return p
	}
	zone, seq, ok := strings.Cut(zonePart, "-")
	z, err1 := strconv.ParseInt(zone, 10, 64)
	n, err2 := strconv.ParseInt(seq, 10, 64)
	if ok && err1 == nil && err2 == nil && z > 0 && n >= 0 {
		p.zone, p.zoneSeq, p.hasZone = z, n, true
	}
	return p
}

// String is the position as an SSE id.
func (p streamPosition) String() string {
	if !p.hasZone || p.zoneSeq < 0 {
		return p.user
	}
	return p.user + ".z" + strconv.FormatInt(p.zone, 10) + "-" + strconv.FormatInt(p.zoneSeq, 10)
}
