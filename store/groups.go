package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/lib/pq"

	"github.com/dreamseed/messenger"
)

// AddMembers makes users active members of a conversation: new ones join, ones who had
// left rejoin. It answers those who were not active members before, in the order given.
// A member joins with nothing unread; the history is theirs to scroll. Members are added
// through the gate, which also makes their receipts: the application's role writes
// neither other users' memberships nor their receipts.
func (tx *Tx) AddMembers(ctx context.Context, convID int64, userIDs []int64) ([]int64, error) {
	rows, err := tx.tx.QueryContext(ctx, `SELECT app_invite($1, $2)`, convID, pq.Array(userIDs))
	if err != nil {
		var pqErr *pq.Error
		if asPQ(err, &pqErr) && pqErr.Code == "23503" {
			return nil, messenger.Errorf(messenger.EINVALID, "error.user.not_found")
		}
		return nil, fmt.Errorf("add members: %w", err)
	}
	added, err := scanIDs(rows)
	if err != nil {
		return nil, fmt.Errorf("add members: %w", err)
	}
	return added, nil
}

// RemoveMember ends the active membership of userID (the transaction's user is an admin).
func (tx *Tx) RemoveMember(ctx context.Context, convID, userID int64) error {
	return tx.gateChange(ctx, "remove member", `SELECT app_remove_member($1, $2)`, convID, userID)
}

// SetMemberRole makes an active member admin or member (the transaction's user is an admin).
func (tx *Tx) SetMemberRole(ctx context.Context, convID, userID int64, role string) error {
	return tx.gateChange(ctx, "set member role", `SELECT app_set_member_role($1, $2, $3)`, convID, userID, role)
}

// gateChange runs a gate function that answers whether it found the member it changes.
func (tx *Tx) gateChange(ctx context.Context, what, query string, args ...any) error {
	var found bool
	if err := tx.tx.QueryRowContext(ctx, query, args...).Scan(&found); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !found {
		return messenger.Errorf(messenger.ENOTFOUND, "error.member.not_found")
	}
	return nil
}

// PassAdmin is called before the transaction's user leaves a group: when no other active
// admin would be left, the longest-standing other member becomes admin. It answers who
// (0: nobody needed to).
func (tx *Tx) PassAdmin(ctx context.Context, convID int64) (int64, error) {
	var id sql.NullInt64
	if err := tx.tx.QueryRowContext(ctx, `SELECT app_pass_admin($1)`, convID).Scan(&id); err != nil {
		return 0, fmt.Errorf("pass admin: %w", err)
	}
	return id.Int64, nil
}

// LockConversation locks a conversation for a membership change until the transaction
// ends: first its members' rows, then its own row, the order a send takes them in too
// (its sender's membership, then the row that numbers the message), so the two never wait
// on each other in a circle. A send in flight finishes first; a send that comes later
// waits, then finds the membership as the change left it. The application's role may not
// lock other members' rows itself: the gate does it for an active member.
func (tx *Tx) LockConversation(ctx context.Context, convID int64) error {
	return tx.gate(ctx, "lock conversation", "error.conversation.not_found", `SELECT app_lock_conversation($1)`, convID)
}

// ConversationKind answers the kind of a conversation the transaction's user sees.
func (tx *Tx) ConversationKind(ctx context.Context, convID int64) (string, error) {
	var kind string
	err := tx.tx.QueryRowContext(ctx, `SELECT kind FROM conversations WHERE id = $1`, convID).Scan(&kind)
	return kind, notFound(err, "error.conversation.not_found")
}

// Rename gives a group a new title (the transaction's user is an admin).
func (tx *Tx) Rename(ctx context.Context, convID int64, title string) error {
	if _, err := tx.tx.ExecContext(ctx, `SELECT app_rename($1, $2)`, convID, title); err != nil {
		if titleRefused(err) {
			return messenger.Errorf(messenger.EINVALID, "error.title.control")
		}
		return fmt.Errorf("rename: %w", err)
	}
	return nil
}

// Audit appends an entry, acted by the transaction's user. The log is append-only: the
// application's role may insert and read it, never change it.
func (tx *Tx) Audit(ctx context.Context, e messenger.AuditEntry) error {
	details := e.Details
	if details == nil {
		details = map[string]any{}
	}
	raw, err := json.Marshal(details)
	if err != nil {
		return err
	}
	var target any
	if e.Target != nil {
		target = e.Target.ID
	}
	var conv any
	if e.ConversationID != 0 {
		conv = e.ConversationID
	}
	_, err = tx.tx.ExecContext(ctx,
		`INSERT INTO audit_log (org_id, conversation_id, actor_id, action, target_user_id, details, request_id)
		 VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		tx.id.OrgID, conv, tx.id.UserID, e.Action, target, string(raw), e.RequestID)
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}

// AuditLog answers up to limit entries of a conversation's log, newest first, with actor
// and target.
func (tx *Tx) AuditLog(ctx context.Context, convID int64, limit int) ([]messenger.AuditEntry, error) {
	rows, err := tx.tx.QueryContext(ctx,
		`SELECT a.id, coalesce(a.conversation_id, 0), a.action, a.details, a.request_id, a.created_at,
		        coalesce(actor.sub, ''), coalesce(actor.name, ''), coalesce(actor.role, ''),
		        target.sub, target.name, target.role
		   FROM audit_log a
		   LEFT JOIN users actor ON actor.id = a.actor_id
		   LEFT JOIN users target ON target.id = a.target_user_id
		  WHERE a.conversation_id = $1
		  ORDER BY a.created_at DESC, a.id DESC
		  LIMIT $2`, convID, limit)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	defer rows.Close()
	var out []messenger.AuditEntry
	for rows.Next() {
		var e messenger.AuditEntry
		var details []byte
		var tSub, tName, tRole sql.NullString
		if err := rows.Scan(&e.ID, &e.ConversationID, &e.Action, &details, &e.RequestID, &e.CreatedAt,
			&e.Actor.Sub, &e.Actor.Name, &e.Actor.Role, &tSub, &tName, &tRole); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(details, &e.Details); err != nil {
			return nil, fmt.Errorf("audit entry %d: %w", e.ID, err)
		}
		if tSub.Valid {
			e.Target = &messenger.User{Sub: tSub.String, Name: tName.String, Role: tRole.String}
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
