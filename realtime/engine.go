// Package realtime is the live event bus of the chat server: engines publish
// events to named channels ("conversation:42", "user:7", "zone:3") and fan
// them out to subscriptions, either inside one process (Memory) or across
// every process connected to the same Redis (Redis).
//
// Delivery is at-most-once and best effort by design: a subscriber that falls
// behind, or an engine that loses its broker connection, is told to resync
// from the database instead of slowing down publishers. The database stays
// the source of truth; this package only makes changes visible quickly.
//
// # History and resume
//
// Channels named "user:…" keep a short history so that a Server-Sent Events
// client can resume after a reconnect from its Last-Event-ID. Publishing a
// non-droppable event on such a channel assigns it an ID of the form
// "<epoch>-<position>", strictly increasing per channel in delivery order, and
// stores it for at most HistoryMaxLen events and HistoryTTL. History returns
// what was published after a given ID, or ErrHistoryGone when it cannot answer
// exactly (unknown epoch, trimmed or expired history, malformed ID), in which
// case the client resyncs from the database as usual.
//
// A resuming consumer subscribes first, then reads History, then forwards
// the live deliveries whose ID is after the last one it sent (see
// CompareEventIDs): the overlap between the two is then dropped and nothing
// falls in between.
//
// # Presence and typing
//
// A user is online while they have at least one live connection (a browser
// tab or an API stream) in any process: Connect and Disconnect report the
// transitions. Each engine refreshes the entries of its own connections
// every PresenceRefresh; an entry not refreshed for PresenceTTL lapses, so
// the users of a crashed process go offline by themselves, and a sweep
// hands each of them to exactly one process on PresenceExpired. Typing
// state lasts TypingTTL unless repeated.
package realtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultQueueSize is the per-subscription queue length used when an engine
// is created with a queue size <= 0.
const DefaultQueueSize = 256

// ErrClosed is returned by operations on a closed engine or subscription.
var ErrClosed = errors.New("realtime: closed")

// ErrInvalidChannel is returned for an empty channel name, which would
// otherwise silently match nothing.
var ErrInvalidChannel = errors.New("realtime: invalid channel name")

// ErrHistoryGone is returned by History when it cannot list exactly the
// events published after the given ID: the ID is malformed or from another
// engine epoch (a restarted process, a Redis that lost its data), the events
// after it were trimmed or expired, or the channel keeps no history. The
// consumer then resyncs from the database.
var ErrHistoryGone = errors.New("realtime: history gone")

// HistoryChannelPrefix marks the channels that keep history: one per user,
// so that one channel is one resumable position of a browser connection.
const HistoryChannelPrefix = "user:"

// Retention of the history of each channel: the last HistoryMaxLen events,
// and none older than HistoryTTL (Redis: none once the channel has been idle
// for HistoryTTL; it trims to about HistoryMaxLen, keeping slightly more).
const (
	HistoryMaxLen = 1000
	HistoryTTL    = 15 * time.Minute
)

// KeepsHistory reports whether channel keeps history, i.e. whether its
// non-droppable events get IDs and can be resumed with History.
func KeepsHistory(channel string) bool {
	return strings.HasPrefix(channel, HistoryChannelPrefix)
}

// Event is one live event for browsers and API clients.
type Event struct {
	// Type names the event, e.g. "message.new", "message.typing", "presence",
	// "conversation.updated" or "resync".
	Type string
	// ID is the SSE `id:` of the event. On channels that keep history the
	// engine assigns it (any ID given to Publish is ignored) and leaves it
	// empty for droppable events; elsewhere it is passed through unchanged.
	ID string
	// Data is the JSON payload. Subscribers share the same bytes, so they
	// must not modify them.
	Data json.RawMessage
	// Value is the typed payload Data encodes, as the publisher had it, so
	// that a subscriber in the publishing process renders it without decoding
	// Data. Memory passes it to its subscribers and keeps it in history;
	// Redis carries only Data between processes, and gives Value back to the
	// publishing process's own subscribers for a while (redis_values.go):
	// another process's subscribers get nil and decode Data. Subscribers
	// share it, so they must not modify it.
	Value any
	// Droppable marks events (typing, presence) that are worth less than the
	// subscriber's consistency: they are dropped instead of overflowing a
	// full queue.
	Droppable bool
}

// Delivery is an event together with the channel it was published to, so a
// subscription spanning several channels can route it.
type Delivery struct {
	Channel string
	Event   Event
}

// Engine publishes events to channels and delivers them to the subscribers
// of those channels in this process and, for shared engines, in others.
type Engine interface {
	// Publish sends ev to every current subscriber of channel. It never
	// waits for a slow subscriber. On a channel that keeps history (see
	// KeepsHistory) a non-droppable event is assigned its ID, stored, and
	// delivered with that ID, atomically, so deliveries come in ID order.
	Publish(ctx context.Context, channel string, ev Event) error
	// PublishMany publishes ev to each of channels (duplicates count once)
	// as Publish would, in a single round trip for shared engines. Invalid
	// channel names fail the call before anything is published.
	PublishMany(ctx context.Context, channels []string, ev Event) error
	// PublishAll publishes each publication as PublishMany would, in the order
	// given, in a single round trip for shared engines: on any one channel the
	// events arrive in that order. Invalid channels or events fail the call
	// before anything is published.
	PublishAll(ctx context.Context, pubs []Publication) error
	// History returns the non-droppable events of channel published after
	// the event whose ID is afterID, oldest first and with their IDs; it
	// is empty when afterID is the newest. It returns ErrHistoryGone when
	// it cannot answer exactly (see ErrHistoryGone); an empty afterID is
	// malformed.
	History(ctx context.Context, channel, afterID string) ([]Event, error)
	// Head returns the position of channel now, as an event ID: History
	// after it returns exactly the events published after Head was called
	// (or ErrHistoryGone once they cannot be listed). A consumer that has
	// caught up by other means (a resync from the database) resumes from it.
	Head(ctx context.Context, channel string) (string, error)
	// Subscribe returns a subscription to channels once it is active: every
	// event published after Subscribe returns is offered to it.
	Subscribe(ctx context.Context, channels ...string) (*Subscription, error)
	// Ping reports whether the engine can currently publish.
	Ping(ctx context.Context) error
	// Close stops the engine and closes the C channel of every subscription
	// and the PresenceExpired channel. It does not disconnect this
	// process's connections: their presence lapses after PresenceTTL.
	Close() error

	// Connect records the live connection connID (unique per stream:
	// browser tab or API stream) of userID. becameOnline is true when the
	// user had no live connection before, in any process.
	Connect(ctx context.Context, userID int64, connID string) (becameOnline bool, err error)
	// Disconnect removes the connection connID of userID. becameOffline is
	// true when the user thereby has no live connection left anywhere and
	// had not already been reported offline (by an earlier Disconnect or on
	// PresenceExpired).
	Disconnect(ctx context.Context, userID int64, connID string) (becameOffline bool, err error)
	// Online reports which of userIDs are online now: the map has an entry
	// for every one of them.
	Online(ctx context.Context, userIDs []int64) (map[int64]bool, error)
	// PresenceExpired delivers the users whose presence lapsed without a
	// clean Disconnect (their process crashed or lost Redis), at most once
	// per lapse and to exactly one process of the cluster, so that it can
	// record their last_seen_at and announce them offline. Only engines
	// whose PresenceExpired has been called claim lapsed users; the channel
	// is closed by Close.
	PresenceExpired() <-chan int64

	// SetTyping marks userID as typing in convID for TypingTTL (on) or
	// stops it (off). changed reports whether the visible state changed:
	// typing started, or stopped while it was on. Repeating "on" within
	// TypingTTL is no change but extends it.
	SetTyping(ctx context.Context, convID, userID int64, on bool) (changed bool, err error)
	// Typing lists who is typing in convID now, in ascending order.
	Typing(ctx context.Context, convID int64) ([]int64, error)

	// AdmitStream registers the stream of connection connID of userID
	// (Connected just before) as the user's newest, in every process, and
	// returns the IDs of the user's oldest streams beyond max, which it
	// forgets: the caller tells them to close. Streams whose connection is
	// no longer live (disconnected, or lapsed with a crashed process) are
	// forgotten without being returned.
	AdmitStream(ctx context.Context, userID int64, connID string, max int) (evicted []string, err error)
	// StreamEvicted reports whether AdmitStream evicted the stream connID of
	// userID, whose connection is still live: a stream whose notice to close
	// was lost asks it. It is false for a stream admitted or unknown (after a
	// loss of the engine's state, say).
	StreamEvicted(ctx context.Context, userID int64, connID string) (bool, error)
}

// backend is what a Subscription needs from its engine; keeping it
// unexported lets engines change membership bookkeeping freely.
type backend interface {
	attach(ctx context.Context, s *Subscription, channels []string) error
	detach(s *Subscription, channels []string)
	release(s *Subscription, channels []string)
}

// Subscription receives the events of its channels until it is closed.
//
// Each subscription owns a bounded queue filled without blocking by the publishing side,
// so one stalled consumer never delays anybody else. The queue takes memory only for what
// waits in it (a live stream's is empty nearly always, and ten thousand of them are held
// at once): a slice that grows up to the engine's queue size, not a channel of that many
// slots made in advance.
type Subscription struct {
	b        backend
	ready    chan struct{} // one slot: deliveries wait; closed when the subscription is
	overflow chan struct{}
	resync   chan struct{}
	dropped  atomic.Uint64

	// mu orders deliveries against Close and Take, and guards the membership the engine
	// maintains.
	mu         sync.Mutex
	queue      []Delivery
	max        int
	channels   map[string]struct{}
	closed     bool
	overflowed bool
}

func newSubscription(b backend, queueSize int) *Subscription {
	return &Subscription{
		b:        b,
		max:      queueSize,
		ready:    make(chan struct{}, 1),
		overflow: make(chan struct{}),
		resync:   make(chan struct{}, 1),
		channels: make(map[string]struct{}),
	}
}

// Ready receives when deliveries wait to be taken, and is closed when the subscription or
// its engine is closed; the consumer then calls Take.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// keepQueue is the capacity a drained queue keeps; a larger one (after a burst) is let go.
const keepQueue = 16

// Take answers the deliveries waiting, oldest first, appended to buf[:0] (whose array the
// caller may reuse), and removes them from the queue. ok is false once the subscription is
// closed and nothing is left to take.
func (s *Subscription) Take(buf []Delivery) (ds []Delivery, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ds = append(buf[:0], s.queue...)
	clear(s.queue) // the events' bytes belong to the caller now
	s.queue = s.queue[:0]
	if cap(s.queue) > keepQueue {
		s.queue = nil
	}
	return ds, len(ds) > 0 || !s.closed
}

// Next waits for the oldest delivery and takes it alone: for a consumer that handles one at
// a time. It answers ErrClosed once the subscription is closed and drained, or ctx's error.
func (s *Subscription) Next(ctx context.Context) (Delivery, error) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			d := s.queue[0]
			s.queue[0] = Delivery{}
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return d, nil
		}
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return Delivery{}, ErrClosed
		}
		select {
		case <-ctx.Done():
			return Delivery{}, ctx.Err()
		case <-s.ready:
		}
	}
}

// Len answers how many deliveries wait.
func (s *Subscription) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// Add subscribes to more channels and returns once they are active, so the
// caller can load state from the database afterwards without a gap.
func (s *Subscription) Add(ctx context.Context, channels ...string) error {
	if err := validChannels(channels); err != nil {
		return err
	}
	if len(channels) == 0 {
		return nil
	}
	return s.b.attach(ctx, s, channels)
}

// Remove unsubscribes from channels; events of those channels already queued
// stay in C. Removing a channel that is not subscribed is not an error.
func (s *Subscription) Remove(ctx context.Context, channels ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(channels) > 0 {
		s.b.detach(s, channels)
	}
	return nil
}

// Overflowed returns a channel that is closed when a non-droppable event
// could not be queued. The subscriber has then lost data and must resync;
// the subscription delivers nothing more and should be closed.
func (s *Subscription) Overflowed() <-chan struct{} { return s.overflow }

// Resync returns a channel that receives (coalesced, never blocking the
// engine) when the engine may have lost events for this subscription, e.g.
// after a broker reconnect; the consumer then re-fetches from the database.
func (s *Subscription) Resync() <-chan struct{} { return s.resync }

// Dropped returns how many droppable events were discarded because the queue
// was full.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close unsubscribes from every channel and closes Ready; what waits can still be taken.
// It is idempotent.
func (s *Subscription) Close() {
	channels, ok := s.shutdown()
	if ok {
		s.b.release(s, channels)
	}
}

// shutdown closes the queue and reports the channels to release; ok is false
// when the subscription was already closed.
func (s *Subscription) shutdown() (channels []string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false
	}
	s.closed = true
	close(s.ready)
	for c := range s.channels {
		channels = append(channels, c)
	}
	s.channels = nil
	return channels, true
}

// deliver queues one event without ever blocking: a full queue drops a
// droppable event and otherwise gives up on the subscriber, which is cheaper
// and more honest than stalling the publisher or silently losing data.
func (s *Subscription) deliver(channel string, ev Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.overflowed {
		return
	}
	if len(s.queue) >= s.max {
		if ev.Droppable {
			s.dropped.Add(1)
			return
		}
		s.overflowed = true
		close(s.overflow)
		return
	}
	s.queue = append(s.queue, Delivery{Channel: channel, Event: ev})
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// signalResync never blocks: one pending signal already tells the consumer
// everything it needs, however many reconnects happened meanwhile.
func (s *Subscription) signalResync() {
	select {
	case s.resync <- struct{}{}:
	default:
	}
}

func validChannels(channels []string) error {
	for _, c := range channels {
		if c == "" {
			return ErrInvalidChannel
		}
	}
	return nil
}

func validEvent(ev Event) error {
	// Checked on every engine, not only where JSON is re-encoded, so code
	// tested against Memory does not start failing on Redis.
	if len(ev.Data) > 0 && !json.Valid(ev.Data) {
		return fmt.Errorf("realtime: event %q: data is not valid JSON", ev.Type)
	}
	return nil
}

func queueSizeOrDefault(n int) int {
	if n <= 0 {
		return DefaultQueueSize
	}
	return n
}

// hub is the local fan-out shared by both engines: channel → subscriptions.
// Publishing only takes the read lock and never blocks inside it, so
// publishers run in parallel and membership changes wait microseconds.
type hub struct {
	mu     sync.RWMutex
	closed bool
	all    map[*Subscription]struct{}
	chans  map[string]map[*Subscription]struct{}
}

func newHub() *hub {
	return &hub{
		all:   make(map[*Subscription]struct{}),
		chans: make(map[string]map[*Subscription]struct{}),
	}
}

// subscription answers a new subscription of b with a queue of queueSize, registered in
// h, once channels are valid and ctx is alive: what Subscribe of either engine starts with
// before attaching it to channels.
func (h *hub) subscription(ctx context.Context, b backend, queueSize int, channels []string) (*Subscription, error) {
	if err := validChannels(channels); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := newSubscription(b, queueSize)
	if err := h.register(s); err != nil {
		return nil, err
	}
	return s, nil
}

// register tracks s even while it has no channel, so engine Close reaches it.
func (h *hub) register(s *Subscription) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	h.all[s] = struct{}{}
	return nil
}

// add subscribes s to channels. added are the channels s did not have yet;
// fresh are those that had no subscriber at all in this process, i.e. the
// ones a shared engine must subscribe to upstream.
func (h *hub) add(s *Subscription, channels []string) (added, fresh []string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, nil, ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, ErrClosed
	}
	for _, c := range channels {
		if _, ok := s.channels[c]; ok {
			continue
		}
		s.channels[c] = struct{}{}
		added = append(added, c)
		set := h.chans[c]
		if set == nil {
			set = make(map[*Subscription]struct{})
			h.chans[c] = set
			fresh = append(fresh, c)
		}
		set[s] = struct{}{}
	}
	return added, fresh, nil
}

// remove unsubscribes s from channels and returns those left without any
// subscriber in this process. It is idempotent.
func (h *hub) remove(s *Subscription, channels []string) (emptied []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s.mu.Lock()
	for _, c := range channels {
		delete(s.channels, c)
	}
	s.mu.Unlock()
	return h.removeLocked(s, channels)
}

func (h *hub) removeLocked(s *Subscription, channels []string) (emptied []string) {
	for _, c := range channels {
		set := h.chans[c]
		if _, ok := set[s]; !ok {
			continue
		}
		delete(set, s)
		if len(set) == 0 {
			delete(h.chans, c)
			emptied = append(emptied, c)
		}
	}
	return emptied
}

// release forgets a closed subscription entirely.
func (h *hub) release(s *Subscription, channels []string) (emptied []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.all, s)
	return h.removeLocked(s, channels)
}

// publish offers ev to the local subscribers of channel.
func (h *hub) publish(channel string, ev Event) error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return ErrClosed
	}
	for s := range h.chans[channel] {
		s.deliver(channel, ev)
	}
	return nil
}

// resyncAll tells every subscription that events may have been lost.
func (h *hub) resyncAll() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.all {
		s.signalResync()
	}
	return len(h.all)
}

// close marks the hub closed and closes every subscription's queue.
func (h *hub) close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	subs := make([]*Subscription, 0, len(h.all))
	for s := range h.all {
		subs = append(subs, s)
	}
	h.all = make(map[*Subscription]struct{})
	h.chans = make(map[string]map[*Subscription]struct{})
	h.mu.Unlock()
	// Outside the hub lock: shutdown takes the subscription lock, which
	// deliver takes under the hub lock.
	for _, s := range subs {
		s.shutdown()
	}
}

func (h *hub) isClosed() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.closed
}

// historyLimits bounds the history kept per channel.
type historyLimits struct {
	maxLen int
	ttl    time.Duration
}

// tuning is what an engine is built with besides its queue size: the production values
// (defaultTuning), or shorter ones a test gives the engines it makes, and no other.
type tuning struct {
	presence presenceConfig
	history  historyLimits
	redis    redisTimings // the Redis engine's alone
	maxLost  int          // the Redis engine's alone: see lostChannels
}

func defaultTuning() tuning {
	return tuning{
		presence: defaultPresenceConfig,
		history:  historyLimits{maxLen: HistoryMaxLen, ttl: HistoryTTL},
		redis:    defaultRedisTimings,
		maxLost:  DefaultMaxLostChannels,
	}
}

// newEpoch returns a random epoch: hexadecimal, so never containing the '-'
// that separates it from the position in an event ID.
func newEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// eventID is a parsed history ID "<epoch>-<position>": the position is one
// number (Memory) or a Redis stream entry ID "<ms>-<seq>" (two numbers).
type eventID struct {
	epoch string
	pos   [2]uint64
	parts int
}

func parseEventID(id string) (eventID, bool) {
	epoch, rest, ok := strings.Cut(id, "-")
	if !ok || epoch == "" {
		return eventID{}, false
	}
	var e eventID
	e.epoch = epoch
	for i := range 2 {
		var part string
		part, rest, ok = strings.Cut(rest, "-")
		n, valid := canonicalUint(part)
		if !valid {
			return eventID{}, false
		}
		e.pos[i] = n
		e.parts++
		if !ok {
			return e, true
		}
	}
	return eventID{}, false // more than two numbers
}

// canonicalUint parses a decimal uint64 written without sign or leading
// zeros, so that every position has exactly one spelling.
func canonicalUint(s string) (uint64, bool) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != s {
		return 0, false
	}
	return n, true
}

func (a eventID) compare(b eventID) int {
	for i := range 2 {
		switch {
		case a.pos[i] < b.pos[i]:
			return -1
		case a.pos[i] > b.pos[i]:
			return 1
		}
	}
	return 0
}

// CompareEventIDs orders two IDs assigned by the same engine on the same
// channel: -1 if a was published before b, 0 if they are equal, +1 if after.
// ok is false when they cannot be compared (malformed, empty, or from
// different epochs); a resuming consumer then trusts neither and resyncs.
func CompareEventIDs(a, b string) (c int, ok bool) {
	ea, okA := parseEventID(a)
	eb, okB := parseEventID(b)
	if !okA || !okB || ea.epoch != eb.epoch || ea.parts != eb.parts {
		return 0, false
	}
	return ea.compare(eb), true
}

// uniqueChannels validates channels and drops repeats, keeping order.
// Publication is one event for a set of channels (PublishAll).
type Publication struct {
	Channels []string
	Event    Event
}

// validPublications answers pubs with each one's channels made unique, or the first
// invalid channel or event.
func validPublications(pubs []Publication) ([]Publication, error) {
	out := make([]Publication, 0, len(pubs))
	for _, p := range pubs {
		channels, err := uniqueChannels(p.Channels)
		if err != nil {
			return nil, err
		}
		if err := validEvent(p.Event); err != nil {
			return nil, err
		}
		if len(channels) > 0 {
			out = append(out, Publication{Channels: channels, Event: p.Event})
		}
	}
	return out, nil
}

func uniqueChannels(channels []string) ([]string, error) {
	if err := validChannels(channels); err != nil {
		return nil, err
	}
	return unique(channels), nil
}

func historyGoneNoHistory(channel string) error {
	return fmt.Errorf("%w: channel %q keeps no history", ErrHistoryGone, channel)
}
