package handlers

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/internal/trace"
	"github.com/dreamseed/messenger/realtime"
)

// Why the server ends a live stream. The stream's last event is stream.closed with
// {"reason": …}; the client does not reconnect on its own.
const (
	eventStreamClosed = "stream.closed"
	// closedReplaced: the user opened more streams than the cap; this, the oldest, gave way.
	closedReplaced = "replaced"
	// closedSignedOut: the stream's session signed out or was revoked.
	closedSignedOut = "signed_out"
	// closedSessionReplaced: the browser signed in again; its cookie now carries a new
	// session (and CSRF token), which the page picks up by reloading.
	closedSessionReplaced = "session_replaced"
	// closedExpired: the stream's session or token expired.
	closedExpired = "expired"
	// closedShutdown: the process is shutting down; the frame before says when to come
	// back (an SSE retry), and the client reconnects, to another process or this one's
	// successor, from the stream's position.
	closedShutdown = "shutdown"
)

// eventStreamEnd is the notice on a user's streams channel that some of their streams
// must end.
const eventStreamEnd = "stream.end"

// streamsChannel is the engine channel of the notices to a user's streams, in every
// process; each stream's one subscription includes it. It keeps no history: a notice
// missed is caught by the session checker and by the guard's Lost.
func streamsChannel(userID int64) string { return "streams:" + strconv.FormatInt(userID, 10) }

// streamEnd says which of a user's streams must end, and why: those with these
// connection ids, those of these sessions (hex of the token hash), or those of every
// session (sign out everywhere; API streams end only with their token).
type streamEnd struct {
	Reason      string   `json:"reason"`
	Streams     []string `json:"streams,omitempty"`
	Sessions    []string `json:"sessions,omitempty"`
	AllSessions bool     `json:"all_sessions,omitempty"`
}

// sessionID names a session in a streamEnd without its token.
func sessionID(tokenHash []byte) string { return hex.EncodeToString(tokenHash) }

// endStreams tells userID's streams in every process which of them must end. A notice
// that fails to go out is logged: the streams of a revoked session still end at the
// next session check, and an evicted stream when the engine's resync reaches it.
func (s *Server) endStreams(ctx context.Context, userID int64, end streamEnd) {
	raw, err := json.Marshal(end)
	if err == nil {
		err = s.engine.Publish(ctx, streamsChannel(userID), realtime.Event{Type: eventStreamEnd, Data: raw})
	}
	if err != nil {
		s.logger.Log(ctx, trace.FailureLevel(err), "end streams", slog.Int64("user_id", userID), slog.String("reason", end.Reason), slog.String("error", err.Error()))
	}
}

// streamGuard holds the rules that end one stream early: the user opening more streams
// than the cap (a notice on the user's streams channel, which the stream's one
// subscription carries), its session ending (a notice: sign-out here or everywhere, a new
// sign-in in the same browser; or the process's session checker, in case a notice was
// lost), and its credentials expiring. It has no goroutine of its own: the stream's loop
// selects on Expired and Ended, and hands it the deliveries of the streams channel
// (Notice) and the engine's word that notices may have been lost (Lost).
type streamGuard struct {
	s       *Server
	userID  int64
	connID  string
	session string // hex of the session's token hash; "" for an API stream
	hash    []byte // the session's token hash
	expires time.Time
	expiry  *time.Timer // nil without an expiry
	ended   chan string // the session checker's verdict
}

// guardStream starts guarding the stream connID of me, opened with the credentials of
// ctx; the stream was Connected as connID just before, so that the engine counts it, and
// subscribed to streamsChannel(me.ID).
func (s *Server) guardStream(ctx context.Context, me messenger.User, connID string) *streamGuard {
	g := &streamGuard{s: s, userID: me.ID, connID: connID, expires: auth.ExpiryFrom(ctx), ended: make(chan string, 1)}
	if token := auth.SessionTokenFrom(ctx); token != "" {
		g.hash = auth.HashToken(token)
		g.session = sessionID(g.hash)
	}
	evicted, err := s.engine.AdmitStream(ctx, me.ID, connID, s.cfg.MaxStreamsPerUser)
	if err != nil {
		s.logger.Log(ctx, trace.FailureLevel(err), "admit stream", slog.String("error", err.Error()))
	}
	if len(evicted) > 0 {
		s.endStreams(ctx, me.ID, streamEnd{Reason: closedReplaced, Streams: evicted})
	}
	if !g.expires.IsZero() {
		g.expiry = time.NewTimer(time.Until(g.expires))
	}
	if g.session != "" {
		s.sessions.add(g)
	}
	return g
}

// Expired fires when the stream's credentials expire (never without an expiry).
func (g *streamGuard) Expired() <-chan time.Time {
	if g.expiry == nil {
		return nil
	}
	return g.expiry.C
}

// Ended delivers why the session checker ends the stream.
func (g *streamGuard) Ended() <-chan string { return g.ended }

// Notice answers why the event ev of the streams channel ends the stream, or "".
func (g *streamGuard) Notice(ctx context.Context, ev realtime.Event) string {
	if ev.Type == realtime.EventResync {
		return g.Lost(ctx)
	}
	return endsStream(ev, g.connID, g.session)
}

// Lost answers why the stream must end now that notices to it may have been lost (the
// engine failed to publish to the streams channel, or reconnected to its broker), or
// "": it asks the engine whether the stream was evicted, and the session checker to
// check the sessions soon.
func (g *streamGuard) Lost(ctx context.Context) string {
	if g.session != "" {
		g.s.sessions.checkSoon()
	}
	evicted, err := g.s.engine.StreamEvicted(ctx, g.userID, g.connID)
	if err != nil {
		g.s.logger.Log(ctx, trace.FailureLevel(err), "stream evicted", slog.String("error", err.Error()))
		return ""
	}
	if evicted {
		return closedReplaced
	}
	return ""
}

// end is the checker's verdict that the stream must end; the first one counts.
func (g *streamGuard) end(reason string) {
	select {
	case g.ended <- reason:
	default:
	}
}

// Close stops guarding: nothing of the guard outlives it.
func (g *streamGuard) Close() {
	if g.expiry != nil {
		g.expiry.Stop()
	}
	if g.session != "" {
		g.s.sessions.remove(g)
	}
}

// endsStream answers why notice ev ends the stream connID of session, or "".
func endsStream(ev realtime.Event, connID, session string) string {
	if ev.Type != eventStreamEnd {
		return ""
	}
	var end streamEnd
	if err := json.Unmarshal(ev.Data, &end); err != nil {
		return ""
	}
	switch {
	case slices.Contains(end.Streams, connID),
		session != "" && (end.AllSessions || slices.Contains(end.Sessions, session)):
		return end.Reason
	}
	return ""
}

// sessionCheckTimeout bounds one check of the sessions.
const sessionCheckTimeout = 10 * time.Second

// sessionChecker checks the sessions of a process's open page streams, all in one
// query, every interval (and soon after a stream asks, when its notices may have been
// lost), and ends the streams whose session is revoked or expired: a notice lost costs
// at most one interval. Its goroutine runs while the process has a page stream open.
type sessionChecker struct {
	every  time.Duration
	lookup func(ctx context.Context, tokenHashes [][]byte) (live map[string]time.Time, err error)
	logger *slog.Logger

	mu     sync.Mutex
	guards map[*streamGuard]struct{}
	stop   chan struct{} // closed when the last stream goes; nil while not running
	soon   chan struct{}
}

// newSessionChecker answers a checker of the sessions that lookup answers live.
func newSessionChecker(every time.Duration, lookup func(context.Context, [][]byte) (map[string]time.Time, error), logger *slog.Logger) *sessionChecker {
	return &sessionChecker{
		every: every, lookup: lookup, logger: logger,
		guards: make(map[*streamGuard]struct{}), soon: make(chan struct{}, 1),
	}
}

// add has the session of g checked from now on.
func (c *sessionChecker) add(g *streamGuard) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.guards[g] = struct{}{}
	if c.stop == nil {
		c.stop = make(chan struct{})
		go c.run(c.stop)
	}
}

// remove stops checking the session of g.
func (c *sessionChecker) remove(g *streamGuard) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.guards, g)
	if len(c.guards) == 0 && c.stop != nil {
		close(c.stop)
		c.stop = nil
	}
}

// checkSoon asks for a check now, besides the regular ones; asks that come while a
// check waits or runs are answered by the next one.
func (c *sessionChecker) checkSoon() {
	select {
	case c.soon <- struct{}{}:
	default:
	}
}

// run checks every interval, and when asked, until stop is closed.
func (c *sessionChecker) run(stop <-chan struct{}) {
	ticker := time.NewTicker(c.every)
	defer ticker.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ticker.C:
		case <-c.soon:
		}
		c.check()
	}
}

// check looks the sessions of the streams up and ends the streams of those gone. A
// failed lookup ends nothing: the next check tries again.
func (c *sessionChecker) check() {
	c.mu.Lock()
	guards := make([]*streamGuard, 0, len(c.guards))
	hashes := make([][]byte, 0, len(c.guards))
	seen := make(map[string]bool, len(c.guards))
	for g := range c.guards {
		guards = append(guards, g)
		if !seen[g.session] {
			seen[g.session] = true
			hashes = append(hashes, g.hash)
		}
	}
	c.mu.Unlock()
	if len(hashes) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), sessionCheckTimeout)
	defer cancel()
	live, err := c.lookup(ctx, hashes)
	if err != nil {
		c.logger.Log(ctx, trace.FailureLevel(err), "stream session check", slog.Int("sessions", len(hashes)), slog.String("error", err.Error()))
		return
	}
	now := time.Now()
	for _, g := range guards {
		if _, ok := live[string(g.hash)]; ok {
			continue
		}
		if !g.expires.IsZero() && !now.Before(g.expires) {
			g.end(closedExpired)
		} else {
			g.end(closedSignedOut)
		}
	}
}

// closedFrame is the stream's last event when the guard ends it; its id is the stream's
// position (unchanged), so that a client that does come back resumes from there.
func closedFrame(reason, id string) string {
	raw, _ := json.Marshal(struct {
		Reason string `json:"reason"`
	}{reason})
	return frame(eventStreamClosed, id, string(raw))
}
