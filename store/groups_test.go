package store_test

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"testing"
	"time"

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
		return tx.Audit(ctx, messenger.AuditEntry{ConversationID: convID, Action: messenger.AuditInvited,
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
		if len(entries) != 1 || entries[0].Action != messenger.AuditInvited || entries[0].Target == nil ||
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
	// Both changes of membership are in the old zone's audit log, as the student's own.
	err = db.InTx(ctx, teacher.Identity(), func(tx *store.Tx) error {
		entries, err := tx.AuditLog(ctx, grade5, 10)
		var got []string
		for _, e := range entries {
			if e.Actor.Sub == "s1" {
				got = append(got, e.Action)
			}
		}
		if want := []string{messenger.AuditZoneLeft, messenger.AuditZoneJoined}; strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("the zone's audit log has the student's %q, want %q", got, want)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
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

// TestRejoinStartsRead: a member who had read (or written) in a group, was removed and is
// invited again rejoins with nothing unread; inviting crosses the wall of their receipt
// through the gate, not by writing another user's row.
func TestRejoinStartsRead(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	admin := storetest.MustSignIn(t, db, "a1", "김민준", "org-a", "", messenger.RoleTeacher)
	member := storetest.MustSignIn(t, db, "a2", "이서연", "org-a", "", messenger.RoleStudent)
	var convID int64
	inTx := func(u messenger.User, fn func(tx *store.Tx) error) {
		t.Helper()
		if err := db.InTx(ctx, u.Identity(), fn); err != nil {
			t.Fatal(err)
		}
	}
	send := func(tx *store.Tx, body string) error {
		_, err := tx.InsertMessage(ctx, convID, store.NewMessage{Kind: messenger.MessageText, Body: body})
		return err
	}
	inTx(admin, func(tx *store.Tx) (err error) {
		convID, err = tx.CreateGroup(ctx, "5학년 2반", []int64{member.ID})
		return err
	})
	inTx(member, func(tx *store.Tx) error { return send(tx, "안녕하세요") }) // the member's receipt exists now
	inTx(admin, func(tx *store.Tx) error { return tx.RemoveMember(ctx, convID, member.ID) })
	inTx(admin, func(tx *store.Tx) error { return send(tx, "나간 뒤의 메시지") })
	inTx(admin, func(tx *store.Tx) error {
		added, err := tx.AddMembers(ctx, convID, []int64{member.ID})
		if err == nil && len(added) != 1 {
			t.Errorf("invited again: added %v", added)
		}
		return err
	})
	inTx(member, func(tx *store.Tx) error {
		counts, err := tx.UnreadCounts(ctx)
		if n := counts[convID]; n != 0 {
			t.Errorf("the rejoined member has %d unread, want 0", n)
		}
		return err
	})
}

// TestRemovalWaitsForSend: a membership change and a send of the member it removes,
// concurrent in two transactions (two processes, say), happen one after the other: a
// removal that holds its locks first makes the send find no membership; a send that
// checked its membership first is stored before the removal goes on.
func TestRemovalWaitsForSend(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	admin := storetest.MustSignIn(t, db, "a1", "김민준", "org-a", "", messenger.RoleTeacher)
	member := storetest.MustSignIn(t, db, "a2", "이서연", "org-a", "", messenger.RoleStudent)
	var convID int64
	if err := db.InTx(ctx, admin.Identity(), func(tx *store.Tx) (err error) {
		convID, err = tx.CreateGroup(ctx, "5학년 2반", []int64{member.ID})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	send := func() error {
		return db.InTx(ctx, member.Identity(), func(tx *store.Tx) error {
			_, err := tx.InsertMessage(ctx, convID, store.NewMessage{Kind: messenger.MessageText, Body: "저요!"})
			return err
		})
	}
	// holdThen runs fn for u in a transaction and keeps it open until release is closed.
	holdThen := func(u messenger.User, fn func(tx *store.Tx) error) (held chan struct{}, release chan struct{}, done chan error) {
		held, release, done = make(chan struct{}), make(chan struct{}), make(chan error, 1)
		go func() {
			done <- db.InTx(ctx, u.Identity(), func(tx *store.Tx) error {
				if err := fn(tx); err != nil {
					return err
				}
				close(held)
				<-release
				return nil
			})
		}()
		return held, release, done
	}
	blocked := func(done chan error) bool {
		select {
		case <-done:
			return false
		case <-time.After(300 * time.Millisecond):
			return true
		}
	}

	// The send checks its membership first: the removal waits for it.
	held, release, sent := holdThen(member, func(tx *store.Tx) error {
		_, err := tx.InsertMessage(ctx, convID, store.NewMessage{Kind: messenger.MessageText, Body: "먼저 보냄"})
		return err
	})
	<-held
	removed := make(chan error, 1)
	go func() {
		removed <- db.InTx(ctx, admin.Identity(), func(tx *store.Tx) error {
			if err := tx.LockConversation(ctx, convID); err != nil {
				return err
			}
			return tx.RemoveMember(ctx, convID, member.ID)
		})
	}()
	if !blocked(removed) {
		t.Error("the removal did not wait for the send in flight")
	}
	close(release)
	if err := <-sent; err != nil {
		t.Fatalf("the send in flight: %v", err)
	}
	if err := <-removed; err != nil {
		t.Fatalf("the removal: %v", err)
	}
	if err := send(); messenger.ErrorCode(err) != messenger.ENOTFOUND {
		t.Errorf("a send after the removal: %v, want not found", err)
	}

	// The change holds its locks first: the send waits, then finds no membership.
	if err := db.InTx(ctx, admin.Identity(), func(tx *store.Tx) error {
		_, err := tx.AddMembers(ctx, convID, []int64{member.ID})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	held, release, removed = holdThen(admin, func(tx *store.Tx) error {
		if err := tx.LockConversation(ctx, convID); err != nil {
			return err
		}
		return tx.RemoveMember(ctx, convID, member.ID)
	})
	<-held
	late := make(chan error, 1)
	go func() { late <- send() }()
	if !blocked(late) {
		t.Error("the send did not wait for the removal in flight")
	}
	close(release)
	if err := <-removed; err != nil {
		t.Fatalf("the removal: %v", err)
	}
	if err := <-late; messenger.ErrorCode(err) != messenger.ENOTFOUND {
		t.Errorf("the send that waited for the removal: %v, want not found", err)
	}
}
