package chat

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/ratelimit"
	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/store"
)

// ReadReceipt is the data of a message.read_receipt event: a member's watermark rose.
type ReadReceipt struct {
	ConversationID int64  `json:"conversation_id"`
	UserID         string `json:"user_id"` // portal id
	LastReadSeq    int64  `json:"last_read_seq"`
}

// ReadReceipts is the data of a message.read_receipts event: the watermarks of a
// conversation that rose within one coalescing interval, each member once with the
// highest, in the order of their portal ids.
type ReadReceipts struct {
	ConversationID int64       `json:"conversation_id"`
	Receipts       []Watermark `json:"receipts"`
}

// Watermark is one member's read watermark in a ReadReceipts.
type Watermark struct {
	UserID      string `json:"user_id"` // portal id
	LastReadSeq int64  `json:"last_read_seq"`
}

// DefaultReceiptCoalesce is the coalescing interval of other members' receipts unless told
// otherwise (MESSENGER_RECEIPT_COALESCE).
const DefaultReceiptCoalesce = time.Second

// SetReceiptCoalesce sets the interval within which the watermark rises of a group reach
// its other members as one message.read_receipts (0: each rise at once, as
// message.read_receipt). Call it while wiring, before the service serves.
func (s *Service) SetReceiptCoalesce(d time.Duration) {
	s.receipts.mu.Lock()
	s.receipts.interval = max(d, 0)
	s.receipts.mu.Unlock()
}

// MarkRead raises me's read watermark in a conversation to seq. When it rose, me's other
// tabs hear it at once (badges clear), as message.read_receipt. The other members hear it
// (read counts under their messages) at once in a direct conversation; in a group, while
// CoalesceReceipts runs, the rises of one interval go to them together, as one
// message.read_receipts per conversation (the first rise after a quiet interval at once).
func (s *Service) MarkRead(ctx context.Context, me messenger.User, convID, seq int64) error {
	if err := s.allow(ctx, ratelimit.Read, me); err != nil {
		return err
	}
	if seq <= 0 {
		return messenger.Errorf(messenger.EINVALID, "error.seq")
	}
	var after int64
	var members []int64
	err := s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error {
		before, a, err := tx.MarkRead(ctx, convID, seq)
		if err != nil || a <= before {
			return err
		}
		after = a
		members, err = tx.ParticipantIDs(ctx, convID)
		return err
	})
	if err != nil || after == 0 {
		return err
	}
	receipt := ReadReceipt{ConversationID: convID, UserID: me.Sub, LastReadSeq: after}
	if len(members) <= 2 {
		s.publish(ctx, members, EventReadReceipt, receipt) // a direct conversation, or me alone
		return nil
	}
	now, queued := s.receipts.add(convID, me.Sub, after, members, time.Now())
	if !queued {
		s.publish(ctx, members, EventReadReceipt, receipt) // no coalescing: as it always was
		return nil
	}
	pubs := s.appendEvent(nil, []int64{me.ID}, EventReadReceipt, receipt, false)
	if now != nil {
		pubs = s.appendEvent(pubs, now.members, EventReadReceipts, now.receipts(), false)
	}
	s.publishAll(ctx, pubs)
	return nil
}

// CoalesceReceipts publishes the coalesced receipts of groups as their intervals end,
// until ctx ends; then it publishes what is pending and returns, and receipts go out at
// once again. Without it running (tools, tests) every receipt goes out at once.
func (s *Service) CoalesceReceipts(ctx context.Context) {
	q := &s.receipts
	q.mu.Lock()
	q.running = q.interval > 0
	running := q.running
	q.mu.Unlock()
	if !running {
		return
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		due, next := q.takeDue(time.Now(), false)
		s.publishBatches(ctx, due)
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			q.mu.Lock()
			q.running = false
			q.mu.Unlock()
			due, _ := q.takeDue(time.Now(), true)
			s.publishBatches(ctx, due)
			return
		case <-q.wake:
		case <-timer.C:
		}
	}
}

// publishBatches publishes batches, in one round trip for a shared engine.
func (s *Service) publishBatches(ctx context.Context, batches []*receiptBatch) {
	var pubs []realtime.Publication
	for _, b := range batches {
		pubs = s.appendEvent(pubs, b.members, EventReadReceipts, b.receipts(), false)
	}
	s.publishAll(ctx, pubs)
}

// receiptQueue holds, per group, the watermark rises waiting for the group's interval to
// end (chat.CoalesceReceipts), and when each group last had its receipts published.
type receiptQueue struct {
	mu       sync.Mutex
	interval time.Duration
	running  bool
	last     map[int64]time.Time     // conversation → its last publish, within the interval
	pending  map[int64]*receiptBatch // conversation → the rises since
	wake     chan struct{}           // one slot: a batch was queued
}

func newReceiptQueue() receiptQueue {
	return receiptQueue{interval: DefaultReceiptCoalesce, last: make(map[int64]time.Time),
		pending: make(map[int64]*receiptBatch), wake: make(chan struct{}, 1)}
}

// receiptBatch is a group's watermark rises of one interval.
type receiptBatch struct {
	conv    int64
	members []int64          // the members to tell: as the latest rise read them
	marks   map[string]int64 // reader's portal id → highest watermark
	due     time.Time
}

func (b *receiptBatch) receipts() ReadReceipts {
	r := ReadReceipts{ConversationID: b.conv, Receipts: make([]Watermark, 0, len(b.marks))}
	for _, sub := range slices.Sorted(maps.Keys(b.marks)) {
		r.Receipts = append(r.Receipts, Watermark{UserID: sub, LastReadSeq: b.marks[sub]})
	}
	return r
}

// add takes the rise of reader's watermark in conv to seq. queued is false when nothing
// coalesces (off, or CoalesceReceipts is not running): the caller tells every member at
// once. Otherwise now is a batch the caller publishes at once (the group's first rise after
// a quiet interval), or nil: the rise waits for the interval's end.
func (q *receiptQueue) add(conv int64, reader string, seq int64, members []int64, t time.Time) (now *receiptBatch, queued bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.running || q.interval <= 0 {
		return nil, false
	}
	if b := q.pending[conv]; b != nil {
		if seq > b.marks[reader] {
			b.marks[reader] = seq
		}
		b.members = members
		return nil, true
	}
	b := &receiptBatch{conv: conv, members: members, marks: map[string]int64{reader: seq}}
	if last, ok := q.last[conv]; ok && t.Sub(last) < q.interval {
		b.due = last.Add(q.interval)
		q.pending[conv] = b
		select {
		case q.wake <- struct{}{}:
		default:
		}
		return nil, true
	}
	q.last[conv] = t
	return b, true
}

// takeDue removes the batches due at t (all of them with all), forgets the groups quiet for
// an interval, and answers the batches and when the next one is due (zero: none waits).
func (q *receiptQueue) takeDue(t time.Time, all bool) (due []*receiptBatch, next time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for conv, b := range q.pending {
		if all || !b.due.After(t) {
			due = append(due, b)
			delete(q.pending, conv)
			q.last[conv] = t
			continue
		}
		if next.IsZero() || b.due.Before(next) {
			next = b.due
		}
	}
	for conv, last := range q.last {
		if _, waiting := q.pending[conv]; !waiting && t.Sub(last) >= q.interval {
			delete(q.last, conv)
		}
	}
	slices.SortFunc(due, func(a, b *receiptBatch) int { return a.due.Compare(b.due) })
	return due, next
}
