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
		return id, "", messenger.Errorf(messenger.ENOTFOUND, "error.user.not_found")
	}
	if err != nil {
		return id, "", fmt.Errorf("push identity: %w", err)
	}
	return id, locale, nil
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

// PushUnread is what a push's recipient has unread: the total (the app badge) and the
// conversations that hold it, most recent first, at most 50.
type PushUnread struct {
	Total         int64
	Conversations []int64
}

// PushUnreadTotals answers each user's unread messages across their conversations (the
// app badge of a push) at most 1000 users at a time; a user with nothing unread is absent.
// Jobs only (app_push_unread_totals refuses inside a user's transaction).
func (tx *Tx) PushUnreadTotals(ctx context.Context, userIDs []int64) (map[int64]PushUnread, error) {
	rows, err := tx.tx.QueryContext(ctx, `SELECT user_id, unread, conversations FROM app_push_unread_totals($1)`, pq.Array(userIDs))
	if err != nil {
		return nil, fmt.Errorf("unread totals: %w", err)
	}
	defer rows.Close()
	out := make(map[int64]PushUnread, len(userIDs))
	for rows.Next() {
		var id int64
		var u PushUnread
		if err := rows.Scan(&id, &u.Total, (*pq.Int64Array)(&u.Conversations)); err != nil {
			return nil, err
		}
		out[id] = u
	}
	return out, rows.Err()
}

// PushSubscriptionCount answers how many subscriptions are stored, across organizations.
func (tx *Tx) PushSubscriptionCount(ctx context.Context) (int64, error) {
	var n int64
	err := tx.tx.QueryRowContext(ctx, `SELECT app_push_subscription_count()`).Scan(&n)
	return n, err
}

// PushMarks answers the newest seq already pushed to each member of a conversation who
// has had a push there (app_push_marks): jobs only.
func (tx *Tx) PushMarks(ctx context.Context, convID int64) (map[int64]int64, error) {
	rows, err := tx.tx.QueryContext(ctx, `SELECT user_id, seq FROM app_push_marks($1)`, convID)
	if err != nil {
		return nil, fmt.Errorf("push marks: %w", err)
	}
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var id, seq int64
		if err := rows.Scan(&id, &seq); err != nil {
			return nil, err
		}
		out[id] = seq
	}
	return out, rows.Err()
}

// PushSweep answers, for each conversation with a message since since, the members who
// might get a push if they are away (app_push_sweep): jobs only. A conversation none of
// whose members might is not in it.
func (tx *Tx) PushSweep(ctx context.Context, since time.Time) (map[int64][]int64, error) {
	rows, err := tx.tx.QueryContext(ctx, `SELECT conversation_id, user_id FROM app_push_sweep($1)`, since)
	if err != nil {
		return nil, fmt.Errorf("push sweep: %w", err)
	}
	defer rows.Close()
	out := map[int64][]int64{}
	for rows.Next() {
		var conv, user int64
		if err := rows.Scan(&conv, &user); err != nil {
			return nil, err
		}
		out[conv] = append(out[conv], user)
	}
	return out, rows.Err()
}

// PushClaim moves each user's mark in the conversation forward to the seq a job is about to
// push them and answers the users whose mark it moved (app_push_claim, at most 1000 users at
// once): only those may be pushed; another job claimed the rest. Jobs only.
func (tx *Tx) PushClaim(ctx context.Context, convID int64, userIDs, seqs []int64) (map[int64]bool, error) {
	out := map[int64]bool{}
	for len(userIDs) > 0 {
		n := min(len(userIDs), 1000)
		rows, err := tx.tx.QueryContext(ctx, `SELECT app_push_claim($1, $2, $3)`, convID,
			pq.Array(userIDs[:n]), pq.Array(seqs[:n]))
		if err != nil {
			return nil, fmt.Errorf("push claim: %w", err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			out[id] = true
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("push claim: %w", err)
		}
		userIDs, seqs = userIDs[n:], seqs[n:]
	}
	return out, nil
}
