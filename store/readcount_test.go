package store_test

import (
	"context"
	"testing"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

// TestReadCounts: each message of a page, a catch-up and the list's preview counts the
// members other than its sender whose watermark reached it, whoever sent it.
func TestReadCounts(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	teacher := storetest.MustSignIn(t, db, "rc-t", "김선생", "org-rc", "", messenger.RoleTeacher)
	var members []messenger.User
	var ids []int64
	for _, sub := range []string{"rc-1", "rc-2", "rc-3", "rc-4"} {
		u := storetest.MustSignIn(t, db, sub, "학부모 "+sub, "org-rc", "", messenger.RoleParent)
		members, ids = append(members, u), append(ids, u.ID)
	}
	var conv int64
	err := db.InTx(ctx, teacher.Identity(), func(tx *store.Tx) error {
		var err error
		conv, err = tx.CreateGroup(ctx, "읽음 확인", ids)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Ten messages: the teacher sends 1-5, member 0 sends 6-7 (its watermark goes to 7),
	// the teacher 8-10 (the teacher's watermark: 10).
	send := func(u messenger.User, n int) {
		t.Helper()
		err := db.InTx(ctx, u.Identity(), func(tx *store.Tx) error {
			for range n {
				if _, err := tx.InsertMessage(ctx, conv, store.NewMessage{Kind: messenger.MessageText, Body: "안녕"}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	send(teacher, 5)
	send(members[0], 2)
	send(teacher, 3)
	// Members 1 and 2 read up to 3 and 9; member 3 never opens it.
	for i, seq := range map[int]int64{1: 3, 2: 9} {
		err := db.InTx(ctx, members[i].Identity(), func(tx *store.Tx) error {
			_, _, err := tx.MarkRead(ctx, conv, seq)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	marks := map[int64]int64{teacher.ID: 10, members[0].ID: 7, members[1].ID: 3, members[2].ID: 9}
	want := func(seq int64) int64 {
		sender := teacher.ID
		if seq == 6 || seq == 7 {
			sender = members[0].ID
		}
		var n int64
		for u, m := range marks {
			if u != sender && m >= seq {
				n++
			}
		}
		return n
	}
	check := func(what string, msgs []messenger.Message, count int) {
		t.Helper()
		if len(msgs) != count {
			t.Fatalf("%s: %d messages, want %d", what, len(msgs), count)
		}
		for _, m := range msgs {
			if m.ReadCount != want(m.Seq) {
				t.Errorf("%s: seq %d read by %d, want %d", what, m.Seq, m.ReadCount, want(m.Seq))
			}
		}
	}
	// Every reader sees the same counts.
	for _, u := range []messenger.User{teacher, members[3]} {
		err := db.InTx(ctx, u.Identity(), func(tx *store.Tx) error {
			page, err := tx.MessagesBefore(ctx, conv, 0, 50)
			if err != nil {
				return err
			}
			check("newest page", page, 10)
			older, err := tx.MessagesBefore(ctx, conv, 7, 3)
			if err != nil {
				return err
			}
			check("page before 7", older, 3)
			after, err := tx.MessagesAfter(ctx, conv, 5, 50)
			if err != nil {
				return err
			}
			check("after 5", after, 5)
			c, err := tx.Conversation(ctx, conv)
			if err != nil {
				return err
			}
			if c.LastMessage == nil {
				t.Fatal("no last message")
			}
			check("the preview", []messenger.Message{*c.LastMessage}, 1)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if want(1) != 3 || want(6) != 2 || want(10) != 0 {
		t.Fatalf("the test's own counts are wrong: %d %d %d", want(1), want(6), want(10))
	}
}
