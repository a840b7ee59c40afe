package handlers

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/internal/trace"
	"github.com/dreamseed/messenger/realtime"
)

// The page cache keeps, per process, what the two hot pages cost the database: a
// browser session's user, and the conversation list and the newest page of a thread,
// rendered and compressed. Every change a page shows is announced on the engine to the
// users it concerns (message.new, read receipts, message.updated, conversation.updated
// for renames and members, upload.updated, presence, typing on user:{id}; notices on
// zone:{id}; sign-outs and revoked sessions on streams:{id}), so the cache drops what
// an event names:
//
//   - in the process that publishes, synchronously (announcingEngine), before the
//     request that made the change answers, so that its client's next request there is
//     right;
//   - in every process, when the event arrives on the cache's own subscription to the
//     channels of the users it holds (added before anything is read for them).
//
// An entry holds the generation of its user (and zone) taken before the database was
// read; an event bumps it, so an entry filled across an event is never used. A lost
// event (the subscription overflowed, the broker reconnected) empties the cache. What
// no event announces — another member's new name or quiet hours, an expiring mute, a
// settings change made in another process — shows within a minute: an entry serves only
// within the minute it was rendered (the list's times and "active 5 min ago" change by
// the minute anyway), a session at most sessionCacheTTL.
const (
	sessionCacheTTL = 20 * time.Second
	// pageCacheBytes bounds the compressed pages kept; past it the cache starts over.
	pageCacheBytes = 64 << 20
	// pageCacheWatched bounds the users watched; past it the cache starts over.
	pageCacheWatched = 20000
	// typingPageTTL is how long a page that shows someone typing may serve: typing lapses
	// without an event.
	typingPageTTL = 2 * time.Second
)

type pageCache struct {
	engine realtime.Engine
	logger *slog.Logger

	mu       sync.Mutex
	epoch    uint64           // bumped when everything is dropped
	users    map[int64]uint64 // generation of each user's pages
	zones    map[int64]uint64 // generation of each zone's announcements
	sessGens map[int64]uint64 // generation of each user's sessions
	sessions map[[32]byte]cachedSession
	pages    map[pageKey]*cachedPage
	bytes    int
	sub      *realtime.Subscription
	watched  map[string]bool
	fills    map[pageKey]*pageFill // the renders under way
}

// pageFill is a render of a page under way. A request that misses the cache while another
// renders the same page from the same generations, in the same minute, waits for that
// render instead of reading the database again: every page's minute ends at once, and a
// busy session's requests all missed together and queued behind the database (a second's
// stall at 1,000 requests a second). One that starts after an event (another generation)
// renders its own.
type pageFill struct {
	stamp  pageStamp
	minute int64
	done   chan struct{}
	body   *gzipParts // set before done closes; nil: the render failed
}

type cachedSession struct {
	user      messenger.User
	csrf      string
	expires   time.Time // the session's
	lastUsed  time.Time
	until     time.Time // the entry's
	epoch     uint64
	gen       uint64
	userID    int64
	userGenAt uint64
}

// pageKey names one cached page: a session (the page carries its CSRF token), the page
// (conversation 0: the list), the language it is in, and whether it is gzipped.
type pageKey struct {
	session [32]byte
	conv    int64
	locale  string
	gzip    bool
}

type cachedPage struct {
	body    *gzipParts
	userID  int64
	zoneID  int64
	epoch   uint64
	gen     uint64
	zoneGen uint64
	minute  int64
	until   time.Time
}

// pageStamp is the state of the generations a fill starts from.
type pageStamp struct {
	epoch, gen, zoneGen uint64
}

func newPageCache(engine realtime.Engine, logger *slog.Logger) *pageCache {
	pc := &pageCache{engine: engine, logger: logger}
	pc.resetLocked()
	return pc
}

func (pc *pageCache) resetLocked() {
	pc.epoch++
	pc.users = make(map[int64]uint64)
	pc.zones = make(map[int64]uint64)
	pc.sessGens = make(map[int64]uint64)
	pc.sessions = make(map[[32]byte]cachedSession)
	pc.pages = make(map[pageKey]*cachedPage)
	pc.bytes = 0
}

// clear drops everything cached (an event may have been lost).
func (pc *pageCache) clear() {
	pc.mu.Lock()
	pc.resetLocked()
	pc.mu.Unlock()
}

// watch makes sure the events of userID (and of zoneID's announcements) reach the cache
// in this process, subscribing when they do not yet: fresh reports a new subscription,
// after which what was read before it must be read again.
func (pc *pageCache) watch(ctx context.Context, userID, zoneID int64) (fresh bool, err error) {
	want := []string{chat.UserChannel(userID), streamsChannel(userID)}
	if zoneID > 0 {
		want = append(want, chat.ZoneChannel(zoneID))
	}
	pc.mu.Lock()
	var need []string
	for _, ch := range want {
		if !pc.watched[ch] {
			need = append(need, ch)
		}
	}
	sub := pc.sub
	if len(need) > 0 && len(pc.watched)+len(need) > pageCacheWatched && sub != nil {
		pc.sub, pc.watched = nil, nil
		pc.resetLocked()
		pc.mu.Unlock()
		sub.Close()
		pc.mu.Lock()
		sub, need = nil, want
	}
	pc.mu.Unlock()
	if len(need) == 0 {
		return false, nil
	}
	if sub == nil {
		if sub, err = pc.engine.Subscribe(ctx, need...); err != nil {
			return false, err
		}
		pc.mu.Lock()
		if pc.sub != nil { // another request subscribed meanwhile: use its subscription
			other := pc.sub
			pc.mu.Unlock()
			sub.Close()
			if err := other.Add(ctx, need...); err != nil {
				return false, err
			}
			sub = other
			pc.mu.Lock()
		} else {
			pc.sub, pc.watched = sub, make(map[string]bool)
			go pc.follow(sub)
		}
	} else {
		if err := sub.Add(ctx, need...); err != nil {
			return false, err
		}
		pc.mu.Lock()
	}
	if pc.sub == sub {
		for _, ch := range need {
			pc.watched[ch] = true
		}
	}
	pc.mu.Unlock()
	return true, nil
}

// follow drops what the events of sub name, until sub ends; a lost event empties the
// cache and the next request subscribes again.
func (pc *pageCache) follow(sub *realtime.Subscription) {
	defer func() {
		pc.mu.Lock()
		if pc.sub == sub {
			pc.sub, pc.watched = nil, nil
		}
		pc.resetLocked()
		pc.mu.Unlock()
		sub.Close()
	}()
	var taken []realtime.Delivery
	for {
		select {
		case <-sub.Ready():
			var ok bool
			if taken, ok = sub.Take(taken); !ok {
				return
			}
			for _, d := range taken {
				pc.invalidate(d.Channel)
			}
			clear(taken)
		case <-sub.Overflowed():
			pc.logger.Warn("page cache: events lost, cache emptied")
			return
		case <-sub.Resync():
			pc.clear()
		}
	}
}

// invalidate drops what an event on channel may have changed.
func (pc *pageCache) invalidate(channels ...string) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	for _, ch := range channels {
		prefix, idText, ok := strings.Cut(ch, ":")
		if !ok {
			continue
		}
		id, err := strconv.ParseInt(idText, 10, 64)
		if err != nil {
			continue
		}
		switch prefix {
		case "user":
			pc.users[id]++
		case "zone":
			pc.zones[id]++
		case "streams":
			pc.sessGens[id]++
			pc.users[id]++
		}
	}
}

// session answers the cached session of token hash, if any is still good.
func (pc *pageCache) session(hash [32]byte, now time.Time) (cachedSession, bool) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	e, ok := pc.sessions[hash]
	if !ok || e.epoch != pc.epoch || e.gen != pc.sessGens[e.userID] || !now.Before(e.until) || !now.Before(e.expires) {
		return cachedSession{}, false
	}
	return e, true
}

// sessionStamp answers the generation of userID's sessions now, before they are read.
func (pc *pageCache) sessionStamp(userID int64) pageStamp {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pageStamp{epoch: pc.epoch, gen: pc.sessGens[userID]}
}

// putSession keeps a session read since stamp.
func (pc *pageCache) putSession(hash [32]byte, e cachedSession, stamp pageStamp, now time.Time) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if stamp.epoch != pc.epoch || stamp.gen != pc.sessGens[e.userID] || !pc.watched[streamsChannel(e.userID)] {
		return
	}
	if len(pc.sessions) >= 4*pageCacheWatched {
		clear(pc.sessions)
	}
	e.epoch, e.gen, e.until = stamp.epoch, stamp.gen, now.Add(sessionCacheTTL)
	pc.sessions[hash] = e
}

// touched records that the session's last use was stored.
func (pc *pageCache) touched(hash [32]byte, at time.Time) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if e, ok := pc.sessions[hash]; ok {
		e.lastUsed = at
		pc.sessions[hash] = e
	}
}

// minuteOf is the minute a page is rendered in: it serves within it only.
func minuteOf(t time.Time) int64 { return t.Unix() / 60 }

// page answers the cached page of key, if it is still good.
func (pc *pageCache) page(key pageKey, now time.Time) (*gzipParts, bool) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	e, ok := pc.pages[key]
	if !ok || e.epoch != pc.epoch || e.gen != pc.users[e.userID] || e.zoneGen != pc.zones[e.zoneID] ||
		e.minute != minuteOf(now) || (!e.until.IsZero() && !now.Before(e.until)) {
		return nil, false
	}
	return e.body, true
}

// pageStamp answers the generations of me's pages now, before they are read.
func (pc *pageCache) pageStamp(me messenger.User) pageStamp {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pageStamp{epoch: pc.epoch, gen: pc.users[me.ID], zoneGen: pc.zones[me.ZoneID]}
}

// join answers the render of key under way from stamp in minute, if there is one
// (leader false: wait for it), or registers a new one that the caller renders and ends
// with finish (leader true).
func (pc *pageCache) join(key pageKey, stamp pageStamp, minute int64) (f *pageFill, leader bool) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if f := pc.fills[key]; f != nil && f.stamp == stamp && f.minute == minute {
		return f, false
	}
	if pc.fills == nil {
		pc.fills = make(map[pageKey]*pageFill)
	}
	f = &pageFill{stamp: stamp, minute: minute, done: make(chan struct{})}
	pc.fills[key] = f
	return f, true
}

// finish ends the render f of key with body (nil: it failed) and wakes its waiters.
func (pc *pageCache) finish(key pageKey, f *pageFill, body *gzipParts) {
	pc.mu.Lock()
	if pc.fills[key] == f {
		delete(pc.fills, key)
	}
	pc.mu.Unlock()
	f.body = body
	close(f.done)
}

// putPage keeps a page read since stamp and rendered at now; until, if not zero, ends it
// sooner.
func (pc *pageCache) putPage(key pageKey, me messenger.User, body *gzipParts, stamp pageStamp, now, until time.Time) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if stamp.epoch != pc.epoch || stamp.gen != pc.users[me.ID] || stamp.zoneGen != pc.zones[me.ZoneID] ||
		!pc.watched[chat.UserChannel(me.ID)] || (me.ZoneID > 0 && !pc.watched[chat.ZoneChannel(me.ZoneID)]) {
		return // not, or no longer, hearing of this user's changes
	}
	if old, ok := pc.pages[key]; ok {
		pc.bytes -= old.body.wire
	}
	if pc.bytes+body.wire > pageCacheBytes {
		clear(pc.pages)
		pc.bytes = 0
	}
	pc.pages[key] = &cachedPage{body: body, userID: me.ID, zoneID: me.ZoneID, epoch: stamp.epoch,
		gen: stamp.gen, zoneGen: stamp.zoneGen, minute: minuteOf(now), until: until}
	pc.bytes += body.wire
}

// announcingEngine is the engine as this process's use cases publish to it: what they
// publish leaves the page cache at once, before the request that made the change
// answers.
type announcingEngine struct {
	realtime.Engine
	pages *pageCache
}

// Publish publishes ev, then drops what it names from the page cache.
func (e announcingEngine) Publish(ctx context.Context, channel string, ev realtime.Event) error {
	err := e.Engine.Publish(ctx, channel, ev)
	e.pages.invalidate(channel)
	return err
}

// PublishMany publishes ev to channels, then drops what it names from the page cache.
func (e announcingEngine) PublishMany(ctx context.Context, channels []string, ev realtime.Event) error {
	err := e.Engine.PublishMany(ctx, channels, ev)
	e.pages.invalidate(channels...)
	return err
}

// PublishAll publishes pubs, then drops what they name from the page cache.
func (e announcingEngine) PublishAll(ctx context.Context, pubs []realtime.Publication) error {
	err := e.Engine.PublishAll(ctx, pubs)
	for _, p := range pubs {
		e.pages.invalidate(p.Channels...)
	}
	return err
}

// eventPagesChanged tells every process's page cache that a user's pages changed in a way
// only they see (their notification settings). It goes on the user's streams channel,
// which streams hand to their guard and never to the client.
const eventPagesChanged = "pages.changed"

// settingsChanged drops me's cached pages in every process after a change of their
// notification settings (whether or not it was stored: dropping is harmless).
func (s *Server) settingsChanged(ctx context.Context, userID int64) {
	err := s.engine.Publish(context.WithoutCancel(ctx), streamsChannel(userID), realtime.Event{Type: eventPagesChanged, Data: []byte("{}")})
	if err != nil {
		s.logger.Log(ctx, trace.FailureLevel(err), "page cache: publish", slog.String("error", err.Error()))
	}
}
