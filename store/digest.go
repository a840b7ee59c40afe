package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/dreamseed/messenger"
)

// DigestRecipient is what the digest job needs of a user to act as them and write to them.
type DigestRecipient struct {
	Identity messenger.Identity
	Locale   string
	Name     string
	Email    string
}

// DigestCandidates answers, acting as no user (app_digest_candidates refuses inside a user's
// transaction), the users not seen since seenBefore, with email on, whose messages neither
// read nor in a digest number at least minUnread, at most limit of them.
func (db *DB) DigestCandidates(ctx context.Context, seenBefore time.Time, minUnread, limit int) ([]int64, error) {
	var ids []int64
	err := db.InTx(ctx, messenger.Identity{}, func(tx *Tx) error {
		rows, err := tx.tx.QueryContext(ctx, `SELECT user_id FROM app_digest_candidates($1, $2, $3)`, seenBefore, minUnread, limit)
		if err != nil {
			return fmt.Errorf("digest candidates: %w", err)
		}
		defer rows.Close()
		ids, err = scanIDs(rows)
		return err
	})
	return ids, err
}

// DigestRecipientOf answers who userID is (acting as no user, through app_identity_of);
// ENOTFOUND for a user who moved away or does not exist.
func (db *DB) DigestRecipientOf(ctx context.Context, userID int64) (DigestRecipient, error) {
	var r DigestRecipient
	err := db.InTx(ctx, messenger.Identity{}, func(tx *Tx) error {
		var role string
		err := tx.tx.QueryRowContext(ctx, `SELECT org_id, zone_id, role, locale, name, email FROM app_identity_of($1)`, userID).
			Scan(&r.Identity.OrgID, &r.Identity.ZoneID, &role, &r.Locale, &r.Name, &r.Email)
		r.Identity.UserID = userID
		return notFound(err, "error.user.not_found")
	})
	return r, err
}

// DigestConversation is one conversation with messages the user has neither read nor been
// sent in a digest.
type DigestConversation struct {
	ID      int64
	LastSeq int64
	ReadSeq int64 // the user's watermark
	Covered int64 // max(read, the last digest's mark): the digest shows what is above it
}

// DigestUnread answers the transaction user's conversations (active, not muted) with messages
// above both their read watermark and their digest mark, most recent first.
func (tx *Tx) DigestUnread(ctx context.Context) ([]DigestConversation, error) {
	rows, err := tx.tx.QueryContext(ctx,
		`SELECT c.id, c.last_seq, coalesce(r.last_read_seq, 0),
		        greatest(coalesce(r.last_read_seq, 0), coalesce(d.up_to_seq, 0))
		   FROM conversation_participants p
		   JOIN conversations c ON c.id = p.conversation_id
		   LEFT JOIN read_receipts r ON r.conversation_id = p.conversation_id AND r.user_id = p.user_id
		   LEFT JOIN digest_marks d ON d.conversation_id = p.conversation_id AND d.user_id = p.user_id
		  WHERE p.user_id = $1 AND p.left_at IS NULL
		    AND (p.muted_until IS NULL OR p.muted_until < now())
		    AND c.last_seq > greatest(coalesce(r.last_read_seq, 0), coalesce(d.up_to_seq, 0))
		  ORDER BY c.last_message_at DESC NULLS LAST, c.id DESC
		  LIMIT 1000`, tx.id.UserID)
	if err != nil {
		return nil, fmt.Errorf("digest unread: %w", err)
	}
	defer rows.Close()
	var out []DigestConversation
	for rows.Next() {
		var c DigestConversation
		if err := rows.Scan(&c.ID, &c.LastSeq, &c.ReadSeq, &c.Covered); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// EmailOn reports whether the transaction user gets email (the default when they have no
// settings row).
func (tx *Tx) EmailOn(ctx context.Context) (bool, error) {
	var on bool
	err := tx.tx.QueryRowContext(ctx,
		`SELECT coalesce((SELECT email FROM user_settings WHERE user_id = $1), true)`, tx.id.UserID).Scan(&on)
	return on, err
}

// LastSeenOrJoined answers when the transaction user was last seen, or joined if never.
func (tx *Tx) LastSeenOrJoined(ctx context.Context) (time.Time, error) {
	var t time.Time
	err := tx.tx.QueryRowContext(ctx, `SELECT coalesce(last_seen_at, created_at) FROM users WHERE id = $1`, tx.id.UserID).Scan(&t)
	return t, notFound(err, "error.user.not_found")
}

// TurnEmailOff turns the transaction user's email off (the unsubscribe link).
func (tx *Tx) TurnEmailOff(ctx context.Context) error {
	_, err := tx.tx.ExecContext(ctx,
		`INSERT INTO user_settings (user_id, org_id, email) VALUES ($1, $2, false)
		 ON CONFLICT (user_id) DO UPDATE SET email = false, updated_at = now()`, tx.id.UserID, tx.id.OrgID)
	if err != nil {
		return fmt.Errorf("email off: %w", err)
	}
	return nil
}

// UseUnsubscribe records that the unsubscribe token with this nonce hash was used; false
// when it was used before.
func (tx *Tx) UseUnsubscribe(ctx context.Context, nonceHash []byte, expires time.Time) (bool, error) {
	res, err := tx.tx.ExecContext(ctx,
		`INSERT INTO digest_unsubscribes (nonce_hash, user_id, org_id, expires_at) VALUES ($1, $2, $3, $4)
		 ON CONFLICT (nonce_hash) DO NOTHING`, nonceHash, tx.id.UserID, tx.id.OrgID, expires)
	if err != nil {
		return false, fmt.Errorf("unsubscribe: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// UnsubscribeUsed reports whether the token with this nonce hash was used already.
func (tx *Tx) UnsubscribeUsed(ctx context.Context, nonceHash []byte) (bool, error) {
	var used bool
	err := tx.tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM digest_unsubscribes WHERE nonce_hash = $1)`, nonceHash).Scan(&used)
	return used, err
}

// DigestOutbox is a digest recorded as being sent: its Message-ID and the seq it covers in
// each conversation.
type DigestOutbox struct {
	MessageID string
	Marks     map[int64]int64
	StartedAt time.Time
	Attempts  int
}

// PendingDigest answers the transaction user's digest being sent, locked until the
// transaction ends, or nil.
func (tx *Tx) PendingDigest(ctx context.Context) (*DigestOutbox, error) {
	var o DigestOutbox
	var marks []byte
	err := tx.tx.QueryRowContext(ctx,
		`SELECT message_id, marks, started_at, attempts FROM digest_outbox WHERE user_id = $1 FOR UPDATE`, tx.id.UserID).
		Scan(&o.MessageID, &marks, &o.StartedAt, &o.Attempts)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pending digest: %w", err)
	}
	if o.Marks, err = decodeMarks(marks); err != nil {
		return nil, err
	}
	return &o, nil
}

// RecordDigestSending records, before the SMTP send, the digest about to go: messageID and
// the seq covered per conversation. A row already there (an earlier attempt, or one running
// at the same time) keeps its Message-ID, takes the new marks and counts the attempt; the
// answer is the Message-ID to send with.
func (tx *Tx) RecordDigestSending(ctx context.Context, messageID string, marks map[int64]int64) (string, error) {
	m := make(map[string]int64, len(marks))
	for id, seq := range marks {
		m[strconv.FormatInt(id, 10)] = seq
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	var stored string
	err = tx.tx.QueryRowContext(ctx,
		`INSERT INTO digest_outbox (user_id, org_id, message_id, marks) VALUES ($1, $2, $3, $4)
		 ON CONFLICT (user_id) DO UPDATE SET marks = EXCLUDED.marks,
		        attempts = least(digest_outbox.attempts + 1, 1000)
		 RETURNING message_id`,
		tx.id.UserID, tx.id.OrgID, messageID, raw).Scan(&stored)
	if err != nil {
		return "", fmt.Errorf("record digest: %w", err)
	}
	return stored, nil
}

// DropPendingDigest forgets a digest that will not be sent (everything was read meanwhile).
func (tx *Tx) DropPendingDigest(ctx context.Context) error {
	_, err := tx.tx.ExecContext(ctx, `DELETE FROM digest_outbox WHERE user_id = $1`, tx.id.UserID)
	return err
}

// DigestSent moves the marks of the digest messageID, once SMTP took it, into digest_marks
// (raised only) and digest_state, and deletes the outbox row. false: no such pending digest
// (another attempt finished it).
func (tx *Tx) DigestSent(ctx context.Context, messageID string) (bool, error) {
	o, err := tx.PendingDigest(ctx)
	if err != nil || o == nil || o.MessageID != messageID {
		return false, err
	}
	for convID, seq := range o.Marks {
		if _, err := tx.tx.ExecContext(ctx,
			`INSERT INTO digest_marks (conversation_id, user_id, org_id, up_to_seq) VALUES ($1, $2, $3, $4)
			 ON CONFLICT (conversation_id, user_id) DO UPDATE
			    SET up_to_seq = greatest(digest_marks.up_to_seq, EXCLUDED.up_to_seq), sent_at = now()`,
			convID, tx.id.UserID, tx.id.OrgID, seq); err != nil {
			return false, fmt.Errorf("digest mark: %w", err)
		}
	}
	if _, err := tx.tx.ExecContext(ctx,
		`INSERT INTO digest_state (user_id, org_id, last_sent_at) VALUES ($1, $2, now())
		 ON CONFLICT (user_id) DO UPDATE SET last_sent_at = now()`, tx.id.UserID, tx.id.OrgID); err != nil {
		return false, fmt.Errorf("digest state: %w", err)
	}
	return true, tx.DropPendingDigest(ctx)
}

func decodeMarks(raw []byte) (map[int64]int64, error) {
	var m map[string]int64
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("digest marks: %w", err)
	}
	out := make(map[int64]int64, len(m))
	for k, v := range m {
		id, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("digest marks: %w", err)
		}
		out[id] = v
	}
	return out, nil
}

// WithDigestLock runs fn while holding userID's digest lock: a session advisory lock on a
// connection of its own, so it spans fn's transactions and the SMTP send between them, and
// PostgreSQL releases it if the process dies. ok is false (fn not run) when another job
// holds it: two digests of one user never run at once.
func (db *DB) WithDigestLock(ctx context.Context, userID int64, fn func() error) (ok bool, err error) {
	conn, err := db.db.Conn(ctx)
	if err != nil {
		return false, fmt.Errorf("digest lock: %w", err)
	}
	defer conn.Close()
	const key = `hashtextextended('messenger digest ' || $1::text, 0)`
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock(`+key+`)`, userID).Scan(&ok); err != nil || !ok {
		return false, err
	}
	defer func() {
		// A cancelled ctx must not leave the lock held on a pooled connection.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, uerr := conn.ExecContext(uctx, `SELECT pg_advisory_unlock(`+key+`)`, userID); uerr != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn }) // drop the connection, and the lock with it
		}
	}()
	return true, fn()
}
