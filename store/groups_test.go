package store_test

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"testing"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

// TestAuditLogAppendOnly: the application's role appends to the audit log and reads its
// own organization's entries, and can neither change nor delete one, not even with
// hand-written SQL.
func TestAuditLogAppendOnly(t *testing.T) {
	ctx := context.Background()
	db, d := storetest.NewDB(t)
	admin := storetest.MustSignIn(t, db, "a1", "김민준", "org-a", "zone-a", messenger.RoleTeacher)
	member := storetest.MustSignIn(t, db, "a2", "이서연", "org-a", "zone-a", messenger.RoleStudent)
	var convID int64
	err := db.InTx(ctx, admin.Identity(), func(tx *store.Tx) error {
		var err error
		if convID, err = tx.CreateGroup(ctx, "5학년 2반", []int64{member.ID}); err != nil {
			return err
		}
		return tx.Audit(ctx, store.AuditEntry{ConversationID: convID, Action: store.AuditInvited,
			Target: &member, RequestID: "req-1"})
	})
	if err != nil {
		t.Fatal(err)
	}

	app, err := sql.Open("postgres", d.AppDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	for _, stmt := range []string{
		`UPDATE audit_log SET action = 'nothing.happened'`,
		`DELETE FROM audit_log`,
		`TRUNCATE audit_log`,
	} {
		tx, err := app.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range map[string]int64{"app.user_id": admin.ID, "app.org_id": admin.OrgID} {
			if _, err := tx.Exec(`SELECT set_config($1, $2, true)`, k, strconv.FormatInt(v, 10)); err != nil {
				t.Fatal(err)
			}
		}
		_, err = tx.Exec(stmt)
		tx.Rollback()
		if err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%s as the application: %v, want permission denied", stmt, err)
		}
	}

	// The entry is there, as written.
	err = db.InTx(ctx, admin.Identity(), func(tx *store.Tx) error {
		entries, err := tx.AuditLog(ctx, convID, 10)
		if err != nil {
			return err
		}
		if len(entries) != 1 || entries[0].Action != store.AuditInvited || entries[0].Target == nil ||
			entries[0].Target.Sub != "a2" || entries[0].Actor.Sub != "a1" || entries[0].RequestID != "req-1" {
			t.Errorf("audit log: %+v", entries)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Another organization reads none of it.
	other := storetest.MustSignIn(t, db, "b1", "최유나", "org-b", "zone-b", messenger.RoleTeacher)
	err = db.InTx(ctx, other.Identity(), func(tx *store.Tx) error {
		entries, err := tx.AuditLog(ctx, convID, 10)
		if len(entries) != 0 {
			t.Errorf("another organization reads %d audit entries", len(entries))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestZoneAnnouncementMembership: signing in makes a user a member of their zone's
// announcement conversation with nothing unread, and moving zone moves them.
func TestZoneAnnouncementMembership(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	teacher := storetest.MustSignIn(t, db, "t1", "김선영", "org-a", "grade5", messenger.RoleTeacher)
	var grade5 int64
	err := db.InTx(ctx, teacher.Identity(), func(tx *store.Tx) error {
		id, _, err := tx.ZoneAnnouncement(ctx)
		grade5 = id
		if err != nil {
			return err
		}
		_, err = tx.InsertMessage(ctx, id, store.NewMessage{Kind: messenger.MessageText, Body: "공지", CanAnnounce: true})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	student := storetest.MustSignIn(t, db, "s1", "이민준", "org-a", "grade5", messenger.RoleStudent)
	unread := func(u messenger.User) map[int64]int64 {
		var counts map[int64]int64
		if err := db.InTx(ctx, u.Identity(), func(tx *store.Tx) (err error) {
			counts, err = tx.UnreadCounts(ctx)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return counts
	}
	if n, ok := unread(student)[grade5]; ok {
		t.Errorf("a new member of the zone has %d unread notices from before they joined", n)
	}
	err = db.InTx(ctx, student.Identity(), func(tx *store.Tx) error {
		_, err := tx.InsertMessage(ctx, grade5, store.NewMessage{Kind: messenger.MessageText, Body: "저도요"})
		if messenger.ErrorCode(err) != messenger.EFORBIDDEN {
			t.Errorf("a student posting a notice: %v, want forbidden", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	moved := storetest.MustSignIn(t, db, "s1", "이민준", "org-a", "grade6", messenger.RoleStudent)
	err = db.InTx(ctx, moved.Identity(), func(tx *store.Tx) error {
		if _, err := tx.Conversation(ctx, grade5); messenger.ErrorCode(err) != messenger.ENOTFOUND {
			t.Errorf("after moving zone the old zone's notices: %v, want not found", err)
		}
		id, _, err := tx.ZoneAnnouncement(ctx)
		if err != nil || id == grade5 {
			t.Errorf("the new zone's announcements: %d, %v", id, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
