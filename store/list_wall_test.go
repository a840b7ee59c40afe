package store_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/lib/pq"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

// TestPreviewReadersWall: app_preview_readers, the list previews' read counts past the
// per-row policies, answers a member the count the policies would let them make, and
// nothing of a conversation to a member of the organization who is not in it, to a
// member who left, or to another organization's user, whatever they name.
func TestPreviewReadersWall(t *testing.T) {
	ctx := context.Background()
	db, d := storetest.NewDB(t)
	w := newWall(t, d)
	admin := storetest.MustSignIn(t, db, "pr1", "김민준", "org-pr", "zone-pr", messenger.RoleTeacher)
	member := storetest.MustSignIn(t, db, "pr2", "이서연", "org-pr", "zone-pr", messenger.RoleParent)
	leaver := storetest.MustSignIn(t, db, "pr3", "박지호", "org-pr", "zone-pr", messenger.RoleParent)
	outsider := storetest.MustSignIn(t, db, "pr4", "정하준", "org-pr", "zone-pr", messenger.RoleStudent)
	other := storetest.MustSignIn(t, db, "pr5", "최유나", "org-pr-b", "zone-pr-b", messenger.RoleTeacher)

	var group, seq int64
	err := db.InTx(ctx, admin.Identity(), func(tx *store.Tx) error {
		var err error
		if group, err = tx.CreateGroup(ctx, "미리보기", []int64{member.ID, leaver.ID}); err != nil {
			return err
		}
		m, err := tx.InsertMessage(ctx, group, store.NewMessage{Kind: messenger.MessageText, Body: "안녕하세요"})
		seq = m.Message.Seq
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

	// counts answers the rows app_preview_readers gives u for the group's message, as
	// "conversation:readers", and what the same count under the policies gives.
	counts := func(u messenger.User) (gate []string, policies int64) {
		t.Helper()
		tx := w.begin(u)
		defer tx.Rollback()
		rows, err := tx.Query(`SELECT conversation_id, readers FROM app_preview_readers($1, $2, $3)`,
			pq.Array([]int64{group}), pq.Array([]int64{seq}), pq.Array([]int64{admin.ID}))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var c, n int64
			if err := rows.Scan(&c, &n); err != nil {
				t.Fatal(err)
			}
			gate = append(gate, strconv.FormatInt(c, 10)+":"+strconv.FormatInt(n, 10))
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
	for _, u := range []messenger.User{member, admin} {
		gate, policies := counts(u)
		if len(gate) != 1 || gate[0] != strconv.FormatInt(group, 10)+":2" || policies != 2 {
			t.Errorf("%s: the gate answers %v, the policies %d; want [%d:2] and 2", u.Sub, gate, policies, group)
		}
	}
	for _, u := range []messenger.User{leaver, outsider, other} {
		if gate, policies := counts(u); len(gate) != 0 || policies != 0 {
			t.Errorf("%s (not a member): the gate answers %v, the policies %d; want nothing", u.Sub, gate, policies)
		}
	}
	// Only the application's role may call it, not every role of the database.
	var public bool
	if err := w.owner.QueryRow(`SELECT has_function_privilege('public', 'app_preview_readers(bigint[], bigint[], bigint[])', 'EXECUTE')`).Scan(&public); err != nil {
		t.Fatal(err)
	}
	if public {
		t.Error("app_preview_readers is executable by PUBLIC")
	}
}
