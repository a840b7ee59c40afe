package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/lib/pq"

	"github.com/dreamseed/messenger"
)

const messageColumns = `m.id, m.conversation_id, m.seq, m.kind, m.body, m.client_msg_id, m.created_at,
	(SELECT count(*) FROM read_receipts r
	  WHERE r.conversation_id = m.conversation_id AND r.last_read_seq >= m.seq
	    AND r.user_id IS DISTINCT FROM m.sender_id),
	coalesce(u.id, 0), coalesce(u.sub, ''), coalesce(u.name, ''), coalesce(u.role, '')`

// queryMessages runs a message query whose FROM is "messages m LEFT JOIN users u" and whose
// remaining clauses are where.
func (tx *Tx) queryMessages(ctx context.Context, where string, args ...any) ([]messenger.Message, error) {
	rows, err := tx.tx.QueryContext(ctx,
		`SELECT `+messageColumns+` FROM messages m LEFT JOIN users u ON u.id = m.sender_id `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var msgs []messenger.Message
	for rows.Next() {
		var m messenger.Message
		var clientID sql.NullString
		if err := rows.Scan(&m.ID, &m.ConversationID, &m.Seq, &m.Kind, &m.Body, &clientID, &m.CreatedAt,
			&m.ReadCount, &m.Sender.ID, &m.Sender.Sub, &m.Sender.Name, &m.Sender.Role); err != nil {
			return nil, err
		}
		if clientID.Valid {
			s := clientID.String
			m.ClientMsgID = &s
		}
		msgs = append(msgs, m)
	}
	return msgs, rows.Err()
}

// MessagesBefore answers up to limit messages of a conversation with seq below beforeSeq
// (0: from the newest), newest first. The caller checks membership first.
func (tx *Tx) MessagesBefore(ctx context.Context, convID, beforeSeq int64, limit int) ([]messenger.Message, error) {
	if beforeSeq <= 0 {
		beforeSeq = 1<<63 - 1
	}
	msgs, err := tx.queryMessages(ctx,
		`WHERE m.conversation_id = $1 AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3`, convID, beforeSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("messages before: %w", err)
	}
	return msgs, nil
}

// MessagesAfter answers up to limit messages of a conversation with seq above afterSeq,
// oldest first: what a client that has seen afterSeq is missing.
func (tx *Tx) MessagesAfter(ctx context.Context, convID, afterSeq int64, limit int) ([]messenger.Message, error) {
	msgs, err := tx.queryMessages(ctx,
		`WHERE m.conversation_id = $1 AND m.seq > $2 ORDER BY m.seq ASC LIMIT $3`, convID, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("messages after: %w", err)
	}
	return msgs, nil
}

// InsertMessage stores a message of the transaction's user in a conversation they are an
// active member of, under the next seq, and raises their own read watermark to it. It locks
// the conversation row, so concurrent senders get consecutive seqs in commit order. A
// clientMsgID this user already sent answers the stored message with created false.
func (tx *Tx) InsertMessage(ctx context.Context, convID int64, kind, body string, clientMsgID *string) (m messenger.Message, created bool, err error) {
	if clientMsgID != nil {
		if m, err := tx.messageByClientID(ctx, *clientMsgID); err == nil {
			if m.ConversationID != convID {
				return m, false, messenger.Errorf(messenger.ECONFLICT, "This client_msg_id was used for another conversation.")
			}
			return m, false, nil
		} else if messenger.ErrorCode(err) != messenger.ENOTFOUND {
			return m, false, err
		}
	}

	var member bool
	if err := tx.tx.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM conversation_participants
		                 WHERE conversation_id = $1 AND user_id = $2 AND left_at IS NULL)`,
		convID, tx.id.UserID).Scan(&member); err != nil {
		return m, false, err
	}
	if !member {
		return m, false, messenger.Errorf(messenger.ENOTFOUND, "Conversation not found.")
	}

	var seq int64
	if err := tx.tx.QueryRowContext(ctx,
		`UPDATE conversations SET last_seq = last_seq + 1, last_message_at = now(), updated_at = now()
		  WHERE id = $1 RETURNING last_seq`, convID).Scan(&seq); err != nil {
		return m, false, notFound(err, "Conversation")
	}
	var id int64
	err = tx.tx.QueryRowContext(ctx,
		`INSERT INTO messages (conversation_id, org_id, seq, sender_id, client_msg_id, kind, body)
		 VALUES ($1, $2, $3, $4, $5, $6, $7)
		 ON CONFLICT (sender_id, client_msg_id) DO NOTHING
		 RETURNING id`,
		convID, tx.id.OrgID, seq, tx.id.UserID, clientMsgID, kind, body).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		// A concurrent request with the same client_msg_id committed first; retrying the
		// transaction finds its message.
		return m, false, &pq.Error{Code: "40001", Message: "duplicate client_msg_id raced"}
	}
	if err != nil {
		return m, false, fmt.Errorf("insert message: %w", err)
	}
	if _, err := tx.tx.ExecContext(ctx,
		`INSERT INTO read_receipts (conversation_id, user_id, org_id, last_read_seq)
		 VALUES ($1, $2, $3, $4)
		 ON CONFLICT (conversation_id, user_id)
		 DO UPDATE SET last_read_seq = GREATEST(read_receipts.last_read_seq, EXCLUDED.last_read_seq), read_at = now()`,
		convID, tx.id.UserID, tx.id.OrgID, seq); err != nil {
		return m, false, fmt.Errorf("raise read watermark: %w", err)
	}
	msgs, err := tx.queryMessages(ctx, `WHERE m.id = $1`, id)
	if err != nil || len(msgs) != 1 {
		return m, false, fmt.Errorf("load new message: %w", err)
	}
	return msgs[0], true, nil
}

func (tx *Tx) messageByClientID(ctx context.Context, clientMsgID string) (messenger.Message, error) {
	msgs, err := tx.queryMessages(ctx, `WHERE m.sender_id = $1 AND m.client_msg_id = $2`, tx.id.UserID, clientMsgID)
	if err != nil {
		return messenger.Message{}, err
	}
	if len(msgs) == 0 {
		return messenger.Message{}, messenger.Errorf(messenger.ENOTFOUND, "Message not found.")
	}
	return msgs[0], nil
}

func asPQ(err error, target **pq.Error) bool { return errors.As(err, target) }
