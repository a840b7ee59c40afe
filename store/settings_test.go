package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

// TestNotificationReads: what the push and digest jobs read, acting as nobody: each active
// member's watermark, mute (forever read back without lib/pq's infinity trouble), keywords
// and settings, defaults for those who never saved; digest candidates count unread above
// both the watermark and the digest's mark, leave muted conversations and email-off users
// out, and never repeat what a mark covered.
func TestNotificationReads(t *testing.T) {
	ctx := context.Background()
	db, d := storetest.NewDB(t)
	w := newWall(t, d)
	teacher := storetest.MustSignIn(t, db, "r1", "김민준", "org-a", "zone-a", messenger.RoleTeacher)
	parent := storetest.MustSignIn(t, db, "r2", "박지호", "org-a", "zone-a", messenger.RoleParent)
	student := storetest.MustSignIn(t, db, "r3", "이서연", "org-a", "zone-a", messenger.RoleStudent)
	// Addresses for the digest, and everyone away for two days.
	if _, err := w.owner.Exec(`UPDATE users SET email = sub || '@example.com', last_seen_at = now() - interval '2 days'`); err != nil {
		t.Fatal(err)
	}

	var group int64
	in := func(u messenger.User, fn func(tx *store.Tx) error) {
		t.Helper()
		if err := db.InTx(ctx, u.Identity(), fn); err != nil {
			t.Fatal(err)
		}
	}
	in(teacher, func(tx *store.Tx) (err error) {
		group, err = tx.CreateGroup(ctx, "5학년 2반", []int64{parent.ID, student.ID})
		return err
	})
	for i := 0; i < 6; i++ {
		in(teacher, func(tx *store.Tx) error {
			_, err := tx.InsertMessage(ctx, group, store.NewMessage{Kind: messenger.MessageText, Body: "알림 " + string(rune('A'+i))})
			return err
		})
	}
	in(parent, func(tx *store.Tx) error {
		if err := tx.SaveMemberSettings(ctx, group, store.MemberSettings{Mute: store.Mute{Forever: true}, Keywords: []string{"숙제"}}); err != nil {
			return err
		}
		_, _, err := tx.MarkRead(ctx, group, 2)
		return err
	})
	in(student, func(tx *store.Tx) error {
		return tx.SaveMySettings(ctx, store.UserSettings{Push: false, Email: true, QuietCustom: true, QuietFrom: "22:00", QuietTo: "07:00", TimeZone: "Asia/Tokyo"})
	})

	var members []store.MemberNotify
	in(messenger.User{}, func(tx *store.Tx) (err error) {
		members, err = tx.NotifyMembers(ctx, group)
		return err
	})
	byID := map[int64]store.MemberNotify{}
	for _, m := range members {
		byID[m.UserID] = m
	}
	if len(members) != 3 {
		t.Fatalf("%d members, want 3", len(members))
	}
	if m := byID[teacher.ID]; m.Role != messenger.RoleTeacher || m.LastReadSeq != 6 || m.Mute.Active(time.Now()) ||
		m.Settings != store.DefaultUserSettings() {
		t.Errorf("the sender: %+v", m)
	}
	if m := byID[parent.ID]; !m.Mute.Forever || !m.Mute.Active(time.Now().AddDate(50, 0, 0)) || strings.Join(m.Keywords, ",") != "숙제" || m.LastReadSeq != 2 {
		t.Errorf("the parent: %+v", m)
	}
	if m := byID[student.ID]; m.Settings.Push || !m.Settings.QuietCustom || m.Settings.QuietFrom != "22:00" || m.Settings.QuietTo != "07:00" ||
		m.Settings.TimeZone != "Asia/Tokyo" || m.LastReadSeq != 0 {
		t.Errorf("the student: %+v", m)
	}
	var ms store.MemberSettings
	in(parent, func(tx *store.Tx) (err error) { ms, err = tx.MemberSettings(ctx, group); return err })
	if !ms.Mute.Forever {
		t.Errorf("the parent's own read of a forever mute: %+v", ms)
	}

	unread := func() map[int64]int64 {
		t.Helper()
		rows, err := w.app.Query(`SELECT user_id, unread FROM app_digest_candidates(now() - interval '1 day', 5, 100)`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[int64]int64{}
		for rows.Next() {
			var id, n int64
			if err := rows.Scan(&id, &n); err != nil {
				t.Fatal(err)
			}
			out[id] = n
		}
		return out
	}
	// The student has 6 unread; the parent muted the group; the teacher read everything.
	if got := unread(); len(got) != 1 || got[student.ID] != 6 {
		t.Errorf("digest candidates %v, want only the student with 6", got)
	}
	// A digest covered the first 4: 2 left, under the minimum of 5.
	if _, err := w.try(student, `INSERT INTO digest_marks (conversation_id, user_id, org_id, up_to_seq) VALUES ($1, $2, $3, 4)`,
		group, student.ID, student.OrgID); err != nil {
		t.Fatalf("the student's digest mark: %v", err)
	}
	if got := unread(); len(got) != 0 {
		t.Errorf("after a digest of 4: candidates %v, want none", got)
	}
}
