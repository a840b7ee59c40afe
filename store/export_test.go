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

// QueryRowIn runs query in tx and scans its one row into dest, for a test that reads what
// PostgreSQL says inside a transaction of the store.
func QueryRowIn(ctx context.Context, tx *Tx, query string, dest any, args ...any) error {
	return tx.tx.QueryRowContext(ctx, query, args...).Scan(dest)
}
