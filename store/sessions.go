package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"

	"github.com/dreamseed/messenger"
)

// Session is a signed-in browser: the identity it acts as and its CSRF token.
type Session struct {
	Identity   messenger.Identity
	CSRFToken  string
	ExpiresAt  time.Time
	LastUsedAt time.Time
}

// CreateSession stores a session of the transaction's user under the hash of its token.
func (tx *Tx) CreateSession(ctx context.Context, tokenHash []byte, csrfToken, userAgent string, expiresAt time.Time) error {
	if len(userAgent) > 300 {
		userAgent = userAgent[:300]
	}
	_, err := tx.tx.ExecContext(ctx,
		`INSERT INTO sessions (token_hash, user_id, org_id, csrf_token, user_agent, expires_at)
		 VALUES ($1, $2, $3, $4, $5, $6)`,
		tokenHash, tx.id.UserID, tx.id.OrgID, csrfToken, userAgent, expiresAt)
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// SessionByToken answers the live (not revoked, not expired) session whose token has this
// hash; an unknown, revoked or expired one is an unauthorized error.
func (db *DB) SessionByToken(ctx context.Context, tokenHash []byte) (Session, error) {
	var s Session
	var zone sql.NullInt64
	err := db.db.QueryRowContext(ctx,
		`SELECT user_id, org_id, zone_id, csrf_token, expires_at, last_used_at FROM app_session($1)`, tokenHash,
	).Scan(&s.Identity.UserID, &s.Identity.OrgID, &zone, &s.CSRFToken, &s.ExpiresAt, &s.LastUsedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return s, messenger.Errorf(messenger.EUNAUTHORIZED, "error.sign_in")
	}
	if isTimeout(err) {
		return s, unavailable(err)
	}
	s.Identity.ZoneID = zone.Int64
	return s, err
}

// LiveSessions answers which of these session token hashes are live (as SessionByToken
// would answer them), keyed by the hash as a string, with their expiry: one query for
// any number of sessions.
func (db *DB) LiveSessions(ctx context.Context, tokenHashes [][]byte) (map[string]time.Time, error) {
	live := make(map[string]time.Time, len(tokenHashes))
	if len(tokenHashes) == 0 {
		return live, nil
	}
	rows, err := db.db.QueryContext(ctx,
		`SELECT token_hash, expires_at FROM app_sessions_live($1)`, pq.ByteaArray(tokenHashes))
	if err != nil {
		return nil, fmt.Errorf("live sessions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var hash []byte
		var expires time.Time
		if err := rows.Scan(&hash, &expires); err != nil {
			return nil, fmt.Errorf("live sessions: %w", err)
		}
		live[string(hash)] = expires
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("live sessions: %w", err)
	}
	return live, nil
}

// TouchSession records that the session was used now.
func (tx *Tx) TouchSession(ctx context.Context, tokenHash []byte) error {
	_, err := tx.tx.ExecContext(ctx,
		`UPDATE sessions SET last_used_at = now() WHERE token_hash = $1 AND user_id = $2`, tokenHash, tx.id.UserID)
	return err
}

// RevokeSession ends the session whose token has this hash.
func (tx *Tx) RevokeSession(ctx context.Context, tokenHash []byte) error {
	_, err := tx.tx.ExecContext(ctx,
		`UPDATE sessions SET revoked_at = now() WHERE token_hash = $1 AND user_id = $2 AND revoked_at IS NULL`,
		tokenHash, tx.id.UserID)
	return err
}

// RevokeAllSessions ends every session of the transaction's user (sign out everywhere).
func (tx *Tx) RevokeAllSessions(ctx context.Context) (int64, error) {
	res, err := tx.tx.ExecContext(ctx,
		`UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL`, tx.id.UserID)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// RevokeSessionsBeyond keeps the session whose token has this hash and the newest
// keep-1 other live sessions of the transaction's user, revokes the rest, and answers
// the token hashes it revoked.
func (tx *Tx) RevokeSessionsBeyond(ctx context.Context, tokenHash []byte, keep int) ([][]byte, error) {
	rows, err := tx.tx.QueryContext(ctx,
		`UPDATE sessions SET revoked_at = now()
		  WHERE user_id = $1 AND token_hash IN (
		        SELECT token_hash FROM sessions
		         WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now() AND token_hash <> $2
		         ORDER BY created_at DESC, token_hash
		         OFFSET $3)
		 RETURNING token_hash`,
		tx.id.UserID, tokenHash, max(keep-1, 0))
	if err != nil {
		return nil, fmt.Errorf("revoke sessions beyond %d: %w", keep, err)
	}
	defer rows.Close()
	var revoked [][]byte
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&h); err != nil {
			return nil, err
		}
		revoked = append(revoked, h)
	}
	return revoked, rows.Err()
}
