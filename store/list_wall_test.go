package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"github.com/lib/pq"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

// TestListPageWall: app_list_page and app_list_members, the conversation list past the
// per-row policies, answer a member their conversation with its last message, the read
// count the policies would let them make and its members, and nothing of it to a member
// of the organization who is not in it, to a member who left, or to another
// organization's user.
func TestListPageWall(t *testing.T) {
	ctx := context.Background()
	db, d := storetest.NewDB(t)
	w := newWall(t, d)
	admin := storetest.MustSignIn(t, db, "pr1", "김민준", "org-pr", "zone-pr", messenger.RoleTeacher)
	member := storetest.MustSignIn(t, db, "pr2", "이서연", "org-pr", "zone-pr", messenger.RoleParent)
	leaver := storetest.MustSignIn(t, db, "pr3", "박지호", "org-pr", "zone-pr", messenger.RoleParent)
	outsider := storetest.MustSignIn(t, db, "pr4", "정하준", "org-pr", "zone-pr", messenger.RoleStudent)
	other := storetest.MustSignIn(t, db, "pr5", "최유나", "org-pr-b", "zone-pr-b", messenger.RoleTeacher)

	var group, seq, msgID int64
	err := db.InTx(ctx, admin.Identity(), func(tx *store.Tx) error {
		var err error
		if group, err = tx.CreateGroup(ctx, "목록", []int64{member.ID, leaver.ID}); err != nil {
			return err
		}
		m, err := tx.InsertMessage(ctx, group, store.NewMessage{Kind: messenger.MessageText, Body: "안녕하세요"})
		seq, msgID = m.Message.Seq, m.Message.ID
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []messenger.User{member, leaver} {
		if err := db.InTx(ctx, u.Identity(), func(tx *store.Tx) error { _, _, err := tx.MarkRead(ctx, group, seq); return err }); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.InTx(ctx, leaver.Identity(), func(tx *store.Tx) error { return tx.Leave(ctx, group) }); err != nil {
		t.Fatal(err)
	}

	// page answers what app_list_page gives u of the group, as "conversation:last
	// message:readers", and
	// the same count under the policies.
	page := func(u messenger.User) (gate []string, policies int64) {
		t.Helper()
		tx := w.begin(u)
		defer tx.Rollback()
		rows, err := tx.Query(`SELECT id, message_id, readers FROM app_list_page('infinity', 9223372036854775807, 50)`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var c, n int64
			var m sql.NullInt64
			if err := rows.Scan(&c, &m, &n); err != nil {
				t.Fatal(err)
			}
			if c == group { // besides: their zone's announcements, as a member of them
				gate = append(gate, fmt.Sprintf("%d:%d:%d", c, m.Int64, n))
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if err := tx.QueryRow(`SELECT count(*) FROM read_receipts WHERE conversation_id = $1 AND last_read_seq >= $2 AND user_id <> $3`,
			group, seq, admin.ID).Scan(&policies); err != nil {
			t.Fatal(err)
		}
		return gate, policies
	}
	// The member and the admin: the member's watermark and the leaver's (a watermark
	// outlives its membership, and the policies count it too); never the sender's own.
	want := fmt.Sprintf("%d:%d:2", group, msgID)
	for _, u := range []messenger.User{member, admin} {
		gate, policies := page(u)
		if len(gate) != 1 || gate[0] != want || policies != 2 {
			t.Errorf("%s: the gate answers %v, the policies %d; want [%s] and 2", u.Sub, gate, policies, want)
		}
	}
	for _, u := range []messenger.User{leaver, outsider, other} {
		if gate, policies := page(u); len(gate) != 0 || policies != 0 {
			t.Errorf("%s (not a member): the gate answers %v, the policies %d; want nothing", u.Sub, gate, policies)
		}
	}
	// The list's first members: the group's three to the member and the admin (the leaver
	// is not one any more), nothing to the others.
	for u, want := range map[messenger.User]int{member: 2, admin: 2, leaver: 0, outsider: 0, other: 0} {
		tx := w.begin(u)
		var n int
		if err := tx.QueryRow(`SELECT count(*) FROM app_list_members($1, 5)`, pq.Array([]int64{group})).Scan(&n); err != nil {
			t.Fatal(err)
		}
		tx.Rollback()
		if n != want {
			t.Errorf("%s: app_list_members answers %d members of the group, want %d", u.Sub, n, want)
		}
	}
	// Only the application's role may call it, not every role of the database.
	for _, fn := range []string{"app_list_page(timestamptz, bigint, integer)", "app_list_members(bigint[], integer)"} {
		var public bool
		if err := w.owner.QueryRow(`SELECT has_function_privilege('public', $1, 'EXECUTE')`, fn).Scan(&public); err != nil {
			t.Fatal(err)
		}
		if public {
			t.Errorf("%s is executable by PUBLIC", fn)
		}
	}
}
