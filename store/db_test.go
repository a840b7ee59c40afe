package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

// TestRetryWaitEndsWithTheContext: a transaction that met a transient failure waits before
// its retry; when the caller's context ends meanwhile, the wait ends at once with the
// context's error and nothing is tried again.
func TestRetryWaitEndsWithTheContext(t *testing.T) {
	t.Parallel()
	db, _ := storetest.NewDB(t)
	store.SetRetryBase(db, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	failed := make(chan struct{}, store.MaxAttempts)
	done := make(chan error, 1)
	go func() {
		_, err := db.InTxAttempts(ctx, messenger.Identity{}, store.MaxAttempts, func(*store.Tx) error {
			failed <- struct{}{}
			return &pq.Error{Code: "40001"} // a serialization failure: worth a retry
		})
		done <- err
	}()
	<-failed
	time.Sleep(50 * time.Millisecond) // the first try rolled back; the hour's wait has begun
	cancel()
	cancelled := time.Now()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("InTxAttempts = %v, want context.Canceled", err)
		}
		if took := time.Since(cancelled); took > time.Second {
			t.Errorf("the wait ended %v after the cancel", took)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the retry's wait outlived its context by 5 s")
	}
	if n := len(failed); n != 0 {
		t.Errorf("%d more tries after the cancel", n)
	}
}
