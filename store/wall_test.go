package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

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
	app := storetest.Conn(t, d.AppDSN)
	owner := storetest.Conn(t, d.OwnerDSN)
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

// begin begins a transaction acting as u, as store.DB.InTx does.
func (w wall) begin(u messenger.User) *sql.Tx {
	w.t.Helper()
	tx, err := w.app.Begin()
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := tx.Exec(`SELECT set_config('app.user_id', $1, true), set_config('app.org_id', $2, true),
	       set_config('app.zone_id', $3, true)`,
		strconv.FormatInt(u.ID, 10), strconv.FormatInt(u.OrgID, 10), zoneSetting(u.ZoneID)); err != nil {
		tx.Rollback()
		w.t.Fatal(err)
	}
	return tx
}

// tryTx runs fn in a transaction acting as u and commits when it succeeds.
func (w wall) tryTx(u messenger.User, fn func(tx *sql.Tx) error) error {
	w.t.Helper()
	tx := w.begin(u)
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

func zoneSetting(zone int64) string {
	if zone == 0 {
		return ""
	}
	return strconv.FormatInt(zone, 10)
}

// refusedWith checks that err is a PostgreSQL error of SQLSTATE code.
func refusedWith(t *testing.T, what string, err error, code pq.ErrorCode) {
	t.Helper()
	var pqErr *pq.Error
	if err == nil {
		t.Errorf("%s: allowed, want SQLSTATE %s", what, code)
	} else if !errors.As(err, &pqErr) || pqErr.Code != code {
		t.Errorf("%s: %v, want SQLSTATE %s", what, err, code)
	}
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

	t.Run("the send gate", func(t *testing.T) {
		w := wall{t: t, app: w.app, owner: w.owner}
		send := `SELECT outcome FROM app_send_batch($1, $2, $3, $4, $5, $6)`
		batch := func(convs, users, orgs []int64, announce []bool) []any {
			clients, bodies := make([]*string, len(users)), make([]string, len(users))
			for i := range bodies {
				bodies[i] = "내일 휴교"
			}
			return []any{pq.Array(convs), pq.Array(users), pq.Array(orgs), pq.Array(clients), pq.Array(bodies), pq.Array(announce)}
		}
		before := w.value(`SELECT count(*) || ' ' || max(seq) FROM messages`)
		// Inside a user's transaction the gate sends for nobody, not even the user.
		w.refused("a member sending through the gate inside their transaction", member, send,
			batch([]int64{group}, []int64{member.ID}, []int64{orgA}, []bool{false})...)
		// Acting as nobody (the server's own batch), it checks each sender itself.
		rows, err := w.app.Query(send, batch(
			[]int64{group, group, group, announcements, group},
			[]int64{outsider.ID, other.ID, other.ID, outsider.ID, member.ID},
			[]int64{orgA, other.OrgID, orgA, orgA, other.OrgID},
			[]bool{false, false, false, true, false})...)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var o string
			if err := rows.Scan(&o); err != nil {
				t.Fatal(err)
			}
			got = append(got, o)
		}
		rows.Close()
		// A non-member, another school's user (named in either organization), a student of
		// the zone posting an announcement who the caller says may, a member named in another
		// organization.
		if want := []string{"not_found", "not_found", "not_found", "forbidden", "not_found"}; !slices.Equal(got, want) {
			t.Errorf("the gate answered %v, want %v", got, want)
		}
		if after := w.value(`SELECT count(*) || ' ' || max(seq) FROM messages`); after != before {
			t.Errorf("messages went from %s to %s", before, after)
		}
		refusedWith(t, "arrays of different lengths", func() error {
			_, err := w.app.Exec(send, pq.Array([]int64{group}), pq.Array([]int64{member.ID, admin.ID}), pq.Array([]int64{orgA}),
				pq.Array([]*string{nil}), pq.Array([]string{"x"}), pq.Array([]bool{false}))
			return err
		}(), "22023")
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
		w.refused("marking another organization's user gone", admin, `SELECT * FROM app_presence_offline($1, now())`, pq.Array([]int64{other.ID}))
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
		w.refused("a member saying they left while they stay", quiet, `SELECT * FROM app_system_notice($1, '', $2)`,
			group, `{"type": "left", "actor": "정하준"}`)
		// What the rules allow still passes: a member leaves, and says so, in their own name.
		if err := w.tryTx(quiet, func(tx *sql.Tx) error {
			if _, err := tx.Exec(`SELECT app_leave($1)`, group); err != nil {
				return err
			}
			_, err := tx.Exec(`SELECT * FROM app_system_notice($1, '', $2)`, group, `{"type": "left", "actor": "정하준"}`)
			return err
		}); err != nil {
			t.Errorf("a member leaving with their own notice: %v", err)
		}
	})

	newGroup := func(t *testing.T, title string, members ...messenger.User) int64 {
		t.Helper()
		var id int64
		ids := make([]int64, len(members))
		for i, m := range members {
			ids[i] = m.ID
		}
		if err := db.InTx(ctx, admin.Identity(), func(tx *store.Tx) (err error) {
			id, err = tx.CreateGroup(ctx, title, ids)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return id
	}

	t.Run("notices say what happened", func(t *testing.T) {
		w := wall{t: t, app: w.app, owner: w.owner}
		g := newGroup(t, "공지 시험", member, quiet)
		notice := `SELECT * FROM app_system_notice($1, $2, $3)`
		w.refused("inviting people who did not join", member, notice, g, "", `{"type": "invited", "actor": "박지호", "targets": ["이서연"]}`)
		w.refused("a removal that did not happen", admin, notice, g, "", `{"type": "removed", "actor": "김민준", "targets": ["정하준"]}`)
		w.refused("leaving while staying", quiet, notice, g, "", `{"type": "left", "actor": "정하준"}`)
		w.refused("a rename to the current title that did not happen", admin, notice, g, "", `{"type": "renamed", "actor": "김민준", "title": "공지 시험"}`)
		w.refused("granting admin to a member who is not", admin, notice, g, "", `{"type": "admin_granted", "actor": "김민준", "targets": ["박지호"]}`)
		invite := func(body, event string) error {
			return w.tryTx(member, func(tx *sql.Tx) error {
				if _, err := tx.Exec(`SELECT app_invite($1, $2)`, g, pq.Array([]int64{outsider.ID})); err != nil {
					return err
				}
				_, err := tx.Exec(notice, g, body, event)
				return err
			})
		}
		refusedWith(t, "an invitation naming more than joined", invite("", `{"type": "invited", "actor": "박지호", "targets": ["이서연", "김민준"]}`), "42501")
		if err := invite("교장선생님이 모두를 내보냈습니다.", `{"type": "invited", "actor": "박지호", "targets": ["이서연"], "title": "가짜"}`); err != nil {
			t.Fatalf("a real invitation: %v", err)
		}
		if v := w.value(`SELECT body || ' ' || event::text FROM messages WHERE conversation_id = $1 AND kind = 'system' ORDER BY seq DESC LIMIT 1`, g); v != `박지호님이 이서연님을 초대했습니다. {"type": "invited", "actor": "박지호", "targets": ["이서연"]}` {
			t.Errorf("the notice of a real invitation reads %q", v)
		}
		if v := w.value(`SELECT count(*) FROM messages WHERE conversation_id = $1 AND kind = 'system'`, g); v != "1" {
			t.Errorf("%s notices stored, want the one real invitation", v)
		}
	})

	t.Run("conversation and audit ids", func(t *testing.T) {
		w := wall{t: t, app: w.app, owner: w.owner}
		w.refused("a conversation numbered ahead of the sequence", other,
			`INSERT INTO conversations (id, org_id, kind, title, created_by) VALUES (1000000, $1, 'group', '', $2)`, other.OrgID, other.ID)
		w.refused("an audit entry numbered ahead of the sequence", other,
			`INSERT INTO audit_log (id, org_id, actor_id, action) VALUES (1000000, $1, $2, 'x')`, other.OrgID, other.ID)
		if v := w.value(`SELECT count(*) FROM conversations WHERE id >= 1000000`); v != "0" {
			t.Errorf("%s conversations numbered by a user", v)
		}
		newGroup(t, "새 모임", member) // the organizations still create conversations
	})

	t.Run("a refused send touches nothing", func(t *testing.T) {
		w := wall{t: t, app: w.app, owner: w.owner}
		lock, err := w.owner.Begin()
		if err != nil {
			t.Fatal(err)
		}
		defer lock.Rollback()
		if _, err := lock.Exec(`SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE`, group); err != nil {
			t.Fatal(err)
		}
		var refusals []string
		for _, conv := range []int64{group, 1 << 40} {
			err := w.tryTx(other, func(tx *sql.Tx) error {
				if _, err := tx.Exec(`SET LOCAL lock_timeout = '3s'`); err != nil {
					return err
				}
				_, err := tx.Exec(`INSERT INTO messages (conversation_id, org_id, sender_id, kind, body) VALUES ($1, $2, $3, 'text', 'x')`,
					conv, orgA, other.ID)
				return err
			})
			refusedWith(t, "another organization's user posting", err, "42501")
			if err != nil {
				refusals = append(refusals, err.Error())
			}
		}
		if len(refusals) == 2 && refusals[0] != refusals[1] {
			t.Errorf("a conversation that exists is refused with %q, one that does not with %q", refusals[0], refusals[1])
		}
	})

	t.Run("own receipt and own messages", func(t *testing.T) {
		w := wall{t: t, app: w.app, owner: w.owner}
		w.refused("reading past the last message", admin,
			`INSERT INTO read_receipts AS r (conversation_id, user_id, org_id, last_read_seq) VALUES ($1, $2, $3, 1000)
			 ON CONFLICT (conversation_id, user_id) DO UPDATE SET last_read_seq = 1000`, group, admin.ID, orgA)
		w.refused("editing one's own message", admin,
			`UPDATE messages SET body = '수정', edited_at = now() WHERE conversation_id = $1 AND sender_id = $2`, group, admin.ID)
		if v := w.value(`SELECT last_read_seq <= (SELECT last_seq FROM conversations WHERE id = $1) FROM read_receipts WHERE conversation_id = $1 AND user_id = $2`, group, admin.ID); v != "true" {
			t.Error("the admin's receipt is past the conversation's last message")
		}
		if v := w.value(`SELECT count(*) FROM messages WHERE conversation_id = $1 AND (edited_at IS NOT NULL OR body = '수정')`, group); v != "0" {
			t.Errorf("%s messages edited", v)
		}
	})

	t.Run("duplicates and invisible controls", func(t *testing.T) {
		w := wall{t: t, app: w.app, owner: w.owner}
		g := newGroup(t, "중복", member)
		if err := w.tryTx(admin, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRow(`SELECT count(*) FROM app_invite($1, $2)`, g, pq.Array([]int64{quiet.ID, quiet.ID, quiet.ID})).Scan(&n); err != nil {
				return err
			}
			if n != 1 {
				t.Errorf("inviting one person three times answers %d added", n)
			}
			return nil
		}); err != nil {
			t.Errorf("inviting one person three times: %v", err)
		}
		err := w.tryTx(admin, func(tx *sql.Tx) error {
			_, err := tx.Exec(`SELECT app_rename($1, $2)`, g, "\u202eevil\u0007")
			return err
		})
		refusedWith(t, "a title with a direction override and a control character", err, "23514")
		if v := w.value(`SELECT title FROM conversations WHERE id = $1`, g); v != "중복" {
			t.Errorf("the group is now titled %q", v)
		}
		for _, name := range []string{"이\u2028름", "\u2066이름", "이름\u0085"} {
			_, err := w.app.Exec(`SELECT * FROM app_sign_in('dreamseed-portal', 'a9', 'org-a', 'zone-a', $1, '', 'student', 'ko', now())`, name)
			refusedWith(t, fmt.Sprintf("a name %q", name), err, "23514")
		}
	})

	t.Run("sign-in and sweeper gates inside a user's transaction", func(t *testing.T) {
		w := wall{t: t, app: w.app, owner: w.owner}
		hash := []byte("session-of-a3")
		if err := db.InTx(ctx, member.Identity(), func(tx *store.Tx) error {
			return tx.CreateSession(ctx, hash, "csrf", "", time.Now().Add(time.Hour))
		}); err != nil {
			t.Fatal(err)
		}
		w.refused("looking up another user's session", outsider, `SELECT * FROM app_session($1)`, hash)
		signIn := `SELECT * FROM app_sign_in('dreamseed-portal', $1, $2, $3, $4, '', $5, 'ko', now())`
		w.refused("a student making themself a teacher", outsider, signIn, "a2", "org-a", "zone-a", "이서연", "teacher")
		w.refused("renaming and demoting another user", outsider, signIn, "a1", "org-a", "zone-a", "바보", "student")
		w.refused("moving another user out of their school", outsider, signIn, "a3", "org-b", "zone-b", "박지호", "parent")
		w.refused("recording one's own going offline", outsider, `SELECT * FROM app_presence_offline($1, now())`, pq.Array([]int64{outsider.ID}))
		w.refused("marking users gone and listing their contacts", outsider, `SELECT * FROM app_presence_offline($1, now())`, pq.Array([]int64{outsider.ID, admin.ID}))
		for _, u := range []messenger.User{admin, outsider, member} {
			if v := w.value(`SELECT name || ' ' || role || ' ' || org_id || ' ' || (moved_at IS NULL) FROM users WHERE id = $1`, u.ID); v != u.Name+" "+u.Role+" "+strconv.FormatInt(orgA, 10)+" true" {
				t.Errorf("user %s is now %q", u.Sub, v)
			}
		}
		// The presence batches (no user settings; lapses too): never later than now, never
		// backwards.
		if _, err := w.app.Exec(`SELECT * FROM app_presence_offline($1, now() + interval '10 years')`, pq.Array([]int64{admin.ID})); err != nil {
			t.Errorf("the presence batches: %v", err)
		}
		if _, err := w.app.Exec(`SELECT * FROM app_presence_offline($1, now() - interval '10 years')`, pq.Array([]int64{admin.ID})); err != nil {
			t.Errorf("the presence batches: %v", err)
		}
		if v := w.value(`SELECT last_seen_at <= now() AND last_seen_at > now() - interval '1 hour' FROM users WHERE id = $1`, admin.ID); v != "true" {
			t.Error("the presence batches recorded a time in the future, or moved last seen backwards")
		}
		if _, err := w.app.Exec(`SELECT * FROM app_presence_offline(array(SELECT generate_series(1, 10001))::bigint[], now())`); err == nil {
			t.Error("the presence gate took more than 10000 users")
		}
	})
}

// TestNoticeTexts: every change a group makes, stored with its notice after it, passes the
// notice gate, and the body the database writes is the text the Go code announces.
func TestNoticeTexts(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	admin := storetest.MustSignIn(t, db, "a1", "김민준", "org-a", "zone-a", messenger.RoleTeacher)
	member := storetest.MustSignIn(t, db, "a3", "박지호", "org-a", "zone-a", messenger.RoleParent)
	late := storetest.MustSignIn(t, db, "a4", "정하준", "org-a", "zone-a", messenger.RoleStudent)
	later := storetest.MustSignIn(t, db, "a5", "이서연", "org-a", "zone-a", messenger.RoleStudent)
	var group int64
	step := func(u messenger.User, what string, change func(tx *store.Tx) error, ev messenger.SystemEvent) {
		t.Helper()
		if err := db.InTx(ctx, u.Identity(), func(tx *store.Tx) error {
			if change != nil {
				if err := change(tx); err != nil {
					return err
				}
			}
			m, err := tx.InsertNotice(ctx, group, ev)
			if err != nil {
				return err
			}
			msgs, err := tx.MessagesAfter(ctx, group, m.Seq-1, 1)
			if u.ID == member.ID && ev.Type == messenger.EventLeft {
				return nil // having left, they read nothing of it
			}
			if err == nil && (len(msgs) != 1 || msgs[0].Body != ev.Korean() || msgs[0].Body != m.Body) {
				t.Errorf("%s: stored %+v, want the body %q", what, msgs, ev.Korean())
			}
			return err
		}); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	if err := db.InTx(ctx, admin.Identity(), func(tx *store.Tx) (err error) {
		group, err = tx.CreateGroup(ctx, "5학년 2반", []int64{member.ID})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	step(admin, "invited", func(tx *store.Tx) error {
		_, err := tx.AddMembers(ctx, group, []int64{late.ID, later.ID})
		return err
	}, messenger.SystemEvent{Type: messenger.EventInvited, Actor: admin.Name, Targets: []string{late.Name, later.Name}})
	step(admin, "renamed", func(tx *store.Tx) error { return tx.Rename(ctx, group, "5학년 2반 학부모방") },
		messenger.SystemEvent{Type: messenger.EventRenamed, Actor: admin.Name, Title: "5학년 2반 학부모방"})
	step(admin, "removed", func(tx *store.Tx) error { return tx.RemoveMember(ctx, group, later.ID) },
		messenger.SystemEvent{Type: messenger.EventRemoved, Actor: admin.Name, Targets: []string{later.Name}})
	step(admin, "admin granted", func(tx *store.Tx) error { return tx.SetMemberRole(ctx, group, late.ID, messenger.ConvAdmin) },
		messenger.SystemEvent{Type: messenger.EventAdminGranted, Actor: admin.Name, Targets: []string{late.Name}})
	step(admin, "admin revoked", func(tx *store.Tx) error { return tx.SetMemberRole(ctx, group, late.ID, messenger.ConvMember) },
		messenger.SystemEvent{Type: messenger.EventAdminRevoked, Actor: admin.Name, Targets: []string{late.Name}})
	step(member, "left", func(tx *store.Tx) error { return tx.Leave(ctx, group) },
		messenger.SystemEvent{Type: messenger.EventLeft, Actor: member.Name})
	// The last admin leaves: the role passes first, then the two notices.
	if err := db.InTx(ctx, admin.Identity(), func(tx *store.Tx) error {
		if heir, err := tx.PassAdmin(ctx, group); err != nil || heir != late.ID {
			return fmt.Errorf("heir %d, %v", heir, err)
		}
		if err := tx.Leave(ctx, group); err != nil {
			return err
		}
		for _, ev := range []messenger.SystemEvent{
			{Type: messenger.EventLeft, Actor: admin.Name},
			{Type: messenger.EventAdminPassed, Actor: admin.Name, Targets: []string{late.Name}},
		} {
			if _, err := tx.InsertNotice(ctx, group, ev); err != nil {
				return fmt.Errorf("%s: %w", ev.Type, err)
			}
		}
		return nil
	}); err != nil {
		t.Errorf("the last admin leaving: %v", err)
	}
	if err := db.InTx(ctx, late.Identity(), func(tx *store.Tx) error {
		msgs, err := tx.MessagesAfter(ctx, group, 0, 20)
		var bodies []string
		for _, m := range msgs {
			bodies = append(bodies, m.Body)
		}
		if got := strings.Join(bodies, "|"); !strings.HasSuffix(got, "|김민준님이 나갔습니다.|정하준님이 방장이 되었습니다.") {
			t.Errorf("the group reads %q", got)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
