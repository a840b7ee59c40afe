package chat

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/ratelimit"
	"github.com/dreamseed/messenger/store"
)

// SendMessage stores me's message in a conversation and announces it to every member. It
// is idempotent by clientMsgID: the same id again answers the stored message with created
// false, stores nothing and announces nothing.
func (s *Service) SendMessage(ctx context.Context, me messenger.User, convID int64, body, clientMsgID string) (messenger.Message, bool, error) {
	if err := s.allow(ctx, ratelimit.Send, me); err != nil {
		return messenger.Message{}, false, err
	}
	start := time.Now()
	body, err := messenger.CleanBody(body)
	if err != nil {
		return messenger.Message{}, false, err
	}
	var clientID *string
	if clientMsgID != "" {
		id, err := uuid.Parse(clientMsgID)
		if err != nil {
			return messenger.Message{}, false, messenger.Errorf(messenger.EINVALID, "client_msg_id must be a UUID.")
		}
		canonical := id.String()
		clientID = &canonical
	}

	req := &sendRequest{ctx: ctx, me: me, body: body, clientID: clientID, done: make(chan struct{})}
	s.sendInOrder(convID, req)
	if req.err != nil || !req.created {
		return req.msg, false, req.err
	}
	msg := req.msg
	s.metrics.messages.WithLabelValues(msg.Kind).Inc()
	s.metrics.sendDuration.Observe(time.Since(start).Seconds())
	// The message ends the sender's typing; receivers drop the indicator on message.new.
	if _, err := s.events.SetTyping(ctx, convID, me.ID, false); err != nil {
		s.logger.Warn("clear typing", slog.String("error", err.Error()))
	}
	return msg, true, nil
}

// Group commit. The messages sent to one conversation while its previous ones are being
// stored wait in the conversation's queue; whoever takes the conversation's lock next
// stores everything waiting, up to maxBatch, in one transaction (store.InsertMessages:
// each its own seq, idempotency and answer), publishes each new one in seq order, then
// answers each sender. One send alone is a batch of one, stored at once; under load the
// batches grow by themselves, since a queue fills while the lock is held, so the cost of a
// transaction (its round trips, its commit's WAL flush) is shared instead of queued for.

// maxBatch bounds the sends of one transaction.
const maxBatch = 64

// sendRequest is one send waiting in its conversation's queue.
type sendRequest struct {
	ctx      context.Context
	me       messenger.User
	body     string
	clientID *string
	done     chan struct{} // closed once msg, created and err are set

	msg     messenger.Message
	created bool
	err     error
}

func (r *sendRequest) answer(msg messenger.Message, created bool, err error) {
	r.msg, r.created, r.err = msg, created, err
	close(r.done)
}

func (r *sendRequest) answered() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// sendQueue holds the sends waiting for the conversations of one lock stripe.
type sendQueue struct {
	mu      sync.Mutex
	pending map[int64][]*sendRequest
}

func (q *sendQueue) push(convID int64, r *sendRequest) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.pending == nil {
		q.pending = map[int64][]*sendRequest{}
	}
	q.pending[convID] = append(q.pending[convID], r)
}

// take removes and answers up to maxBatch of convID's waiting sends, oldest first.
func (q *sendQueue) take(convID int64) []*sendRequest {
	q.mu.Lock()
	defer q.mu.Unlock()
	all := q.pending[convID]
	n := min(len(all), maxBatch)
	batch := all[:n:n]
	if n == len(all) {
		delete(q.pending, convID)
	} else {
		q.pending[convID] = all[n:]
	}
	return batch
}

// sendInOrder queues r and, holding the conversation's lock in turn, stores and publishes
// what waits, until r is answered (by this goroutine or by another holder of the lock).
func (s *Service) sendInOrder(convID int64, r *sendRequest) {
	stripe := uint64(convID) % conversationLocks
	q, lock := &s.sendQueues[stripe], s.convLocks[stripe]
	q.push(convID, r)
	for {
		select {
		case <-r.done:
			return
		case lock <- struct{}{}:
		}
		func() {
			defer func() { <-lock }()
			// Answered meanwhile, r's sender returns now and leaves what waits to its senders.
			if !r.answered() {
				if batch := q.take(convID); len(batch) > 0 {
					s.sendBatch(convID, batch)
				}
			}
		}()
	}
}

// sendBatch stores the batch's messages in one transaction, publishes the new ones in seq
// order and answers every request. The caller holds the conversation's lock. A batch that
// fails as a whole (an error that is no send's own answer) is sent again one by one, so
// that only the send it belongs to gets it, each within the tries the batch left.
func (s *Service) sendBatch(convID int64, batch []*sendRequest) {
	// The transaction is everyone's: it outlives any one request that ends meanwhile.
	ctx := context.WithoutCancel(batch[0].ctx)
	// A sender's client_msg_id twice in one batch: the later ones are answered as the first.
	var (
		sends []store.BatchSend
		reqs  []*sendRequest
		twins map[*sendRequest]int // a later request → the index of its first in sends
	)
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			// Its client gave up waiting (nothing acknowledged): under overload the batch is
			// for those still waiting, as a single send's transaction was never begun for it.
			r.answer(messenger.Message{}, false, err)
			continue
		}
		if r.clientID != nil {
			if i := slices.IndexFunc(reqs, func(o *sendRequest) bool {
				return o.me.ID == r.me.ID && o.clientID != nil && *o.clientID == *r.clientID
			}); i >= 0 {
				if twins == nil {
					twins = map[*sendRequest]int{}
				}
				twins[r] = i
				continue
			}
		}
		reqs = append(reqs, r)
		sends = append(sends, store.BatchSend{Sender: r.me.Identity(), Body: r.body, ClientMsgID: r.clientID, CanAnnounce: r.me.CanAnnounce()})
	}

	if len(sends) == 0 {
		return
	}
	results, tries, err := s.storeBatch(ctx, convID, sends, store.MaxAttempts)
	if err != nil && len(sends) > 1 && !store.IsTransient(err) {
		results = make([]store.BatchSent, len(sends))
		for i := range sends {
			one, _, err := s.storeBatch(ctx, convID, sends[i:i+1], max(1, store.MaxAttempts-tries))
			if err != nil {
				results[i].Err = err
			} else {
				results[i] = one[0]
			}
		}
	} else if err != nil {
		results = make([]store.BatchSent, len(sends))
		for i := range results {
			results[i].Err = err
		}
	}

	for i, r := range reqs {
		res := results[i]
		if res.Err != nil || !res.Created {
			continue
		}
		msg := res.Message
		msg.Sender = r.me
		results[i].Message = msg
		if res.ZoneID != 0 {
			s.publishAnnouncement(r.ctx, res.ZoneID, msg)
		} else {
			s.publish(r.ctx, res.Members, EventMessageNew, msg.API())
		}
	}
	for i, r := range reqs {
		r.answer(results[i].Message, results[i].Created, results[i].Err)
	}
	for r, i := range twins {
		r.answer(results[i].Message, false, results[i].Err)
	}
}

// storeBatch runs one transaction of sends to convID, with their announcement audits and
// the conversation's push job, in at most tries tries; it answers how many it took.
func (s *Service) storeBatch(ctx context.Context, convID int64, sends []store.BatchSend, tries int) ([]store.BatchSent, int, error) {
	var (
		results []store.BatchSent
		windows []pushWindow
	)
	used, err := s.db.InTxAttempts(ctx, nobody, tries, func(tx *store.Tx) error {
		var err error
		windows = windows[:0]
		results, err = tx.InsertMessages(ctx, convID, sends)
		if err != nil {
			return err
		}
		if len(sends) == 1 && results[0].Err != nil {
			return results[0].Err // nothing stored: no commit to wait for
		}
		for i, res := range results {
			if !res.Created {
				continue
			}
			if res.ZoneID != 0 {
				if err := tx.ActAs(ctx, sends[i].Sender); err != nil {
					return err
				}
				if err := audit(ctx, tx, convID, store.AuditAnnouncement, nil, map[string]any{"seq": res.Message.Seq}); err != nil {
					return err
				}
			}
			// The conversation's push job of the window, whoever is away: it decides when it
			// runs. One per window, however many of the batch fall in it.
			w := s.pushWindowOf(res.Message)
			if w.conv == 0 || slices.Contains(windows, w) || s.pushWindows.has(w) {
				continue
			}
			if err := tx.ActAs(ctx, sends[i].Sender); err != nil {
				return err
			}
			if err := s.enqueuePushWindow(ctx, tx, w); err != nil {
				return err
			}
			windows = append(windows, w)
		}
		return nil
	})
	if err != nil {
		return nil, used, err
	}
	for _, w := range windows {
		s.pushEnqueued(w)
	}
	return results, used, nil
}

// conversationLocks serialize, inside this process, the messages of one conversation from
// before their transaction to after their publish, so that they are published in seq
// order. The conversation row lock alone orders the commits, not the publishes after
// them. Striped: a fixed array, not a map that grows with conversations. Each is a
// channel of one slot, so that a sender can wait for the lock or for its answer, whichever
// comes first, and waiters take it in turn.
const conversationLocks = 1024

// inOrder runs fn holding the lock of conversation convID.
func (s *Service) inOrder(convID int64, fn func() error) error {
	lock := s.convLocks[uint64(convID)%conversationLocks]
	lock <- struct{}{}
	defer func() { <-lock }()
	return fn()
}

// Page selects messages of a conversation: ascending after AfterSeq when After is set,
// otherwise newest first before BeforeSeq (0: from the newest).
type Page struct {
	After     bool
	AfterSeq  int64
	BeforeSeq int64
	Limit     int
}

// Messages answers a page of a conversation's messages in the page's order, and whether
// more lie beyond it.
func (s *Service) Messages(ctx context.Context, me messenger.User, convID int64, p Page) (msgs []messenger.Message, hasMore bool, err error) {
	if p.Limit <= 0 || p.Limit > 200 {
		p.Limit = PageSize
	}
	err = s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error {
		if _, err := tx.Conversation(ctx, convID); err != nil {
			return err
		}
		var err error
		if p.After {
			msgs, err = tx.MessagesAfter(ctx, convID, p.AfterSeq, p.Limit+1)
		} else {
			msgs, err = tx.MessagesBefore(ctx, convID, p.BeforeSeq, p.Limit+1)
		}
		if len(msgs) > p.Limit {
			msgs, hasMore = msgs[:p.Limit], true
		}
		return err
	})
	return msgs, hasMore, err
}
