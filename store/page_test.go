package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

// TestMessagePage: a history page read in one statement answers what the page's separate
// reads answer (MessagesBefore, MessagesAfter: the messages, their runs and read counts,
// whether more lie beyond) at every position and size, in both directions, for any
// member; and not found to anyone who is not an active member, however the question is put.
func TestMessagePage(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	teacher := storetest.MustSignIn(t, db, "pg-t", "김선생", "org-pg", "", messenger.RoleTeacher)
	var members []messenger.User
	var ids []int64
	for _, sub := range []string{"pg-1", "pg-2", "pg-3", "pg-4"} {
		u := storetest.MustSignIn(t, db, sub, "학부모 "+sub, "org-pg", "", messenger.RoleParent)
		members, ids = append(members, u), append(ids, u.ID)
	}
	outsider := storetest.MustSignIn(t, db, "pg-x", "밖의 사람", "org-pg", "", messenger.RoleParent)
	stranger := storetest.MustSignIn(t, db, "pg-s", "다른 학교", "org-other", "", messenger.RoleTeacher)
	var conv int64
	err := db.InTx(ctx, teacher.Identity(), func(tx *store.Tx) error {
		var err error
		conv, err = tx.CreateGroup(ctx, "한 문장", ids)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// 23 messages in runs of several senders; watermarks at several places.
	for i, u := range []messenger.User{teacher, teacher, teacher, members[0], members[0], teacher, members[1],
		members[1], members[1], members[1], teacher, members[2], teacher, teacher, members[0], members[0],
		members[0], teacher, teacher, members[1], teacher, teacher, members[3]} {
		err := db.InTx(ctx, u.Identity(), func(tx *store.Tx) error {
			_, err := tx.InsertMessage(ctx, conv, store.NewMessage{Kind: messenger.MessageText, Body: fmt.Sprint("메시지 ", i+1)})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for u, seq := range map[int]int64{0: 12, 1: 20, 2: 14} {
		err := db.InTx(ctx, members[u].Identity(), func(tx *store.Tx) error {
			_, _, err := tx.MarkRead(ctx, conv, seq)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	show := func(msgs []messenger.Message) string {
		var s string
		for _, m := range msgs {
			s += fmt.Sprintf("[%d %s %q read %d joins %v] ", m.Seq, m.Sender.Sub, m.Body, m.ReadCount, m.JoinsPrevious)
		}
		return s
	}
	compared := 0
	for _, reader := range []messenger.User{teacher, members[3]} {
		err := db.InTx(ctx, reader.Identity(), func(tx *store.Tx) error {
			// MessagePage against the separate reads it replaced, the one more message
			// asked of them telling whether more lie beyond.
			check := func(after bool, at int64, limit int) error {
				got, more, err := tx.MessagePage(ctx, conv, after, at, limit)
				if err != nil {
					return err
				}
				var want []messenger.Message
				if after {
					want, err = tx.MessagesAfter(ctx, conv, at, limit+1)
				} else {
					want, err = tx.MessagesBefore(ctx, conv, at, limit+1)
				}
				if err != nil {
					return err
				}
				wantMore := len(want) > limit
				if wantMore {
					want = want[:limit]
				}
				if show(got) != show(want) || more != wantMore {
					t.Errorf("as %s, %d from %d (after %v): %s more %v\nwant %s more %v", reader.Sub, limit, at, after, show(got), more, show(want), wantMore)
				}
				compared++
				return nil
			}
			for _, limit := range []int{1, 2, 5, 22, 23, 50} {
				for _, before := range []int64{0, 1, 2, 3, 7, 13, 22, 23, 24, 100} {
					if err := check(false, before, limit); err != nil {
						return err
					}
				}
				for _, after := range []int64{0, 1, 2, 5, 12, 21, 22, 23, 30} {
					if err := check(true, after, limit); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if compared == 0 {
		t.Fatal("nothing compared")
	}
	// The read counts, worked out by hand: seq 12 (member 2's, whose own watermark is no
	// reader) read by the teacher and member 3 (who wrote 22 and 23 since), member 0 (17:
	// wrote 15-17) and member 1 (read up to 20).
	err = db.InTx(ctx, teacher.Identity(), func(tx *store.Tx) error {
		page, _, err := tx.MessagePage(ctx, conv, true, 11, 1)
		if err != nil {
			return err
		}
		if len(page) != 1 || page[0].Seq != 12 || page[0].ReadCount != 4 {
			t.Errorf("seq 12: %s, want read by 4", show(page))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Member 2 leaves: from then on, like anyone not a member and anyone of another school,
	// they get not found, in either direction, not an empty page.
	err = db.InTx(ctx, members[2].Identity(), func(tx *store.Tx) error { return tx.Leave(ctx, conv) })
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []messenger.User{members[2], outsider, stranger} {
		for _, after := range []bool{false, true} {
			err := db.InTx(ctx, u.Identity(), func(tx *store.Tx) error {
				msgs, _, err := tx.MessagePage(ctx, conv, after, 0, 50)
				if len(msgs) != 0 {
					t.Errorf("%s read %d messages", u.Sub, len(msgs))
				}
				return err
			})
			if messenger.ErrorCode(err) != messenger.ENOTFOUND {
				t.Errorf("%s (after %v): %v, want not found", u.Sub, after, err)
			}
		}
	}
	// An empty conversation is an empty page for its members.
	var empty int64
	err = db.InTx(ctx, teacher.Identity(), func(tx *store.Tx) error {
		var err error
		if empty, err = tx.CreateGroup(ctx, "빈 방", ids[:1]); err != nil {
			return err
		}
		for _, after := range []bool{false, true} {
			msgs, more, err := tx.MessagePage(ctx, empty, after, 0, 50)
			if err != nil || len(msgs) != 0 || more {
				t.Errorf("an empty conversation (after %v): %d messages, more %v, %v", after, len(msgs), more, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
