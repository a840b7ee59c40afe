package store

import (
	"context"
	"time"
)

// SetRetryBase makes db wait d before its first retry of a transaction (n² d before the
// n-th), so a test can catch it waiting.
func SetRetryBase(db *DB, d time.Duration) { db.retryBase = d }

// ExecIn runs query in tx, for a test that needs a transaction to talk to PostgreSQL.
func ExecIn(ctx context.Context, tx *Tx, query string) error {
	_, err := tx.tx.ExecContext(ctx, query)
	return err
}
