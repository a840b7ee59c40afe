package handlers

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/auth"
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
)

// resyncCheckWithin spreads the session checks of streams whose notices may have been
// lost (a broker reconnect).
const resyncCheckWithin = 5 * time.Second

// eventStreamEnd is the notice on a user's streams channel that some of their streams
// must end.
const eventStreamEnd = "stream.end"

// streamsChannel is the engine channel of the notices to a user's streams, in every
// process. It keeps no history: a notice missed is caught by the stream's own checks.
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
// that fails to go out is logged: the streams of a revoked session still end at their
// next session check.
func (s *Server) endStreams(ctx context.Context, userID int64, end streamEnd) {
	raw, err := json.Marshal(end)
	if err == nil {
		err = s.engine.Publish(ctx, streamsChannel(userID), realtime.Event{Type: eventStreamEnd, Data: raw})
	}
	if err != nil {
		s.logger.Warn("end streams", slog.Int64("user_id", userID), slog.String("reason", end.Reason), slog.String("error", err.Error()))
	}
}

// streamGuard watches what may end one stream early: the user opening more streams than
// the cap, its session ending (sign-out here or everywhere, revocation, a new sign-in in
// the same browser; checked on every heartbeat besides, in case a notice was lost), and
// its credentials expiring.
type streamGuard struct {
	done   chan struct{}
	reason string // set before done is closed
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// guardStream starts guarding the stream connID of me, opened with the credentials of
// ctx; the stream was Connected as connID just before, so that the engine counts it.
func (s *Server) guardStream(ctx context.Context, me messenger.User, connID string) (*streamGuard, error) {
	sub, err := s.engine.Subscribe(ctx, streamsChannel(me.ID))
	if err != nil {
		return nil, err
	}
	session := ""
	if token := auth.SessionTokenFrom(ctx); token != "" {
		session = sessionID(auth.HashToken(token))
	}
	evicted, err := s.engine.AdmitStream(ctx, me.ID, connID, s.cfg.MaxStreamsPerUser)
	if err != nil {
		s.logger.Warn("admit stream", slog.Int64("user_id", me.ID), slog.String("error", err.Error()))
	}
	if len(evicted) > 0 {
		s.endStreams(ctx, me.ID, streamEnd{Reason: closedReplaced, Streams: evicted})
	}

	gctx, cancel := context.WithCancel(ctx)
	g := &streamGuard{done: make(chan struct{}), cancel: cancel}
	expires := auth.ExpiryFrom(ctx)
	g.wg.Go(func() {
		defer sub.Close()
		var expired <-chan time.Time
		if !expires.IsZero() {
			timer := time.NewTimer(time.Until(expires))
			defer timer.Stop()
			expired = timer.C
		}
		var check <-chan time.Time
		if session != "" {
			ticker := time.NewTicker(heartbeatEvery)
			defer ticker.Stop()
			check = ticker.C
		}
		overflowed := sub.Overflowed()
		var soon <-chan time.Time
		for {
			reason := ""
			select {
			case <-gctx.Done():
				return
			case <-expired:
				reason = closedExpired
			case d, ok := <-sub.C():
				if !ok {
					return
				}
				reason = endsStream(d.Event, connID, session)
			case <-sub.Resync():
				// Notices may have been lost: the session is checked soon, each stream
				// at its own moment, so that a broker reconnect does not send every
				// stream to the database at once.
				if session != "" && soon == nil {
					soon = time.After(rand.N(resyncCheckWithin))
				}
			case <-overflowed:
				overflowed = nil
				reason = s.sessionEnded(gctx, session, expires)
			case <-soon:
				soon = nil
				reason = s.sessionEnded(gctx, session, expires)
			case <-check:
				reason = s.sessionEnded(gctx, session, expires)
			}
			if reason != "" {
				g.reason = reason
				close(g.done)
				return
			}
		}
	})
	return g, nil
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

// sessionEnded answers why the session (hex of its token hash; "" for an API stream)
// is no longer live, or "" while it is or cannot be checked.
func (s *Server) sessionEnded(ctx context.Context, session string, expires time.Time) string {
	if session == "" {
		return ""
	}
	hash, _ := hex.DecodeString(session)
	_, err := s.db.SessionByToken(ctx, hash)
	switch {
	case err == nil:
		return ""
	case messenger.ErrorCode(err) != messenger.EUNAUTHORIZED:
		s.logger.Warn("stream session check", slog.String("error", err.Error()))
		return ""
	case !expires.IsZero() && !time.Now().Before(expires):
		return closedExpired
	}
	return closedSignedOut
}

// Done is closed when the stream must end; Reason then says why.
func (g *streamGuard) Done() <-chan struct{} { return g.done }

// Reason is why the stream must end (after Done).
func (g *streamGuard) Reason() string { return g.reason }

// Close stops guarding.
func (g *streamGuard) Close() {
	g.cancel()
	g.wg.Wait()
}

// closedFrame is the stream's last event when the guard ends it; its id is the stream's
// position (unchanged), so that a client that does come back resumes from there.
func closedFrame(reason, id string) string {
	raw, _ := json.Marshal(struct {
		Reason string `json:"reason"`
	}{reason})
	return frame(eventStreamClosed, id, string(raw))
}
