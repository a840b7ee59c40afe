package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/lib/pq"

	"github.com/dreamseed/messenger"
)

// The push job's side: it runs as nobody (DB.InTx with a zero Identity) through gates that
// refuse inside a user's transaction, and acts as each recipient for what only they may
// see (the message, their unread total).

// PushIdentity answers who a user is for a job acting as them, and their locale; not found
// for a user who moved away or does not exist (app_identity_of).
func (tx *Tx) PushIdentity(ctx context.Context, userID int64) (messenger.Identity, string, error) {
	id := messenger.Identity{UserID: userID}
	var locale string
	err := tx.tx.QueryRowContext(ctx, `SELECT org_id, zone_id, locale FROM app_identity_of($1)`, userID).
		Scan(&id.OrgID, &id.ZoneID, &locale)
	if errors.Is(err, sql.ErrNoRows) {
		return id, "", messenger.Errorf(messenger.ENOTFOUND, "User not found.")
	}
	if err != nil {
		return id, "", fmt.Errorf("push identity: %w", err)
	}
	return id, locale, nil
}

// NotifyMember is an active member of a conversation as deciding a push sees them.
type NotifyMember struct {
	UserID      int64
	Role        string
	Locale      string
	LastReadSeq int64
	Muted       bool     // muted_until is ahead ('infinity': until they turn it back on)
	Keywords    []string // NFC, lowercased
	Push        bool
	QuietCustom bool   // false: the role's default quiet hours apply
	QuietFrom   string // "HH:MM:SS", "" for none
	QuietTo     string
	TimeZone    string
}

// NotifyMembers answers each active member of a conversation with their read watermark,
// mute, keywords and settings (app_notify_members).
func (tx *Tx) NotifyMembers(ctx context.Context, convID int64) ([]NotifyMember, error) {
	rows, err := tx.tx.QueryContext(ctx,
		`SELECT user_id, role, locale, last_read_seq, coalesce(muted_until > now(), false), keywords, push, quiet_custom,
		        coalesce(quiet_from::text, ''), coalesce(quiet_to::text, ''), time_zone
		   FROM app_notify_members($1)`, convID)
	if err != nil {
		return nil, fmt.Errorf("notify members: %w", err)
	}
	defer rows.Close()
	var out []NotifyMember
	for rows.Next() {
		var m NotifyMember
		if err := rows.Scan(&m.UserID, &m.Role, &m.Locale, &m.LastReadSeq, &m.Muted, pq.Array(&m.Keywords),
			&m.Push, &m.QuietCustom, &m.QuietFrom, &m.QuietTo, &m.TimeZone); err != nil {
			return nil, fmt.Errorf("notify members: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// PushSubscription is a stored subscription of a user.
type PushSubscription struct {
	ID       string
	UserID   int64
	Endpoint string
	P256dh   string
	Auth     string
}

// PushSubscriptionsOf answers the subscriptions of the users (at most 1000 at once).
func (tx *Tx) PushSubscriptionsOf(ctx context.Context, userIDs []int64) ([]PushSubscription, error) {
	var out []PushSubscription
	for len(userIDs) > 0 {
		n := min(len(userIDs), 1000)
		rows, err := tx.tx.QueryContext(ctx, `SELECT id, user_id, endpoint, p256dh, auth FROM app_push_subscriptions_of($1)`,
			pq.Array(userIDs[:n]))
		if err != nil {
			return nil, fmt.Errorf("push subscriptions: %w", err)
		}
		for rows.Next() {
			var s PushSubscription
			if err := rows.Scan(&s.ID, &s.UserID, &s.Endpoint, &s.P256dh, &s.Auth); err != nil {
				rows.Close()
				return nil, fmt.Errorf("push subscriptions: %w", err)
			}
			out = append(out, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		userIDs = userIDs[n:]
	}
	return out, nil
}

// PushSubscriptionUsed records a subscription's last accepted push.
func (tx *Tx) PushSubscriptionUsed(ctx context.Context, id string) error {
	_, err := tx.tx.ExecContext(ctx, `SELECT app_push_subscription_used($1)`, id)
	return err
}

// PushSubscriptionGone deletes a subscription the push service said is gone.
func (tx *Tx) PushSubscriptionGone(ctx context.Context, id string) error {
	_, err := tx.tx.ExecContext(ctx, `SELECT app_push_subscription_gone($1)`, id)
	return err
}

// UnreadTotal answers the transaction's user's unread messages across their conversations
// (the app badge).
func (tx *Tx) UnreadTotal(ctx context.Context) (int64, error) {
	var n int64
	err := tx.tx.QueryRowContext(ctx,
		`SELECT coalesce(sum(c.last_seq - coalesce(r.last_read_seq, 0)), 0)::bigint
		   FROM conversation_participants p
		   JOIN conversations c ON c.id = p.conversation_id
		   LEFT JOIN read_receipts r ON r.conversation_id = p.conversation_id AND r.user_id = p.user_id
		  WHERE p.user_id = $1 AND p.left_at IS NULL AND c.last_seq > coalesce(r.last_read_seq, 0)`, tx.id.UserID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("unread total: %w", err)
	}
	return n, nil
}

// PushSubscriptionCount answers how many subscriptions are stored, across organizations.
func (tx *Tx) PushSubscriptionCount(ctx context.Context) (int64, error) {
	var n int64
	err := tx.tx.QueryRowContext(ctx, `SELECT app_push_subscription_count()`).Scan(&n)
	return n, err
}
