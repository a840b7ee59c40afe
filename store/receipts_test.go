package store_test

import (
	"context"
	"sync"
	"testing"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

// TestWatermarkNeverGoesDown: two tabs mark read concurrently, in any order; the stored
// watermark ends at the highest seq any of them saw and never moved down on the way.
func TestWatermarkNeverGoesDown(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	a := storetest.MustSignIn(t, db, "wa", "김하늘", "org-w", "", messenger.RoleStudent)
	b := storetest.MustSignIn(t, db, "wb", "이바다", "org-w", "", messenger.RoleStudent)
	var convID int64
	err := db.InTx(ctx, a.Identity(), func(tx *store.Tx) error {
		var err error
		if convID, _, err = tx.DirectConversation(ctx, b.ID); err != nil {
			return err
		}
		for i := 0; i < 100; i++ {
			if _, err := tx.InsertMessage(ctx, convID, store.NewMessage{Kind: messenger.MessageText, Body: "안녕"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	var lowered []string
	for tab := 0; tab < 2; tab++ {
		wg.Add(1)
		go func(tab int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				seq := int64(1 + (i*37+tab*53)%100) // both tabs mark in a scrambled order
				err := db.InTx(ctx, b.Identity(), func(tx *store.Tx) error {
					before, after, err := tx.MarkRead(ctx, convID, seq)
					if err == nil && (after < before || after < seq) {
						mu.Lock()
						lowered = append(lowered, "mark")
						mu.Unlock()
					}
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}(tab)
	}
	wg.Wait()
	if len(lowered) > 0 {
		t.Errorf("%d marks saw the watermark go down or stay below the mark", len(lowered))
	}
	var marks map[string]int64
	db.InTx(ctx, b.Identity(), func(tx *store.Tx) error {
		marks, err = tx.Watermarks(ctx, convID)
		return err
	})
	if marks["wb"] != 100 {
		t.Errorf("watermark = %d, want 100 (the highest marked)", marks["wb"])
	}
	// A mark beyond the last message is capped; a lower one changes nothing.
	db.InTx(ctx, b.Identity(), func(tx *store.Tx) error {
		before, after, err := tx.MarkRead(ctx, convID, 5)
		if err != nil || before != 100 || after != 100 {
			t.Errorf("lower mark: %d → %d, %v; want 100 → 100", before, after, err)
		}
		_, after, err = tx.MarkRead(ctx, convID, 1000)
		if err != nil || after != 100 {
			t.Errorf("mark beyond the end: after %d, %v; want 100", after, err)
		}
		return nil
	})
}
