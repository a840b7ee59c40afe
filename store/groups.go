package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lib/pq"

	"github.com/dreamseed/messenger"
)

// AddMembers makes users active members of a conversation: new ones join, ones who had
// left rejoin. It answers those who were not active members before, in the order given.
// A member joins with nothing unread; the history is theirs to scroll.
func (tx *Tx) AddMembers(ctx context.Context, convID int64, userIDs []int64) ([]int64, error) {
	rows, err := tx.tx.QueryContext(ctx,
		`WITH want AS (
		     SELECT u.id, u.ord FROM unnest($2::bigint[]) WITH ORDINALITY AS u (id, ord)
		 ), joined AS (
		     INSERT INTO conversation_participants AS p (conversation_id, user_id, org_id, role)
		     SELECT $1, want.id, $3, 'member' FROM want
		     ON CONFLICT (conversation_id, user_id) DO UPDATE
		         SET left_at = NULL, joined_at = now(), role = 'member'
		         WHERE p.left_at IS NOT NULL
		     RETURNING p.user_id
		 )
		 SELECT want.id FROM want JOIN joined ON joined.user_id = want.id ORDER BY want.ord`,
		convID, pq.Array(userIDs), tx.id.OrgID)
	if err != nil {
		var pqErr *pq.Error
		if asPQ(err, &pqErr) && pqErr.Code == "23503" {
			return nil, messenger.Errorf(messenger.EINVALID, "User not found.")
		}
		return nil, fmt.Errorf("add members: %w", err)
	}
	added, err := scanIDs(rows)
	if err != nil || len(added) == 0 {
		return added, err
	}
	// Their receipts are theirs: row-level security lets only the gate raise them.
	if _, err := tx.tx.ExecContext(ctx, `SELECT app_mark_joined($1, $2)`, convID, pq.Array(added)); err != nil {
		return nil, fmt.Errorf("mark joined: %w", err)
	}
	return added, nil
}

// RemoveMember ends the active membership of userID.
func (tx *Tx) RemoveMember(ctx context.Context, convID, userID int64) error {
	res, err := tx.tx.ExecContext(ctx,
		`UPDATE conversation_participants SET left_at = now()
		  WHERE conversation_id = $1 AND user_id = $2 AND left_at IS NULL`, convID, userID)
	if err != nil {
		return fmt.Errorf("remove member: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return messenger.Errorf(messenger.ENOTFOUND, "This person is not a member.")
	}
	return nil
}

// SetMemberRole makes an active member admin or member.
func (tx *Tx) SetMemberRole(ctx context.Context, convID, userID int64, role string) error {
	res, err := tx.tx.ExecContext(ctx,
		`UPDATE conversation_participants SET role = $3
		  WHERE conversation_id = $1 AND user_id = $2 AND left_at IS NULL`, convID, userID, role)
	if err != nil {
		return fmt.Errorf("set member role: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return messenger.Errorf(messenger.ENOTFOUND, "This person is not a member.")
	}
	return nil
}

// PassAdmin is called before leaving leaves a group: when no other active admin would be
// left, the longest-standing other member becomes admin. It answers who (0: nobody
// needed to).
func (tx *Tx) PassAdmin(ctx context.Context, convID, leaving int64) (int64, error) {
	var id int64
	err := tx.tx.QueryRowContext(ctx,
		`UPDATE conversation_participants SET role = 'admin'
		  WHERE conversation_id = $1 AND user_id = (
		        SELECT user_id FROM conversation_participants
		         WHERE conversation_id = $1 AND left_at IS NULL AND user_id <> $2
		         ORDER BY joined_at, user_id LIMIT 1)
		    AND NOT EXISTS (SELECT 1 FROM conversation_participants
		                     WHERE conversation_id = $1 AND left_at IS NULL AND role = 'admin' AND user_id <> $2)
		  RETURNING user_id`, convID, leaving).Scan(&id)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("pass admin: %w", err)
	}
	return id, nil
}

// LockConversation locks a conversation for a membership change until the transaction
// ends: first its members' rows, then its own row, the order a send takes them in too
// (its sender's membership, then the row that numbers the message), so the two never wait
// on each other in a circle. A send in flight finishes first; a send that comes later
// waits, then finds the membership as the change left it.
func (tx *Tx) LockConversation(ctx context.Context, convID int64) error {
	if _, err := tx.tx.ExecContext(ctx,
		`SELECT 1 FROM conversation_participants WHERE conversation_id = $1 FOR NO KEY UPDATE`, convID); err != nil {
		return fmt.Errorf("lock members: %w", err)
	}
	var id int64
	err := tx.tx.QueryRowContext(ctx, `SELECT id FROM conversations WHERE id = $1 FOR NO KEY UPDATE`, convID).Scan(&id)
	return notFound(err, "Conversation")
}

// ConversationKind answers the kind of a conversation the transaction's user sees.
func (tx *Tx) ConversationKind(ctx context.Context, convID int64) (string, error) {
	var kind string
	err := tx.tx.QueryRowContext(ctx, `SELECT kind FROM conversations WHERE id = $1`, convID).Scan(&kind)
	return kind, notFound(err, "Conversation")
}

// Rename gives a conversation a new title.
func (tx *Tx) Rename(ctx context.Context, convID int64, title string) error {
	res, err := tx.tx.ExecContext(ctx,
		`UPDATE conversations SET title = $2, updated_at = now() WHERE id = $1`, convID, title)
	if err != nil {
		return fmt.Errorf("rename: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return messenger.Errorf(messenger.ENOTFOUND, "Conversation not found.")
	}
	return nil
}

// Audit actions.
const (
	AuditCreated      = "conversation.created"
	AuditRenamed      = "conversation.renamed"
	AuditInvited      = "member.invited"
	AuditRemoved      = "member.removed"
	AuditLeft         = "member.left"
	AuditRoleChanged  = "member.role_changed"
	AuditAnnouncement = "announcement.posted"
	AuditZoneJoined   = "member.zone_joined" // a user of the zone joined its announcements (sign-in)
	AuditZoneLeft     = "member.zone_left"   // they moved to another zone
)

// AuditEntry is one line of the audit log: who did what to whom, when, from which request.
type AuditEntry struct {
	ID             int64
	ConversationID int64
	Actor          messenger.User // ids only when appending
	Action         string
	Target         *messenger.User // ids only when appending
	Details        map[string]any
	RequestID      string
	CreatedAt      time.Time
}

// Audit appends an entry, acted by the transaction's user. The log is append-only: the
// application's role may insert and read it, never change it.
func (tx *Tx) Audit(ctx context.Context, e AuditEntry) error {
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
func (tx *Tx) AuditLog(ctx context.Context, convID int64, limit int) ([]AuditEntry, error) {
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
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
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
