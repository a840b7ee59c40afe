package chat

import (
	"context"
	"time"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/store"
)

// Browser sessions: a portal sign-in starts one, the session cookie carries its token
// (the database keeps only the token's hash), and sign-out or a newer sign-in ends it.

// SessionTTL is how long a browser session lasts; the portal signs the user in again
// after that.
const SessionTTL = 14 * 24 * time.Hour

// sessionTouchEvery is how stale a session's last use may be before it is stored again:
// a session is not written on every request.
const sessionTouchEvery = time.Minute

// Session is a live browser session: the identity it acts as, its CSRF token, when it
// expires and when it was last used.
type Session = store.Session

// StartedSession is a session just started.
type StartedSession struct {
	Token     string // what the session cookie carries
	ExpiresAt time.Time
	// Revoked are the token hashes of the user's older sessions that the start revoked,
	// past the cap: their streams are to end.
	Revoked [][]byte
}

// StartSession starts a session of me for a browser with this user agent, and revokes
// me's oldest sessions beyond maxSessions.
func (s *Service) StartSession(ctx context.Context, me messenger.User, userAgent string, maxSessions int) (StartedSession, error) {
	started := StartedSession{Token: auth.NewToken(), ExpiresAt: time.Now().Add(SessionTTL)}
	hash := auth.HashToken(started.Token)
	err := s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error {
		if err := tx.CreateSession(ctx, hash, auth.NewToken(), userAgent, started.ExpiresAt); err != nil {
			return err
		}
		var err error
		started.Revoked, err = tx.RevokeSessionsBeyond(ctx, hash, maxSessions)
		return err
	})
	if err != nil {
		return StartedSession{}, err
	}
	return started, nil
}

// EndSession revokes the live session of token, whoever's it is (a browser has one
// session at a time: a new sign-in replaces it), and answers the identity it acted as;
// ended is false when no session of token was live.
func (s *Service) EndSession(ctx context.Context, token string) (id messenger.Identity, ended bool, err error) {
	hash := auth.HashToken(token)
	old, err := s.db.SessionByToken(ctx, hash)
	if messenger.ErrorCode(err) == messenger.EUNAUTHORIZED {
		return id, false, nil
	}
	if err != nil {
		return id, false, err
	}
	if err := s.db.InTx(ctx, old.Identity, func(tx *store.Tx) error { return tx.RevokeSession(ctx, hash) }); err != nil {
		return id, false, err
	}
	return old.Identity, true, nil
}

// SignOut ends me's session of token, or with everywhere every session of me.
func (s *Service) SignOut(ctx context.Context, me messenger.User, token string, everywhere bool) error {
	return s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error {
		if everywhere {
			_, err := tx.RevokeAllSessions(ctx)
			return err
		}
		return tx.RevokeSession(ctx, auth.HashToken(token))
	})
}

// LiveSession answers the live session of token: one unknown, revoked or expired is
// unauthorized.
func (s *Service) LiveSession(ctx context.Context, token string) (Session, error) {
	return s.db.SessionByToken(ctx, auth.HashToken(token))
}

// SessionUser answers the user of a live session of token, and records the session's use
// when its last one is stale (sess.LastUsedAt then moves to now).
func (s *Service) SessionUser(ctx context.Context, sess *Session, token string, now time.Time) (messenger.User, error) {
	var u messenger.User
	err := s.db.InTx(ctx, sess.Identity, func(tx *store.Tx) error {
		var err error
		if u, err = tx.User(ctx, sess.Identity.UserID); err != nil {
			return err
		}
		if now.Sub(sess.LastUsedAt) > sessionTouchEvery {
			sess.LastUsedAt = now
			return tx.TouchSession(ctx, auth.HashToken(token))
		}
		return nil
	})
	return u, err
}

// TouchSession records that me used the session of token now, when its last use
// (lastUsed) is stale; touched says whether it did.
func (s *Service) TouchSession(ctx context.Context, me messenger.User, token string, lastUsed, now time.Time) (touched bool, err error) {
	if now.Sub(lastUsed) <= sessionTouchEvery {
		return false, nil
	}
	err = s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error { return tx.TouchSession(ctx, auth.HashToken(token)) })
	return err == nil, err
}
