package realtime

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// Memory is an Engine for a single process: publishing hands events straight
// to the subscribers' queues, so it needs no goroutine per subscriber.
//
// Its presence and typing state is local too, with the same semantics as
// Redis within one process: its refresher and sweeper run in two goroutines
// until Close.
type Memory struct {
	hub       *hub
	queueSize int
	hist      *memHistory
	pres      *memPresence
	streams   memStreams

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

var _ Engine = (*Memory)(nil)

// memHistory is the history of every channel that keeps one. A single lock
// covers ID assignment, storage and fan-out, so deliveries are in ID order.
//
// Positions come from one counter for the whole engine rather than one per
// channel: still strictly increasing per channel, and never reused when an
// idle channel's state is forgotten and later recreated.
type memHistory struct {
	limits historyLimits
	epoch  string // random per engine: IDs of another process are gone

	mu        sync.Mutex
	seq       uint64 // last position assigned
	chans     map[string]*memChannel
	nextSweep time.Time
}

type memChannel struct {
	// buf[head:] are the entries, oldest first. Dropped entries leave room at the front,
	// which a full buf reuses instead of growing: a channel at its length limit publishes
	// without allocating.
	buf  []memEntry
	head int
	// touched is when the channel was last published to or asked for its Head: an
	// empty channel is forgotten only HistoryTTL after that.
	touched time.Time
	// floor is the highest position whose events after it may be missing:
	// the last dropped entry, or the counter when the state was created
	// (anything before is unknown). History is exact after any ID >= floor.
	floor uint64
}

type memEntry struct {
	pos uint64
	at  time.Time
	ev  Event
}

// NewMemory returns an in-process engine whose subscriptions queue up to
// queueSize events each (DefaultQueueSize when queueSize <= 0).
func NewMemory(queueSize int) *Memory {
	return newMemory(queueSize, defaultTuning())
}

func newMemory(queueSize int, tn tuning) *Memory {
	m := &Memory{
		hub:       newHub(),
		queueSize: queueSizeOrDefault(queueSize),
		hist: &memHistory{
			limits: tn.history,
			epoch:  newEpoch(),
			chans:  make(map[string]*memChannel),
		},
		pres:    newMemPresence(tn.presence),
		streams: memStreams{users: make(map[int64][]string), evicted: make(map[int64]map[string]bool)},
		done:    make(chan struct{}),
	}
	m.wg.Add(2)
	go m.refreshLoop()
	go m.sweepLoop()
	return m
}

// Publish delivers ev to the current subscribers of channel before it
// returns, in call order, without waiting for any of them.
func (m *Memory) Publish(ctx context.Context, channel string, ev Event) error {
	if channel == "" {
		return ErrInvalidChannel
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := validEvent(ev); err != nil {
		return err
	}
	return m.publish(channel, ev)
}

// PublishMany publishes ev to every distinct channel in turn.
func (m *Memory) PublishMany(ctx context.Context, channels []string, ev Event) error {
	return m.PublishAll(ctx, []Publication{{Channels: channels, Event: ev}})
}

// PublishAll publishes each publication in turn.
func (m *Memory) PublishAll(ctx context.Context, pubs []Publication) error {
	pubs, err := validPublications(pubs)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, p := range pubs {
		for _, c := range p.Channels {
			if err := m.publish(c, p.Event); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *Memory) publish(channel string, ev Event) error {
	if !KeepsHistory(channel) {
		return m.hub.publish(channel, ev)
	}
	if ev.Droppable {
		ev.ID = ""
		return m.hub.publish(channel, ev)
	}
	h := m.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	if m.hub.isClosed() {
		return ErrClosed
	}
	now := time.Now()
	c := h.touch(channel, now)
	c.expire(now, h.limits.ttl)
	h.seq++
	ev.ID = h.epoch + "-" + strconv.FormatUint(h.seq, 10)
	c.push(memEntry{pos: h.seq, at: now, ev: ev})
	for len(c.entries()) > h.limits.maxLen {
		c.dropFront()
	}
	return m.hub.publish(channel, ev)
}

// Head returns the current position of this engine's history, and keeps
// channel's history from then on (for HistoryTTL at least).
func (m *Memory) Head(ctx context.Context, channel string) (string, error) {
	if channel == "" {
		return "", ErrInvalidChannel
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if !KeepsHistory(channel) {
		return "", historyGoneNoHistory(channel)
	}
	h := m.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	if m.hub.isClosed() {
		return "", ErrClosed
	}
	h.touch(channel, time.Now())
	return h.epoch + "-" + strconv.FormatUint(h.seq, 10), nil
}

// History lists the events of channel after afterID from this engine's
// memory; IDs of another Memory (another process) are gone.
func (m *Memory) History(ctx context.Context, channel, afterID string) ([]Event, error) {
	if channel == "" {
		return nil, ErrInvalidChannel
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if m.hub.isClosed() {
		return nil, ErrClosed
	}
	if !KeepsHistory(channel) {
		return nil, historyGoneNoHistory(channel)
	}
	h := m.hist
	id, ok := parseEventID(afterID)
	if !ok || id.parts != 1 {
		return nil, fmt.Errorf("%w: malformed event ID %q", ErrHistoryGone, afterID)
	}
	if id.epoch != h.epoch {
		return nil, fmt.Errorf("%w: event ID %q is from another epoch", ErrHistoryGone, afterID)
	}
	after := id.pos[0]

	h.mu.Lock()
	defer h.mu.Unlock()
	if after > h.seq {
		return nil, fmt.Errorf("%w: event ID %q was never assigned", ErrHistoryGone, afterID)
	}
	now := time.Now()
	h.sweep(now)
	c := h.chans[channel]
	if c == nil {
		// Never published, or forgotten after expiring: only "before
		// anything" is known to have nothing after it.
		if after == 0 {
			return []Event{}, nil
		}
		return nil, fmt.Errorf("%w: no history retained for %q", ErrHistoryGone, channel)
	}
	c.expire(now, h.limits.ttl)
	if after < c.floor {
		return nil, fmt.Errorf("%w: events after %q were trimmed", ErrHistoryGone, afterID)
	}
	events := []Event{}
	for _, e := range c.entries() {
		if e.pos > after {
			events = append(events, e.ev)
		}
	}
	return events, nil
}

// sweep forgets expired history of all channels now and then, so channels
// that are never published to again do not keep memory forever.
func (h *memHistory) sweep(now time.Time) {
	if now.Before(h.nextSweep) {
		return
	}
	h.nextSweep = now.Add(min(h.limits.ttl, time.Minute))
	for name, c := range h.chans {
		c.expire(now, h.limits.ttl)
		if len(c.entries()) == 0 && now.Sub(c.touched) > h.limits.ttl {
			delete(h.chans, name)
		}
	}
}

// expire drops the entries older than ttl.
// touch answers channel's state, kept from now for HistoryTTL at least, after forgetting
// the channels that were idle that long: a channel it did not have starts with every
// position so far unknown. h.mu must be held.
func (h *memHistory) touch(channel string, now time.Time) *memChannel {
	h.sweep(now)
	c := h.chans[channel]
	if c == nil {
		c = &memChannel{floor: h.seq}
		h.chans[channel] = c
	}
	c.touched = now
	return c
}

func (c *memChannel) expire(now time.Time, ttl time.Duration) {
	for e := c.entries(); len(e) > 0 && now.Sub(e[0].at) > ttl; e = c.entries() {
		c.dropFront()
	}
}

// entries answers the channel's entries, oldest first.
func (c *memChannel) entries() []memEntry { return c.buf[c.head:] }

// push appends e. A full buf whose front half was dropped moves its entries to the front
// first: once a channel is at its length, each entry is copied once more in all, and
// nothing is allocated.
func (c *memChannel) push(e memEntry) {
	if len(c.buf) == cap(c.buf) && c.head > 0 && c.head >= cap(c.buf)/2 {
		n := copy(c.buf, c.buf[c.head:])
		clear(c.buf[n:])
		c.buf, c.head = c.buf[:n], 0
	}
	c.buf = append(c.buf, e)
}

func (c *memChannel) dropFront() {
	c.floor = c.buf[c.head].pos
	c.buf[c.head] = memEntry{} // release the payload
	c.head++
	if c.head == len(c.buf) {
		c.buf, c.head = c.buf[:0], 0
	}
}

// Subscribe returns a subscription to channels; it is active immediately.
func (m *Memory) Subscribe(ctx context.Context, channels ...string) (*Subscription, error) {
	s, err := m.hub.subscription(ctx, m, m.queueSize, channels)
	if err != nil {
		return nil, err
	}
	if err := m.attach(ctx, s, channels); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Ping reports ErrClosed after Close and nil otherwise.
func (m *Memory) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.hub.isClosed() {
		return ErrClosed
	}
	return nil
}

// Close closes every subscription's C channel and the PresenceExpired
// channel, and stops the presence goroutines; later calls do nothing.
func (m *Memory) Close() error {
	m.closeOnce.Do(func() {
		m.hub.close()
		close(m.done)
		m.wg.Wait()
		close(m.pres.expired.ch) // its only sender, the sweeper, has stopped
	})
	return nil
}

func (m *Memory) attach(ctx context.Context, s *Subscription, channels []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, _, err := m.hub.add(s, channels)
	return err
}

func (m *Memory) detach(s *Subscription, channels []string) { m.hub.remove(s, channels) }

func (m *Memory) release(s *Subscription, channels []string) { m.hub.release(s, channels) }
