package realtime

import (
	"errors"
	"slices"
	"sync/atomic"
	"time"
)

// Presence and typing timings.
const (
	// PresenceRefresh is how often an engine refreshes the presence
	// entries of its own connections.
	PresenceRefresh = 30 * time.Second
	// PresenceTTL is how long a connection's presence entry stays live
	// after its last refresh: a process that crashed or lost Redis stops
	// refreshing, and its users lapse within PresenceTTL.
	PresenceTTL = 60 * time.Second
	// PresenceSweep is how often an engine looks for lapsed users to
	// deliver on PresenceExpired.
	PresenceSweep = time.Second
	// TypingTTL is how long SetTyping(on) keeps a user typing unless it is
	// repeated.
	TypingTTL = 3 * time.Second
	// PresenceExpiredBuffer is the capacity of the PresenceExpired channel.
	PresenceExpiredBuffer = 1024
)

// ErrInvalidConnID is returned by Connect and Disconnect for an empty
// connection ID.
var ErrInvalidConnID = errors.New("realtime: invalid connection ID")

// presenceConfig holds the presence and typing timings of one engine.
type presenceConfig struct {
	refresh   time.Duration // period of the refresh of local connections
	ttl       time.Duration // lifetime of a connection entry after a refresh
	sweep     time.Duration // period of the search for lapsed users
	typingTTL time.Duration
	buffer    int // capacity of the PresenceExpired channel
}

// defaultPresenceConfig is the configuration of every engine but those
// tests create with shorter timings.
var defaultPresenceConfig = presenceConfig{
	refresh:   PresenceRefresh,
	ttl:       PresenceTTL,
	sweep:     PresenceSweep,
	typingTTL: TypingTTL,
	buffer:    PresenceExpiredBuffer,
}

// expiredQueue is the PresenceExpired channel of an engine. Its sweeper is
// the only sender and claims at most as many lapsed users as the channel
// has room for, so it never blocks and never loses a claimed user: lapsed
// users it has no room for stay unclaimed until a later sweep, here or in
// another process.
type expiredQueue struct {
	ch chan int64
	// wanted is set once PresenceExpired has been called: an engine whose
	// owner does not handle lapses never claims any, so they go to a
	// process that does.
	wanted atomic.Bool
}

func newExpiredQueue(size int) *expiredQueue {
	return &expiredQueue{ch: make(chan int64, max(size, 1))}
}

// channel marks the queue as read and returns it.
func (q *expiredQueue) channel() <-chan int64 {
	q.wanted.Store(true)
	return q.ch
}

// room is how many users a sweep may claim now.
func (q *expiredQueue) room() int {
	if !q.wanted.Load() {
		return 0
	}
	return cap(q.ch) - len(q.ch)
}

// push queues a claimed user without blocking; it reports false only if the
// sweep claimed more than room allowed.
func (q *expiredQueue) push(userID int64) bool {
	select {
	case q.ch <- userID:
		return true
	default:
		return false
	}
}

// sortedIDs returns ids in ascending order, never nil.
func sortedIDs(ids []int64) []int64 {
	if ids == nil {
		return []int64{}
	}
	slices.Sort(ids)
	return ids
}
