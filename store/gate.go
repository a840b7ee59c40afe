package store

import (
	"context"
	"fmt"

	"github.com/dreamseed/messenger"
)

// gate runs query, a gate function's call that answers whether it did its work: an error
// is wrapped with what, and false is ENOTFOUND worded by notFound (a words key).
func (tx *Tx) gate(ctx context.Context, what, notFound, query string, args ...any) error {
	var done bool
	if err := tx.tx.QueryRowContext(ctx, query, args...).Scan(&done); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !done {
		return messenger.Errorf(messenger.ENOTFOUND, notFound)
	}
	return nil
}
