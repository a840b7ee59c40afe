package chat

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/store"
)

// PresenceConfig tunes how users gone offline are stored and announced.
type PresenceConfig struct {
	// BatchSize is the most users one batch stores and announces (one statement, one
	// publish): MESSENGER_PRESENCE_BATCH_SIZE.
	BatchSize int
	// RetryMax is the longest wait before a failed batch is tried again (the wait doubles
	// from presenceRetryMin): MESSENGER_PRESENCE_RETRY_MAX.
	RetryMax time.Duration
}

// DefaultPresenceConfig is what a service uses unless told otherwise.
var DefaultPresenceConfig = PresenceConfig{BatchSize: 1000, RetryMax: 30 * time.Second}

const (
	// presenceRetryMin is the first wait after a failed batch.
	presenceRetryMin = 100 * time.Millisecond
	// presenceBatchTimeout bounds one batch: its presence checks, its statement, its publish.
	presenceBatchTimeout = 10 * time.Second
)

// SetPresenceConfig sets how users gone offline are batched; zero fields keep the defaults.
// Call it while wiring, before the service serves.
func (s *Service) SetPresenceConfig(c PresenceConfig) {
	if c.BatchSize > 0 {
		s.presence.cfg.BatchSize = min(c.BatchSize, store.MaxPresenceBatch)
	}
	if c.RetryMax > 0 {
		s.presence.cfg.RetryMax = c.RetryMax
	}
}

// presenceQueue holds the users gone offline that StorePresence has yet to store and
// announce: a set, so it is bounded by the users, however many streams close.
type presenceQueue struct {
	cfg     PresenceConfig
	mu      sync.Mutex
	pending map[int64]time.Time // user → when they went offline (the latest)
	running bool                // StorePresence runs: users are queued, not stored by the caller
	wake    chan struct{}       // one slot: something was queued
	// order is held by a batch from its last presence check until its publish returned; a
	// user coming online waits for it (read-locked) before announcing it, so a contact never
	// hears "offline" after "online": either the check saw the user online and the batch
	// leaves them out, or the offline event went out first.
	order sync.RWMutex
}

// afterBatch waits for a batch that is between its last presence check and the end of its
// publish: called when a connection made a user online, before that is announced, so that
// a batch announcing them offline that did not see the connection goes out first.
func (q *presenceQueue) afterBatch() {
	q.order.RLock()
	defer q.order.RUnlock()
}

func newPresenceQueue() presenceQueue {
	return presenceQueue{cfg: DefaultPresenceConfig, pending: make(map[int64]time.Time), wake: make(chan struct{}, 1)}
}

// add queues user, gone offline at t, and answers false when no StorePresence runs to take it.
func (q *presenceQueue) add(user int64, t time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.running {
		return false
	}
	if old, ok := q.pending[user]; !ok || t.After(old) {
		q.pending[user] = t
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// take removes up to n queued users, lowest ids first, and answers them and the latest time
// any of them went offline ("" none queued).
func (q *presenceQueue) take(n int) ([]int64, time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) == 0 {
		return nil, time.Time{}
	}
	users := slices.Sorted(maps.Keys(q.pending))
	if len(users) > n {
		users = users[:n]
	}
	var at time.Time
	for _, u := range users {
		if t := q.pending[u]; t.After(at) {
			at = t
		}
		delete(q.pending, u)
	}
	return users, at
}

// putBack queues again the users of a batch that failed, unless a later offline of theirs
// is queued already.
func (q *presenceQueue) putBack(users []int64, at time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, u := range users {
		if old, ok := q.pending[u]; !ok || at.After(old) {
			q.pending[u] = at
		}
	}
}

// setRunning marks whether StorePresence takes the queue.
func (q *presenceQueue) setRunning(on bool) {
	q.mu.Lock()
	q.running = on
	q.mu.Unlock()
}

// queued answers how many users wait.
func (q *presenceQueue) queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// wentOffline stores and announces that user went offline at t: queued for StorePresence
// when it runs, else at once (tools and tests that run no background loops, or a stream
// closing after the loops stopped).
func (s *Service) wentOffline(ctx context.Context, user int64, t time.Time) {
	if s.presence.add(user, t) {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), presenceBatchTimeout)
	defer cancel()
	if err := s.storeOffline(ctx, []int64{user}, t); err != nil {
		s.logger.ErrorContext(ctx, "presence offline", slog.Int64("user_id", user), slog.String("error", err.Error()))
	}
}

// StorePresence stores the last_seen_at of users gone offline and tells their contacts, in
// batches of at most the configured size — one statement and one publish each — until ctx
// ends; then it stores what is still queued before it returns (the process closes the
// database after its background loops). A failed batch is logged once and tried again
// after a wait that doubles up to RetryMax; its users stay queued meanwhile.
func (s *Service) StorePresence(ctx context.Context) {
	q := &s.presence
	q.setRunning(true)
	retry := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			s.drainPresence(ctx)
			return
		case <-q.wake:
		}
		for {
			users, at, err := s.storeNext(ctx)
			if len(users) == 0 {
				break
			}
			if err == nil {
				retry = 0
				continue
			}
			q.putBack(users, at)
			retry = min(max(2*retry, presenceRetryMin), q.cfg.RetryMax)
			s.metrics.errors.WithLabelValues(errPresence).Inc()
			s.logger.WarnContext(ctx, "presence batch failed, retrying", slog.Int("users", len(users)),
				slog.Int("queued", q.queued()), slog.Duration("retry_in", retry), slog.String("error", err.Error()))
			select {
			case <-ctx.Done():
				s.drainPresence(ctx)
				return
			case <-time.After(retry):
			}
		}
	}
}

// drainPresence stores what is queued when StorePresence stops; from then on a user going
// offline is stored by the stream that closes. A batch that fails now is given up, in one
// line: the process is going away.
func (s *Service) drainPresence(ctx context.Context) {
	q := &s.presence
	q.setRunning(false)
	for {
		users, _, err := s.storeNext(ctx)
		if len(users) == 0 {
			return
		}
		if err != nil {
			lost := len(users) + q.queued()
			q.take(lost)
			s.metrics.errors.WithLabelValues(errPresence).Inc()
			s.logger.ErrorContext(ctx, "presence not stored at shutdown", slog.Int("users", lost), slog.String("error", err.Error()))
			return
		}
	}
}

// storeNext takes the next batch of queued users and stores and announces it, within
// presenceBatchTimeout even when ctx has ended; it answers the batch (none: nothing was
// queued), when they went offline, and what failed.
func (s *Service) storeNext(ctx context.Context) ([]int64, time.Time, error) {
	users, at := s.presence.take(s.presence.cfg.BatchSize)
	if len(users) == 0 {
		return nil, at, nil
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), presenceBatchTimeout)
	defer cancel()
	return users, at, s.storeOffline(bctx, users, at)
}

// storeOffline stores and announces one batch of users gone offline at at: those the
// engine says are online again are left out, the others' last_seen_at is stored in one
// statement that also answers their contacts, and every contact is told in one publish.
func (s *Service) storeOffline(ctx context.Context, users []int64, at time.Time) error {
	users, err := s.stillOffline(ctx, users)
	if err != nil || len(users) == 0 {
		return err
	}
	offline, err := s.db.PresenceOffline(ctx, users, at)
	if err != nil {
		return err
	}
	// A user who came online after the check above is not announced offline after their
	// online: see presenceQueue.order.
	s.presence.order.Lock()
	defer s.presence.order.Unlock()
	ids := make([]int64, len(offline))
	for i, o := range offline {
		ids[i] = o.UserID
	}
	if ids, err = s.stillOffline(ctx, ids); err != nil {
		return err
	}
	gone := make(map[int64]bool, len(ids))
	for _, id := range ids {
		gone[id] = true
	}
	var pubs []realtime.Publication
	for _, o := range offline {
		if gone[o.UserID] {
			seen := o.LastSeenAt.UTC()
			pubs = s.appendEvent(pubs, o.Contacts, EventPresence, PresenceChange{UserID: o.Sub, LastSeenAt: &seen}, true)
		}
	}
	if len(pubs) == 0 {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if err := s.events.PublishAll(pctx, pubs); err != nil {
		s.metrics.publishFails.Inc()
		return fmt.Errorf("publish presence: %w", err)
	}
	return nil
}

// stillOffline answers those of users the engine does not see online now.
func (s *Service) stillOffline(ctx context.Context, users []int64) ([]int64, error) {
	online, err := s.events.Online(ctx, users)
	if err != nil {
		return nil, fmt.Errorf("presence check: %w", err)
	}
	return slices.DeleteFunc(slices.Clone(users), func(u int64) bool { return online[u] }), nil
}
