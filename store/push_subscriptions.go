package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/dreamseed/messenger"
)

// CreatePushTicket stores a one-time ticket of the transaction's user under the SHA-256 of
// its token, live for ttl from the database's clock (which refuses more than 5 minutes).
func (tx *Tx) CreatePushTicket(ctx context.Context, tokenHash []byte, ttl time.Duration) error {
	_, err := tx.tx.ExecContext(ctx,
		`INSERT INTO push_tickets (token_hash, user_id, org_id, expires_at)
		 VALUES ($1, $2, $3, now() + make_interval(secs => $4))`,
		tokenHash, tx.id.UserID, tx.id.OrgID, ttl.Seconds())
	if err != nil {
		return fmt.Errorf("create push ticket: %w", err)
	}
	return nil
}

// RedeemPushTicket uses the live, unused ticket with this hash and answers its user. It
// runs outside any user's transaction (the gate refuses one): the request has no other
// credential. A forged, used or expired ticket is unauthorized.
func (db *DB) RedeemPushTicket(ctx context.Context, tokenHash []byte) (messenger.Identity, error) {
	var id messenger.Identity
	var zone sql.NullInt64
	err := db.db.QueryRowContext(ctx,
		`SELECT user_id, org_id, zone_id FROM app_redeem_push_ticket($1)`, tokenHash,
	).Scan(&id.UserID, &id.OrgID, &zone)
	if errors.Is(err, sql.ErrNoRows) {
		return id, messenger.Errorf(messenger.EUNAUTHORIZED, "error.ticket.expired")
	}
	if err != nil {
		return id, fmt.Errorf("redeem push ticket: %w", err)
	}
	id.ZoneID = zone.Int64
	return id, nil
}

// SavePushSubscription stores a subscription of the transaction's user under id (a new
// random uuid) and answers the row's id: an endpoint stored already keeps its id and moves
// to this user with the new keys.
func (tx *Tx) SavePushSubscription(ctx context.Context, id, endpoint, p256dh, auth, browser string) (string, error) {
	var saved string
	err := tx.tx.QueryRowContext(ctx,
		`SELECT app_save_push_subscription($1, $2, $3, $4, $5)`, id, endpoint, p256dh, auth, browser,
	).Scan(&saved)
	if err != nil {
		return "", fmt.Errorf("save push subscription: %w", err)
	}
	return saved, nil
}

// KeepNewestPushDevices deletes the transaction's user's subscriptions but the newest n.
func (tx *Tx) KeepNewestPushDevices(ctx context.Context, n int) error {
	_, err := tx.tx.ExecContext(ctx,
		`DELETE FROM push_subscriptions WHERE user_id = $1 AND id NOT IN
		   (SELECT id FROM push_subscriptions WHERE user_id = $1 ORDER BY created_at DESC, id LIMIT $2)`,
		tx.id.UserID, n)
	if err != nil {
		return fmt.Errorf("keep newest push devices: %w", err)
	}
	return nil
}

// PushDevices answers the transaction's user's subscriptions, the newest first.
func (tx *Tx) PushDevices(ctx context.Context) ([]messenger.PushDevice, error) {
	rows, err := tx.tx.QueryContext(ctx,
		`SELECT id, endpoint, browser, created_at, last_used_at FROM push_subscriptions
		  WHERE user_id = $1 ORDER BY created_at DESC, id LIMIT 100`, tx.id.UserID)
	if err != nil {
		return nil, fmt.Errorf("push devices: %w", err)
	}
	defer rows.Close()
	var out []messenger.PushDevice
	for rows.Next() {
		var d messenger.PushDevice
		if err := rows.Scan(&d.ID, &d.Endpoint, &d.Browser, &d.CreatedAt, &d.LastUsedAt); err != nil {
			return nil, fmt.Errorf("push devices: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// DeletePushSubscription removes one of the transaction's user's subscriptions; another
// user's (or none) is not found.
func (tx *Tx) DeletePushSubscription(ctx context.Context, id string) error {
	res, err := tx.tx.ExecContext(ctx,
		`DELETE FROM push_subscriptions WHERE id = $1 AND user_id = $2`, id, tx.id.UserID)
	if err != nil {
		return fmt.Errorf("delete push subscription: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return messenger.Errorf(messenger.ENOTFOUND, "error.device.not_found")
	}
	return nil
}
