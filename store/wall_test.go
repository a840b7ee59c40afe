package store_test

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"testing"

	"github.com/lib/pq"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

// wall runs hand-written SQL as the application's role with a real user's settings, as
// store.DB.InTx sets them: what a bug or an injection in the Go code could do.
type wall struct {
	t          *testing.T
	app, owner *sql.DB
}

func newWall(t *testing.T, d storetest.Database) wall {
	t.Helper()
	app, err := sql.Open("postgres", d.AppDSN)
	if err != nil {
		t.Fatal(err)
	}
	owner, err := sql.Open("postgres", d.OwnerDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close(); owner.Close() })
	return wall{t: t, app: app, owner: owner}
}

// try runs query as u and commits when it succeeds; it answers the rows it affected.
func (w wall) try(u messenger.User, query string, args ...any) (int64, error) {
	w.t.Helper()
	tx, err := w.app.Begin()
	if err != nil {
		w.t.Fatal(err)
	}
	defer tx.Rollback()
	zone := ""
	if u.ZoneID != 0 {
		zone = strconv.FormatInt(u.ZoneID, 10)
	}
	if _, err := tx.Exec(`SELECT set_config('app.user_id', $1, true), set_config('app.org_id', $2, true),
	       set_config('app.zone_id', $3, true)`,
		strconv.FormatInt(u.ID, 10), strconv.FormatInt(u.OrgID, 10), zone); err != nil {
		w.t.Fatal(err)
	}
	res, err := tx.Exec(query, args...)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return n, tx.Commit()
}

// refused checks that the database refused query as u: a permission or policy error,
// or no row touched.
func (w wall) refused(what string, u messenger.User, query string, args ...any) {
	w.t.Helper()
	n, err := w.try(u, query, args...)
	var pqErr *pq.Error
	switch {
	case err == nil && n > 0:
		w.t.Errorf("%s: allowed (%d rows)", what, n)
	case err != nil && (!errors.As(err, &pqErr) || pqErr.Code != "42501"):
		w.t.Errorf("%s: %v, want a refusal (42501)", what, err)
	}
}

// value reads one value as the owner, past row-level security: the state after an attempt.
func (w wall) value(query string, args ...any) string {
	w.t.Helper()
	var v sql.NullString
	if err := w.owner.QueryRow(query, args...).Scan(&v); err != nil {
		w.t.Fatalf("%s: %v", query, err)
	}
	return v.String
}

// TestDatabaseWall: row-level security holds by itself. Acting as a real user of the
// organization, hand-written SQL cannot join a conversation uninvited, change another
// member's row or a conversation's fixed columns, post where the user may not, write
// system notices or other users' read receipts, change their own role, organization or
// name, or record another organization's user as gone.
func TestDatabaseWall(t *testing.T) {
	ctx := context.Background()
	db, d := storetest.NewDB(t)
	w := newWall(t, d)

	admin := storetest.MustSignIn(t, db, "a1", "김민준", "org-a", "zone-a", messenger.RoleTeacher)
	outsider := storetest.MustSignIn(t, db, "a2", "이서연", "org-a", "zone-a", messenger.RoleStudent)
	member := storetest.MustSignIn(t, db, "a3", "박지호", "org-a", "zone-a", messenger.RoleParent)
	quiet := storetest.MustSignIn(t, db, "a4", "정하준", "org-a", "zone-a", messenger.RoleStudent)
	other := storetest.MustSignIn(t, db, "b1", "최유나", "org-b", "zone-b", messenger.RoleTeacher)

	var group, announcements int64
	err := db.InTx(ctx, admin.Identity(), func(tx *store.Tx) error {
		var err error
		if group, err = tx.CreateGroup(ctx, "5학년 2반", []int64{member.ID, quiet.ID}); err != nil {
			return err
		}
		if _, err = tx.InsertMessage(ctx, group, store.NewMessage{Kind: messenger.MessageText, Body: "내일 현장학습입니다"}); err != nil {
			return err
		}
		announcements, _, err = tx.ZoneAnnouncement(ctx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	orgA := admin.OrgID

	t.Run("joining uninvited", func(t *testing.T) {
		w := wall{t: t, app: w.app, owner: w.owner}
		w.refused("joining a group of the organization", outsider,
			`INSERT INTO conversation_participants (conversation_id, user_id, org_id, role) VALUES ($1, $2, $3, 'member')`,
			group, outsider.ID, orgA)
		w.refused("a member adding someone without the gate", member,
			`INSERT INTO conversation_participants (conversation_id, user_id, org_id, role) VALUES ($1, $2, $3, 'admin')`,
			group, outsider.ID, orgA)
		if n := w.value(`SELECT count(*) FROM conversation_participants WHERE conversation_id = $1 AND user_id = $2`, group, outsider.ID); n != "0" {
			t.Errorf("the outsider has %s membership rows", n)
		}
	})

	t.Run("another member's row", func(t *testing.T) {
		w := wall{t: t, app: w.app, owner: w.owner}
		w.refused("a member making themself admin", member,
			`UPDATE conversation_participants SET role = 'admin' WHERE conversation_id = $1 AND user_id = $2`, group, member.ID)
		w.refused("a member marking the admin as left", member,
			`UPDATE conversation_participants SET left_at = now() WHERE conversation_id = $1 AND user_id = $2`, group, admin.ID)
		w.refused("a member muting another", member,
			`UPDATE conversation_participants SET muted = true WHERE conversation_id = $1 AND user_id = $2`, group, quiet.ID)
		if v := w.value(`SELECT role || coalesce(left_at::text, '') FROM conversation_participants WHERE conversation_id = $1 AND user_id = $2`, group, admin.ID); v != "admin" {
			t.Errorf("the admin's row is now %q", v)
		}
		if v := w.value(`SELECT role FROM conversation_participants WHERE conversation_id = $1 AND user_id = $2`, group, member.ID); v != "member" {
			t.Errorf("the member's role is now %q", v)
		}
	})

	t.Run("conversation columns", func(t *testing.T) {
		w := wall{t: t, app: w.app, owner: w.owner}
		w.refused("changing the kind", admin, `UPDATE conversations SET kind = 'announcement', zone_id = $2 WHERE id = $1`, group, admin.ZoneID)
		w.refused("changing the organization", admin, `UPDATE conversations SET org_id = $2 WHERE id = $1`, group, other.OrgID)
		w.refused("changing last_seq", member, `UPDATE conversations SET last_seq = 100 WHERE id = $1`, group)
		w.refused("renaming without the gate", member, `UPDATE conversations SET title = '우리끼리' WHERE id = $1`, group)
		w.refused("creating an announcement", outsider,
			`INSERT INTO conversations (org_id, zone_id, kind, title, created_by) VALUES ($1, $2, 'announcement', '', $3)`,
			orgA, admin.ZoneID, outsider.ID)
		w.refused("creating another pair's direct conversation", outsider,
			`INSERT INTO conversations (org_id, kind, direct_user_lo, direct_user_hi, created_by) VALUES ($1, 'direct', $2, $3, $4)`,
			orgA, min(admin.ID, member.ID), max(admin.ID, member.ID), outsider.ID)
		if v := w.value(`SELECT kind || ' ' || org_id || ' ' || last_seq || ' ' || title FROM conversations WHERE id = $1`, group); v != "group "+strconv.FormatInt(orgA, 10)+" 1 5학년 2반" {
			t.Errorf("the group is now %q", v)
		}
	})

	t.Run("announcements and system messages", func(t *testing.T) {
		w := wall{t: t, app: w.app, owner: w.owner}
		w.refused("a student posting an announcement", outsider,
			`INSERT INTO messages (conversation_id, org_id, seq, sender_id, kind, body) VALUES ($1, $2, 1, $3, 'text', '내일 휴교')`,
			announcements, orgA, outsider.ID)
		w.refused("a member writing a system notice", member,
			`INSERT INTO messages (conversation_id, org_id, seq, sender_id, kind, body) VALUES ($1, $2, 2, $3, 'system', '김민준님이 나갔습니다.')`,
			group, orgA, member.ID)
		w.refused("a text message carrying a system event", member,
			`INSERT INTO messages (conversation_id, org_id, sender_id, kind, body, event) VALUES ($1, $2, $3, 'text', 'x', '{"type": "left", "actor": "김민준"}')`,
			group, orgA, member.ID)
		w.refused("a message backdated or numbered by the sender", member,
			`INSERT INTO messages (conversation_id, org_id, seq, sender_id, kind, body, created_at) VALUES ($1, $2, 1, $3, 'text', 'x', '2020-01-01')`,
			group, orgA, member.ID)
		w.refused("a sender turning a message into a notice", admin,
			`UPDATE messages SET kind = 'system' WHERE conversation_id = $1`, group)
		w.refused("a sender moving a message", admin,
			`UPDATE messages SET seq = 7 WHERE conversation_id = $1`, group)
		if v := w.value(`SELECT count(*) FROM messages WHERE kind = 'system' OR conversation_id = $1 OR event IS NOT NULL OR created_at < '2021-01-01'`, announcements); v != "0" {
			t.Errorf("%s forged messages stored", v)
		}
	})

	t.Run("read receipts", func(t *testing.T) {
		w := wall{t: t, app: w.app, owner: w.owner}
		w.refused("creating another member's receipt", member,
			`INSERT INTO read_receipts (conversation_id, user_id, org_id, last_read_seq) VALUES ($1, $2, $3, 1)`, group, quiet.ID, orgA)
		w.refused("raising another member's receipt", member,
			`INSERT INTO read_receipts AS r (conversation_id, user_id, org_id, last_read_seq) VALUES ($1, $2, $3, 1)
			 ON CONFLICT (conversation_id, user_id) DO UPDATE SET last_read_seq = 1`, group, admin.ID, orgA)
		w.refused("raising them through the joining gate", member, `SELECT app_mark_joined($1, $2)`, group, pq.Array([]int64{quiet.ID}))
		if v := w.value(`SELECT count(*) FROM read_receipts WHERE conversation_id = $1 AND user_id = $2`, group, quiet.ID); v != "0" {
			t.Errorf("the quiet member has %s receipts they never made", v)
		}
	})

	t.Run("own user row", func(t *testing.T) {
		w := wall{t: t, app: w.app, owner: w.owner}
		w.refused("changing one's role", outsider, `UPDATE users SET role = 'admin' WHERE id = $1`, outsider.ID)
		w.refused("changing one's organization", outsider, `UPDATE users SET org_id = $2 WHERE id = $1`, outsider.ID, other.OrgID)
		w.refused("changing one's name", outsider, `UPDATE users SET name = '교장선생님' WHERE id = $1`, outsider.ID)
		if v := w.value(`SELECT role || ' ' || name || ' ' || org_id FROM users WHERE id = $1`, outsider.ID); v != "student 이서연 "+strconv.FormatInt(orgA, 10) {
			t.Errorf("the user row is now %q", v)
		}
		if _, err := w.try(outsider, `UPDATE users SET last_seen_at = now() WHERE id = $1`, outsider.ID); err != nil {
			t.Errorf("recording one's own last seen: %v", err)
		}
	})

	t.Run("presence of another organization", func(t *testing.T) {
		w := wall{t: t, app: w.app, owner: w.owner}
		w.refused("marking another organization's user gone", admin, `SELECT * FROM app_presence_lapsed($1, now())`, other.ID)
		if v := w.value(`SELECT last_seen_at FROM users WHERE id = $1`, other.ID); v != "" {
			t.Errorf("the other organization's user was last seen at %s", v)
		}
	})

	t.Run("gates check the caller", func(t *testing.T) {
		w := wall{t: t, app: w.app, owner: w.owner}
		ids := func(u ...messenger.User) any {
			out := make([]int64, len(u))
			for i := range u {
				out[i] = u[i].ID
			}
			return pq.Array(out)
		}
		w.refused("an outsider inviting themself", outsider, `SELECT app_invite($1, $2)`, group, ids(outsider))
		w.refused("another organization's user inviting", other, `SELECT app_invite($1, $2)`, group, ids(other))
		w.refused("a member removing the admin", member, `SELECT app_remove_member($1, $2)`, group, admin.ID)
		w.refused("a member making themself admin", member, `SELECT app_set_member_role($1, $2, 'admin')`, group, member.ID)
		w.refused("a member renaming", member, `SELECT app_rename($1, '우리끼리')`, group)
		w.refused("an outsider locking the group", outsider, `SELECT 1 WHERE app_lock_conversation($1)`, group)
		w.refused("starting someone else's conversation", outsider, `SELECT app_start_conversation($1, $2)`, group, ids(outsider))
		w.refused("a member announcing a removal", member, `SELECT * FROM app_system_notice($1, '', $2)`,
			group, `{"type": "removed", "actor": "박지호", "targets": ["김민준"]}`)
		w.refused("a notice in someone else's name", member, `SELECT * FROM app_system_notice($1, '', $2)`,
			group, `{"type": "left", "actor": "김민준"}`)
		w.refused("an admin announcing a rename that did not happen", admin, `SELECT * FROM app_system_notice($1, '', $2)`,
			group, `{"type": "renamed", "actor": "김민준", "title": "우리끼리"}`)
		w.refused("an admin passing the role to a member who is not admin", admin, `SELECT * FROM app_system_notice($1, '', $2)`,
			group, `{"type": "admin_passed", "actor": "김민준", "targets": ["박지호"]}`)
		w.refused("an outsider's notice", outsider, `SELECT * FROM app_system_notice($1, '', $2)`,
			group, `{"type": "left", "actor": "이서연"}`)
		w.refused("leaving the zone's announcements", outsider, `SELECT 1 WHERE app_leave($1)`, announcements)
		w.refused("the last admin leaving without passing the role", admin, `SELECT 1 WHERE app_leave($1)`, group)
		if v := w.value(`SELECT count(*) FROM conversation_participants WHERE conversation_id = $1 AND left_at IS NULL`, group); v != "3" {
			t.Errorf("the group has %s active members, want 3", v)
		}
		// What the rules allow still passes: a member leaves in their own name.
		if _, err := w.try(quiet, `SELECT * FROM app_system_notice($1, '', $2)`, group, `{"type": "left", "actor": "정하준"}`); err != nil {
			t.Errorf("a member's own leaving notice: %v", err)
		}
		if _, err := w.try(quiet, `SELECT app_leave($1)`, group); err != nil {
			t.Errorf("a member leaving: %v", err)
		}
	})
}
