package store

import "github.com/dreamseed/messenger"

// first answers the first of rows a query for one row answered, or ENOTFOUND worded by
// notFound (a words key) when it answered none.
func first[T any](rows []T, err error, notFound string) (T, error) {
	var zero T
	if err != nil {
		return zero, err
	}
	if len(rows) == 0 {
		return zero, messenger.Errorf(messenger.ENOTFOUND, notFound)
	}
	return rows[0], nil
}
