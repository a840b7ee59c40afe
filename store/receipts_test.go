package store_test

import (
	"context"
	"slices"
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

// TestMessagesKnowTheirRun: every message read or sent says whether it continues the run
// of the one before it, even the first of a batch (the gate answers the conversation's
// last message before it) and the first of a page or fragment (its neighbour outside it).
func TestMessagesKnowTheirRun(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	var users []messenger.User
	for _, name := range []string{"김하늘", "이바다", "박구름"} {
		users = append(users, storetest.MustSignIn(t, db, "r-"+name, name, "org-r", "", messenger.RoleStudent))
	}
	a, b, c := users[0], users[1], users[2]
	var conv, empty int64
	err := db.InTx(ctx, a.Identity(), func(tx *store.Tx) error {
		var err error
		if conv, _, err = tx.DirectConversation(ctx, b.ID); err != nil {
			return err
		}
		if empty, _, err = tx.DirectConversation(ctx, c.ID); err != nil {
			return err
		}
		_, err = tx.InsertMessage(ctx, conv, store.NewMessage{Kind: messenger.MessageText, Body: "첫째"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	send := func(u messenger.User, body string) store.BatchSend {
		return store.BatchSend{Sender: u.Identity(), Body: body}
	}
	var results [][]store.BatchSent
	err = db.InTx(ctx, messenger.Identity{}, func(tx *store.Tx) error {
		var err error
		results, err = tx.InsertMessages(ctx, []store.SendGroup{
			{ConvID: conv, Sends: []store.BatchSend{send(a, "둘째"), send(a, "셋째"), send(b, "넷째"), send(b, "다섯째")}},
			{ConvID: empty, Sends: []store.BatchSend{send(c, "처음")}},
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	joins := func(msgs []messenger.Message) []bool {
		out := make([]bool, len(msgs))
		for i, m := range msgs {
			out[i] = m.JoinsPrevious
		}
		return out
	}
	var sent []messenger.Message
	for _, g := range results {
		for _, r := range g {
			if r.Err != nil || !r.Created {
				t.Fatalf("send: %+v", r)
			}
			sent = append(sent, r.Message)
		}
	}
	// 둘째 joins 첫째 (stored before the batch), 셋째 joins 둘째, 넷째 is someone else's,
	// 다섯째 joins 넷째; 처음 is its conversation's first message.
	want := []bool{true, true, false, true, false}
	if got := joins(sent); !slices.Equal(got, want) {
		t.Errorf("sent: joins %v, want %v", got, want)
	}
	err = db.InTx(ctx, b.Identity(), func(tx *store.Tx) error {
		after, err := tx.MessagesAfter(ctx, conv, 1, 10) // a catch-up from 둘째 on
		if err != nil {
			return err
		}
		if got := joins(after); !slices.Equal(got, want[:4]) {
			t.Errorf("after seq 1: joins %v, want %v", got, want[:4])
		}
		before, err := tx.MessagesBefore(ctx, conv, 5, 2) // 넷째, 셋째: newest first
		if err != nil {
			return err
		}
		if got := joins(before); !slices.Equal(got, []bool{false, true}) {
			t.Errorf("before seq 5: joins %v, want [false true]", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// The caller's Last stands for the message before when it is the one just before (here
	// it says someone else sent 다섯째, so b's next message starts a run), and is read past
	// when it is not (a Last of seq 1 is not the message before seq 6's).
	fifth := sent[3]
	next := func(last messenger.Message, body string) bool {
		t.Helper()
		var res [][]store.BatchSent
		err := db.InTx(ctx, messenger.Identity{}, func(tx *store.Tx) error {
			var err error
			res, err = tx.InsertMessages(ctx, []store.SendGroup{{ConvID: conv, Last: &last, Sends: []store.BatchSend{send(b, body)}}})
			return err
		})
		if err != nil || res[0][0].Err != nil || !res[0][0].Created {
			t.Fatalf("send %s: %v %+v", body, err, res)
		}
		return res[0][0].Message.JoinsPrevious
	}
	told := fifth
	told.Sender.ID = c.ID
	if next(told, "여섯째") {
		t.Errorf("여섯째 joins, want a new run: the Last given says someone else sent the message before")
	}
	stale := sent[0]
	if !next(stale, "일곱째") {
		t.Errorf("일곱째 starts a run, want it to join 여섯째, read past a Last that is not the message before")
	}
}
