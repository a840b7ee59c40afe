package store

import (
	"context"

	"github.com/dreamseed/messenger"
)

// InTxValue runs fn as db.InTx does (retries included) and answers what its last run
// answered: for a piece of work that reads or writes one value.
func InTxValue[T any](ctx context.Context, db *DB, id messenger.Identity, fn func(*Tx) (T, error)) (T, error) {
	var v T
	err := db.InTx(ctx, id, func(tx *Tx) error {
		var err error
		v, err = fn(tx)
		return err
	})
	return v, err
}
