package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

// TestZoneSignInsDoNotQueue: a first sign-in joins the zone's announcement conversation;
// while another member change of that conversation is still in its transaction (a school's
// morning of first sign-ins), a new user's sign-in goes through at once instead of waiting
// for the announcement's row, and a group still counts its members.
func TestZoneSignInsDoNotQueue(t *testing.T) {
	db, d := storetest.NewDB(t)
	storetest.MustSignIn(t, db, "zone-p-1", "학부모 1", "org-z", "zone-z", messenger.RoleParent)
	second := storetest.MustSignIn(t, db, "zone-p-2", "학부모 2", "org-z", "zone-z", messenger.RoleParent)

	owner := storetest.Conn(t, d.OwnerDSN)
	tx, err := owner.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	res, err := tx.Exec(`UPDATE conversation_participants p SET left_at = now()
		  FROM conversations c WHERE c.id = p.conversation_id AND c.kind = 'announcement' AND p.user_id = $1`, second.ID)
	if n, _ := res.RowsAffected(); err != nil || n != 1 {
		t.Fatalf("the open member change: %v (%d rows)", err, n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := db.SignIn(ctx, store.SignInParams{Issuer: "dreamseed-portal", Sub: "zone-p-3", OrgID: "org-z", ZoneID: "zone-z",
		Name: "학부모 3", Role: messenger.RoleParent, Locale: "ko"}); err != nil {
		t.Fatalf("a new user's sign-in while another member change of the zone is open: %v after %v", err, time.Since(start))
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}

	var zoneCount, members int64
	if err := owner.QueryRow(`SELECT member_count FROM conversations WHERE kind = 'announcement'`).Scan(&zoneCount); err != nil {
		t.Fatal(err)
	}
	if zoneCount != 0 {
		t.Errorf("the announcement conversation's member_count is %d, want 0 (not kept)", zoneCount)
	}
	if err := owner.QueryRow(`SELECT count(*) FROM conversation_participants p JOIN conversations c ON c.id = p.conversation_id
		 WHERE c.kind = 'announcement' AND p.left_at IS NULL`).Scan(&members); err != nil || members != 3 {
		t.Errorf("the zone's members: %d (%v), want 3", members, err)
	}
}
