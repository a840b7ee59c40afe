package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/dreamseed/messenger"
)

// MarkRead raises the transaction user's read watermark in a conversation to seq (capped
// at the conversation's last seq); it never lowers it, whatever order concurrent marks from
// several tabs commit in. It answers the watermark after, and before = after when this mark
// raised nothing (before < after when it did).
func (tx *Tx) MarkRead(ctx context.Context, convID, seq int64) (before, after int64, err error) {
	var lastSeq int64
	err = tx.tx.QueryRowContext(ctx,
		`SELECT c.last_seq FROM conversations c
		   JOIN conversation_participants p ON p.conversation_id = c.id AND p.user_id = $2 AND p.left_at IS NULL
		  WHERE c.id = $1`, convID, tx.id.UserID).Scan(&lastSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, messenger.Errorf(messenger.ENOTFOUND, "error.conversation.not_found")
	}
	if err != nil {
		return 0, 0, fmt.Errorf("mark read: %w", err)
	}
	// The row lock of the upsert orders concurrent marks. The update happens only when it
	// raises the watermark, so a mark that lost the race to a higher one returns no row and
	// is not announced twice.
	var raised int64
	err = tx.tx.QueryRowContext(ctx,
		`INSERT INTO read_receipts AS r (conversation_id, user_id, org_id, last_read_seq, read_at)
		 VALUES ($1, $2, $3, $4, now())
		 ON CONFLICT (conversation_id, user_id) DO UPDATE
		    SET last_read_seq = EXCLUDED.last_read_seq, read_at = now()
		  WHERE r.last_read_seq < EXCLUDED.last_read_seq
		 RETURNING r.last_read_seq`,
		convID, tx.id.UserID, tx.id.OrgID, min(seq, lastSeq)).Scan(&raised)
	switch {
	case err == nil:
		return raised - 1, raised, nil // before is only known to be lower
	case errors.Is(err, sql.ErrNoRows):
		err = tx.tx.QueryRowContext(ctx,
			`SELECT last_read_seq FROM read_receipts WHERE conversation_id = $1 AND user_id = $2`,
			convID, tx.id.UserID).Scan(&after)
		return after, after, err
	default:
		return 0, 0, fmt.Errorf("mark read: %w", err)
	}
}

// Watermarks answers each active member's read watermark in a conversation, by portal id.
func (tx *Tx) Watermarks(ctx context.Context, convID int64) (map[string]int64, error) {
	rows, err := tx.tx.QueryContext(ctx,
		`SELECT u.sub, coalesce(r.last_read_seq, 0)
		   FROM conversation_participants p
		   JOIN users u ON u.id = p.user_id
		   LEFT JOIN read_receipts r ON r.conversation_id = p.conversation_id AND r.user_id = p.user_id
		  WHERE p.conversation_id = $1 AND p.left_at IS NULL`, convID)
	if err != nil {
		return nil, fmt.Errorf("watermarks: %w", err)
	}
	defer rows.Close()
	marks := make(map[string]int64)
	for rows.Next() {
		var sub string
		var seq int64
		if err := rows.Scan(&sub, &seq); err != nil {
			return nil, err
		}
		marks[sub] = seq
	}
	return marks, rows.Err()
}

// ReadSummary answers how many active members a conversation has and the transaction
// user's own watermark: what a page needs of a conversation too large to list them all.
func (tx *Tx) ReadSummary(ctx context.Context, convID int64) (members, mine int64, err error) {
	err = tx.tx.QueryRowContext(ctx,
		`SELECT (SELECT count(*) FROM conversation_participants WHERE conversation_id = $1 AND left_at IS NULL),
		        coalesce((SELECT last_read_seq FROM read_receipts WHERE conversation_id = $1 AND user_id = $2), 0)`,
		convID, tx.id.UserID).Scan(&members, &mine)
	if err != nil {
		return 0, 0, fmt.Errorf("read summary: %w", err)
	}
	return members, mine, nil
}
