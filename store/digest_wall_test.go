package store_test

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

// TestDigestOutboxWall: a user's SQL reads and writes only their own digest being sent and
// their own used unsubscribe links: it cannot record a digest for someone else, read or drop
// theirs, or use up another user's unsubscribe link.
func TestDigestOutboxWall(t *testing.T) {
	ctx := context.Background()
	db, d := storetest.NewDB(t)
	w := newWall(t, d)
	me := storetest.MustSignIn(t, db, "d1", "김민준", "org-a", "zone-a", messenger.RoleParent)
	peer := storetest.MustSignIn(t, db, "d2", "박지호", "org-a", "zone-a", messenger.RoleTeacher)
	if err := db.InTx(ctx, peer.Identity(), func(tx *store.Tx) error {
		if _, err := tx.RecordDigestSending(ctx, "<abc@school.example>", map[int64]int64{}); err != nil {
			return err
		}
		h := sha256.Sum256([]byte("peer nonce"))
		_, err := tx.UseUnsubscribe(ctx, h[:], time.Now().Add(time.Hour))
		return err
	}); err != nil {
		t.Fatal(err)
	}

	if n := w.count(me, `SELECT 1 FROM digest_outbox`); n != 0 {
		t.Errorf("%d outbox rows of another user visible", n)
	}
	if n := w.count(me, `SELECT 1 FROM digest_unsubscribes`); n != 0 {
		t.Errorf("%d used links of another user visible", n)
	}
	w.refused("recording a digest for another user", me,
		`INSERT INTO digest_outbox (user_id, org_id, message_id, marks) VALUES ($1, $2, '<x@y.example>', '{}')`, peer.ID, peer.OrgID)
	w.refused("rewriting another user's digest", me, `UPDATE digest_outbox SET message_id = '<evil@y.example>'`)
	w.refused("dropping another user's digest", me, `DELETE FROM digest_outbox`)
	w.refused("using another user's unsubscribe link", me,
		`INSERT INTO digest_unsubscribes (nonce_hash, user_id, org_id, expires_at) VALUES (sha256('x'), $1, $2, now() + interval '1 hour')`, peer.ID, peer.OrgID)
	w.refused("forgetting a used link", me, `DELETE FROM digest_unsubscribes`)
	if v := w.value(`SELECT message_id FROM digest_outbox WHERE user_id = $1`, peer.ID); v != "<abc@school.example>" {
		t.Errorf("peer's digest is now %q", v)
	}
	// Digest marks go only to the user's own conversations, up to their last message.
	w.refused("marking a digest past the last message", me,
		`INSERT INTO digest_marks (conversation_id, user_id, org_id, up_to_seq)
		 SELECT p.conversation_id, $1, $2, 1000 FROM conversation_participants p WHERE p.user_id = $1 LIMIT 1`, me.ID, me.OrgID)
}
