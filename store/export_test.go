package store

import "time"

// SetRetryBase makes db wait d before its first retry of a transaction (n² d before the
// n-th), so a test can catch it waiting.
func SetRetryBase(db *DB, d time.Duration) { db.retryBase = d }
