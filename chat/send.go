package chat

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/internal/trace"
	"github.com/dreamseed/messenger/ratelimit"
	"github.com/dreamseed/messenger/realtime"
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
			return messenger.Message{}, false, messenger.Errorf(messenger.EINVALID, "error.client_msg_id.uuid")
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
	elapsed := time.Since(start)
	s.metrics.messages.WithLabelValues(msg.Kind).Inc()
	s.metrics.sendDuration.Observe(elapsed.Seconds())
	trace.SetConversation(ctx, convID)
	s.logger.InfoContext(ctx, "message sent", slog.Int64("message_id", msg.ID), slog.Int64("seq", msg.Seq),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000))
	// The message ends the sender's typing; receivers drop the indicator on message.new.
	if _, err := s.events.SetTyping(ctx, convID, me.ID, false); err != nil {
		s.logger.Log(ctx, trace.FailureLevel(err), "clear typing", slog.String("error", err.Error()))
	}
	return msg, true, nil
}

// Group commit. A send waits in the process's queue under its conversation. At most
// sendTransactions batches are stored at once (SetSendTransactions): whoever takes one of
// those slots stores, in one transaction, the waiting sends of every conversation whose
// ordering lock it can take at once without waiting (up to maxBatch in all): each its own
// seq, idempotency and answer (store.InsertMessages, one gate call, in order of
// conversation id). It lets the slot go once the batch is committed, then publishes each
// new message, each conversation's in seq order, answers each sender and lets the locks
// go. One send alone is a batch of one, stored at once; under load the sends queue while
// the slots' transactions run and the next batches take them all, so the cost of a
// transaction (its statements' fixed part, its round trips, its commit's WAL flush) is
// shared by every send that waited for it, and the database runs no more send
// transactions at once than the slots.
//
// Locks are only ever waited for one at a time: a batch takes its conversations' locks
// with a try, never a wait, and a send whose conversation's lock is held (its previous
// batch still publishing, or inOrder) waits, holding nothing, until some lock is let go
// (s.lockFreed). So two batches cannot deadlock on each other or on inOrder. Across
// processes the database's row locks order the commits; a transaction takes its
// conversations' rows in order of id, so two batches in two processes cannot deadlock
// either.

// maxBatch bounds the sends of one transaction.
const maxBatch = 128

// DefaultSendTransactions is how many send transactions a process runs at once unless
// SetSendTransactions says otherwise. One stored the portal load with the least database
// CPU and the shortest tail on two cores: the batches grow instead of the transactions
// multiplying (docs/performance.md).
const DefaultSendTransactions = 1

// SetSendTransactions bounds the send transactions the process runs at once (n ≥ 1). It is
// called while the process wires itself, before the service serves.
func (s *Service) SetSendTransactions(n int) { s.sendSlots = make(chan struct{}, max(n, 1)) }

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

// sendQueue holds the process's waiting sends, by conversation, oldest first.
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

// takeLocked removes up to n of convID's waiting sends, oldest first. q.mu is held.
func (q *sendQueue) takeLocked(convID int64, n int) []*sendRequest {
	all := q.pending[convID]
	n = min(len(all), n)
	batch := all[:n:n]
	if n == len(all) {
		delete(q.pending, convID)
	} else {
		q.pending[convID] = all[n:]
	}
	return batch
}

// convSends is one conversation's part of a batch, in the order its sends queued.
type convSends struct {
	convID int64
	reqs   []*sendRequest
}

// lockSet is the ordering locks (stripes) a batch holds.
type lockSet map[uint64]struct{}

func stripeOf(convID int64) uint64 { return uint64(convID) % conversationLocks }

// release lets every lock of the set go, and wakes the sends that wait for one.
func (s *Service) release(held lockSet) {
	for st := range held {
		<-s.convLocks[st]
	}
	if len(held) > 0 {
		s.lockFreed.wake()
	}
}

// wakeup is a broadcast: every wait() taken before a wake() ends at it.
type wakeup struct {
	mu sync.Mutex
	ch chan struct{}
}

func (w *wakeup) wait() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

func (w *wakeup) wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
}

// takeBatch removes the sends waiting for the conversations whose locks are held (in
// held) or free now, which it takes into held: up to maxBatch sends in all, in order of
// conversation id.
func (s *Service) takeBatch(held lockSet) []convSends {
	q := &s.sendQueue
	q.mu.Lock()
	defer q.mu.Unlock()
	var batch []convSends
	budget := maxBatch
	for conv := range q.pending {
		if budget == 0 {
			break
		}
		st := stripeOf(conv)
		if _, ok := held[st]; !ok {
			select {
			case s.convLocks[st] <- struct{}{}:
				held[st] = struct{}{}
			default:
				continue // busy: its holder wakes the waiting sends when it lets go
			}
		}
		reqs := q.takeLocked(conv, budget)
		budget -= len(reqs)
		batch = append(batch, convSends{convID: conv, reqs: reqs})
	}
	slices.SortFunc(batch, func(a, b convSends) int { return cmp.Compare(a.convID, b.convID) })
	return batch
}

// sendInOrder queues r and, holding a send slot in turn, stores and publishes what waits,
// until r is answered (by this goroutine or by another holder of a slot).
func (s *Service) sendInOrder(convID int64, r *sendRequest) {
	s.sendQueue.push(convID, r)
	for {
		select {
		case <-r.done:
			return
		case s.sendSlots <- struct{}{}:
		}
		freed := s.lockFreed.wait()
		if s.storeWaiting(lockSet{}) {
			continue
		}
		// What waits (r, unless a batch took it) is of conversations whose locks are held:
		// the first lock let go wakes this send.
		select {
		case <-r.done:
			return
		case <-freed:
		}
	}
}

// storeWaiting stores, publishes and answers what waits for the conversations whose locks
// the caller holds in held or are free, and lets the caller's send slot (as soon as the
// batch is stored) and the locks go, whatever happens. It answers false if no send could
// be taken.
func (s *Service) storeWaiting(held lockSet) bool {
	defer s.release(held)
	slot := sync.OnceFunc(func() { <-s.sendSlots })
	defer slot()
	batch := s.takeBatch(held)
	if len(batch) == 0 {
		return false
	}
	s.sendBatch(batch, slot)
	return true
}

// sendBatch stores the batch's messages in one transaction, calls stored (the next batch
// may start), publishes the new ones, each conversation's in seq order, and answers every
// request. The caller holds the batch's conversations' locks. A batch that fails as a
// whole (an error that is no send's own answer) is stored again one conversation per transaction, and a conversation's part
// that fails as a whole one send per transaction, so that only the send it belongs to
// gets the error, each within the tries the batch left.
func (s *Service) sendBatch(batch []convSends, stored func()) {
	// The transaction is everyone's: it outlives any one request that ends meanwhile.
	ctx := context.WithoutCancel(batch[0].reqs[0].ctx)
	type twin struct{ group, index int }
	var (
		groups []store.SendGroup
		reqs   [][]*sendRequest
		twins  map[*sendRequest]twin // a later request → its first, in its conversation's sends
	)
	for _, cs := range batch {
		var (
			g    = store.SendGroup{ConvID: cs.convID, Last: s.lastStored.get(cs.convID)}
			mine []*sendRequest
		)
		for _, r := range cs.reqs {
			if err := r.ctx.Err(); err != nil {
				// Its client gave up waiting (nothing acknowledged): under overload the batch is
				// for those still waiting, as a single send's transaction was never begun for it.
				r.answer(messenger.Message{}, false, err)
				continue
			}
			// A sender's client_msg_id twice in one conversation's part: the later ones are
			// answered as the first. (In two conversations, the second finds the first's
			// message, of another conversation: a conflict, as one after the other.)
			if r.clientID != nil {
				if i := slices.IndexFunc(mine, func(o *sendRequest) bool {
					return o.me.ID == r.me.ID && o.clientID != nil && *o.clientID == *r.clientID
				}); i >= 0 {
					if twins == nil {
						twins = map[*sendRequest]twin{}
					}
					twins[r] = twin{len(groups), i}
					continue
				}
			}
			mine = append(mine, r)
			g.Sends = append(g.Sends, store.BatchSend{Sender: r.me.Identity(), Body: r.body, ClientMsgID: r.clientID, CanAnnounce: r.me.CanAnnounce()})
		}
		if len(g.Sends) > 0 {
			groups = append(groups, g)
			reqs = append(reqs, mine)
		}
	}
	if len(groups) == 0 {
		return
	}
	n := 0
	for _, g := range groups {
		n += len(g.Sends)
	}
	s.metrics.sendBatch.Observe(float64(n))
	results := s.storeSplit(ctx, groups, store.MaxAttempts)
	stored()

	// The batch's new messages go out in one publish, each conversation's in seq order (one
	// round trip to Redis, however many conversations the batch holds), then every sender
	// is answered: a 201 comes after the members' event is on its way.
	var pubs []realtime.Publication
	for gi, mine := range reqs {
		for i, r := range mine {
			res := results[gi][i]
			if res.Err != nil || !res.Created {
				continue
			}
			msg := res.Message
			msg.Sender = r.me
			results[gi][i].Message = msg
			s.lastStored.stored(msg)
			if res.ZoneID != 0 {
				pubs = s.appendZoneEvent(pubs, res.ZoneID, EventMessageNew, strconv.FormatInt(msg.Seq, 10), msg)
			} else {
				pubs = s.appendEvent(pubs, res.Members, EventMessageNew, msg, false)
			}
		}
	}
	s.publishAll(ctx, pubs)
	for gi, mine := range reqs {
		for i, r := range mine {
			r.answer(results[gi][i].Message, results[gi][i].Created, results[gi][i].Err)
		}
	}
	for r, t := range twins {
		res := results[t.group][t.index]
		r.answer(res.Message, false, res.Err)
	}
}

// storeSplit stores groups in one transaction, in at most tries tries; if it fails as a
// whole with an error no retry helps, it stores each conversation's sends in a transaction
// of their own, and a conversation's sends that fail as a whole one by one, so that the
// error is answered only to the send it belongs to. It answers each send, by group.
func (s *Service) storeSplit(ctx context.Context, groups []store.SendGroup, tries int) [][]store.BatchSent {
	results, used, err := s.storeBatch(ctx, groups, tries)
	if err == nil {
		return results
	}
	out := make([][]store.BatchSent, len(groups))
	n := 0
	for _, g := range groups {
		n += len(g.Sends)
	}
	// A transient failure would meet a split batch too, and a database that did not answer
	// in time would make each part wait as long: every send gets the error.
	if n == 1 || store.IsTransient(err) || messenger.ErrorCode(err) == messenger.EUNAVAILABLE {
		for gi, g := range groups {
			out[gi] = make([]store.BatchSent, len(g.Sends))
			for i := range out[gi] {
				out[gi][i].Err = err
			}
		}
		return out
	}
	left := max(1, tries-used)
	if len(groups) > 1 {
		for gi := range groups {
			out[gi] = s.storeSplit(ctx, groups[gi:gi+1], left)[0]
		}
		return out
	}
	g := groups[0]
	out[0] = make([]store.BatchSent, len(g.Sends))
	for i := range g.Sends {
		out[0][i] = s.storeSplit(ctx, []store.SendGroup{{ConvID: g.ConvID, Sends: g.Sends[i : i+1]}}, left)[0][0]
	}
	return out
}

// storeBatch runs one transaction of the groups' sends (in order of conversation id), with
// their announcement audits and the push sweep of their window, in at most tries tries; it
// answers how many it took.
func (s *Service) storeBatch(ctx context.Context, groups []store.SendGroup, tries int) ([][]store.BatchSent, int, error) {
	var (
		results [][]store.BatchSent
		sweep   bool
	)
	slot, push := s.pushSlotOf(time.Now())
	alone := len(groups) == 1 && len(groups[0].Sends) == 1
	used, err := s.db.InTxAttempts(ctx, nobody, tries, func(tx *store.Tx) error {
		sweep = false
		var err error
		if results, err = tx.InsertMessages(ctx, groups); err != nil {
			return err
		}
		if alone && results[0][0].Err != nil {
			return results[0][0].Err // nothing stored: no commit to wait for
		}
		for gi, g := range groups {
			res := results[gi]
			for i, r := range res {
				if !r.Created {
					continue
				}
				sweep = true
				if r.ZoneID != 0 {
					if err := tx.ActAs(ctx, g.Sends[i].Sender); err != nil {
						return err
					}
					if err := audit(ctx, tx, g.ConvID, messenger.AuditAnnouncement, nil, map[string]any{"seq": r.Message.Seq}); err != nil {
						return err
					}
				}
			}
		}
		// The window's push sweep, whoever is away: it decides when it runs. One per window,
		// however many messages fall in it; River's tables take a job from any transaction
		// (store/river.go), so no sender's identity is needed.
		sweep = sweep && push && !s.pushSweeps.has(slot)
		if !sweep {
			return nil
		}
		return s.enqueueSweep(ctx, tx, slot)
	})
	if err != nil {
		return nil, used, err
	}
	if sweep {
		s.pushSweeps.add(slot)
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
	st := stripeOf(convID)
	s.convLocks[st] <- struct{}{}
	defer s.release(lockSet{st: {}})
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
	seq := p.BeforeSeq
	if p.After {
		seq = p.AfterSeq
	}
	err = s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error {
		var err error
		msgs, hasMore, err = tx.MessagePage(ctx, convID, p.After, seq, p.Limit)
		return err
	})
	return msgs, hasMore, err
}
