package store_test

import (
	"context"
	"database/sql"
	"strconv"
	"testing"

	_ "github.com/lib/pq"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

var userDataTables = []string{
	"organizations", "zones", "users", "conversations", "conversation_participants",
	"messages", "read_receipts", "audit_log", "sessions", "uploads", "files",
	"user_settings", "push_subscriptions", "push_tickets", "digest_state", "digest_marks",
}

// TestRowLevelSecurity checks the database's own wall: the application role, acting as a
// user of organization A, reads nothing of organization B even with hand-written SQL, and
// reads nothing at all without settings.
func TestRowLevelSecurity(t *testing.T) {
	ctx := context.Background()
	db, d := storetest.NewDB(t)

	a1 := storetest.MustSignIn(t, db, "a1", "김민준", "org-a", "zone-a", messenger.RoleTeacher)
	a2 := storetest.MustSignIn(t, db, "a2", "이서연", "org-a", "zone-a", messenger.RoleStudent)
	a3 := storetest.MustSignIn(t, db, "a3", "박지호", "org-a", "zone-a", messenger.RoleParent)
	b1 := storetest.MustSignIn(t, db, "b1", "최유나", "org-b", "zone-b", messenger.RoleTeacher)
	b2 := storetest.MustSignIn(t, db, "b2", "정하준", "org-b", "zone-b", messenger.RoleParent)

	mustChat := func(u messenger.User, other messenger.User, body string) int64 {
		t.Helper()
		var convID int64
		err := db.InTx(ctx, u.Identity(), func(tx *store.Tx) error {
			id, _, err := tx.DirectConversation(ctx, other.ID)
			if err != nil {
				return err
			}
			convID = id
			_, err = tx.InsertMessage(ctx, id, store.NewMessage{Kind: messenger.MessageText, Body: body})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return convID
	}
	convA := mustChat(a1, a3, "우리 반 공지 확인 부탁드립니다")
	mustChat(b1, b2, "다른 학교 메시지")

	raw, err := sql.Open("postgres", d.AppDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()

	var super, bypass bool
	var owned int
	if err := raw.QueryRow(`SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user`).Scan(&super, &bypass); err != nil {
		t.Fatal(err)
	}
	if err := raw.QueryRow(`SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)`).Scan(&owned); err != nil {
		t.Fatal(err)
	}
	if super || bypass || owned != 0 {
		t.Fatalf("app role: superuser=%v bypassrls=%v owns %d relations; want false, false, 0", super, bypass, owned)
	}

	count := func(t *testing.T, id messenger.Identity, query string) int {
		t.Helper()
		tx, err := raw.Begin()
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if id.UserID != 0 {
			if _, err := tx.Exec(`SELECT set_config('app.user_id', $1, true), set_config('app.org_id', $2, true)`,
				strconv.FormatInt(id.UserID, 10), strconv.FormatInt(id.OrgID, 10)); err != nil {
				t.Fatal(err)
			}
		}
		var n int
		if err := tx.QueryRow(query).Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return n
	}

	orgB := strconv.FormatInt(b1.OrgID, 10)
	t.Run("other organization", func(t *testing.T) {
		for _, table := range userDataTables {
			col := "org_id"
			if table == "organizations" {
				col = "id"
			}
			if n := count(t, a1.Identity(), `SELECT count(*) FROM `+table+` WHERE `+col+` = `+orgB); n != 0 {
				t.Errorf("as a user of org A: %d rows of org B in %s", n, table)
			}
		}
		if n := count(t, a1.Identity(), `SELECT count(*) FROM messages`); n != 1 {
			t.Errorf("as a1: %d messages visible, want exactly their own 1", n)
		}
		// Forging the organization setting alone opens nothing: b1's conversations are not a1's.
		forged := messenger.Identity{UserID: a1.ID, OrgID: b1.OrgID}
		if n := count(t, forged, `SELECT count(*) FROM messages`); n != 0 {
			t.Errorf("a1 with org B's id: %d messages visible, want 0", n)
		}
	})

	t.Run("no settings", func(t *testing.T) {
		for _, table := range userDataTables {
			if n := count(t, messenger.Identity{}, `SELECT count(*) FROM `+table); n != 0 {
				t.Errorf("without settings: %d rows in %s", n, table)
			}
		}
	})

	t.Run("same organization, not a member", func(t *testing.T) {
		q := `SELECT count(*) FROM messages WHERE conversation_id = ` + strconv.FormatInt(convA, 10)
		if n := count(t, a2.Identity(), q); n != 0 {
			t.Errorf("a2 reads %d messages of a conversation they are not in", n)
		}
		if n := count(t, a3.Identity(), q); n != 1 {
			t.Errorf("a3 reads %d messages of their own conversation, want 1", n)
		}
	})

	t.Run("audit log is append-only", func(t *testing.T) {
		for _, stmt := range []string{`UPDATE audit_log SET action = 'x'`, `DELETE FROM audit_log`} {
			if _, err := raw.Exec(stmt); err == nil {
				t.Errorf("%s: allowed, want permission denied", stmt)
			}
		}
	})
}
