package store_test

import (
	"context"
	"crypto/sha256"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

// TestNotificationsWall: the database alone keeps notification rows their owner's. Acting
// as real users, hand-written SQL cannot read or write another user's settings, mute or
// keywords, subscriptions, tickets or digest marks; cannot make a ticket for someone else
// or one that lives longer than 5 minutes, use a ticket, or call the jobs' gates; a ticket
// is used once; an endpoint another user held moves to the one whose browser subscribes.
func TestNotificationsWall(t *testing.T) {
	ctx := context.Background()
	db, d := storetest.NewDB(t)
	w := newWall(t, d)

	me := storetest.MustSignIn(t, db, "n1", "김민준", "org-a", "zone-a", messenger.RoleParent)
	peer := storetest.MustSignIn(t, db, "n2", "박지호", "org-a", "zone-a", messenger.RoleTeacher)
	outsider := storetest.MustSignIn(t, db, "n3", "이서연", "org-a", "zone-a", messenger.RoleStudent)
	other := storetest.MustSignIn(t, db, "n4", "최유나", "org-b", "zone-b", messenger.RoleTeacher)

	var direct int64
	if err := db.InTx(ctx, me.Identity(), func(tx *store.Tx) (err error) {
		direct, _, err = tx.DirectConversation(ctx, peer.ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.try(peer, `INSERT INTO user_settings (user_id, org_id, quiet_custom, quiet_from, quiet_to, time_zone)
	                          VALUES ($1, $2, true, '21:00', '08:00', 'Asia/Seoul')`, peer.ID, peer.OrgID); err != nil {
		t.Fatalf("a user writing their own settings: %v", err)
	}
	if _, err := w.try(me, `UPDATE conversation_participants SET muted_until = 'infinity', keywords = '{숙제}'
	                        WHERE conversation_id = $1 AND user_id = $2`, direct, me.ID); err != nil {
		t.Fatalf("a user muting their own membership: %v", err)
	}

	t.Run("every table of the schema has forced row-level security", func(t *testing.T) {
		w := wall{t: t, app: w.app, owner: w.owner}
		if v := w.value(`SELECT string_agg(relname, ' ' ORDER BY relname) FROM pg_class
		                  WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'
		                    AND relname NOT LIKE 'river%' AND relname <> 'schema_migrations'
		                    AND NOT (relrowsecurity AND relforcerowsecurity)`); v != "" {
			t.Errorf("tables without forced row-level security: %s", v)
		}
	})

	t.Run("settings and mute are one's own", func(t *testing.T) {
		w := wall{t: t, app: w.app, owner: w.owner}
		w.refused("writing another user's settings", me,
			`UPDATE user_settings SET quiet_custom = false, quiet_from = NULL, quiet_to = NULL WHERE user_id = $1`, peer.ID)
		w.refused("creating another user's settings", me,
			`INSERT INTO user_settings (user_id, org_id, email) VALUES ($1, $2, false)`, outsider.ID, outsider.OrgID)
		if n := w.count(me, `SELECT * FROM user_settings`); n != 0 {
			t.Errorf("a user sees %d settings rows of others", n)
		}
		w.refused("muting another member", me,
			`UPDATE conversation_participants SET muted_until = 'infinity', keywords = '{x}' WHERE conversation_id = $1 AND user_id = $2`,
			direct, peer.ID)
		if v := w.value(`SELECT coalesce(muted_until::text, '-') || ' ' || keywords::text FROM conversation_participants
		                 WHERE conversation_id = $1 AND user_id = $2`, direct, peer.ID); v != "- {}" {
			t.Errorf("the peer's membership is now %q", v)
		}
		_, err := w.try(me, `UPDATE conversation_participants SET keywords = $3 WHERE conversation_id = $1 AND user_id = $2`,
			direct, me.ID, pq.Array(make([]string, 101)))
		refusedWith(t, "101 keywords", err, "23514")
		_, err = w.try(me, `UPDATE conversation_participants SET keywords = $3 WHERE conversation_id = $1 AND user_id = $2`,
			direct, me.ID, pq.Array([]string{strings.Repeat("가", 101)}))
		refusedWith(t, "a keyword of 101 characters", err, "23514")
		_, err = w.try(me, `INSERT INTO user_settings (user_id, org_id, time_zone) VALUES ($1, $2, 'Mars/Olympus')`, me.ID, me.OrgID)
		refusedWith(t, "an unknown time zone", err, "23514")
	})

	t.Run("quiet hours of a 1:1 partner only", func(t *testing.T) {
		w := wall{t: t, app: w.app, owner: w.owner}
		tx := w.begin(me)
		var from, to string
		err := tx.QueryRow(`SELECT quiet_from::text, quiet_to::text FROM app_partner_quiet_hours($1)`, direct).Scan(&from, &to)
		tx.Rollback()
		if err != nil || from != "21:00:00" || to != "08:00:00" {
			t.Errorf("the partner's quiet hours: %q-%q, %v", from, to, err)
		}
		w.refused("an outsider asking a 1:1's quiet hours", outsider, `SELECT * FROM app_partner_quiet_hours($1)`, direct)
		w.refused("another organization asking", other, `SELECT * FROM app_partner_quiet_hours($1)`, direct)
	})

	t.Run("the jobs' gates are not a user's", func(t *testing.T) {
		w := wall{t: t, app: w.app, owner: w.owner}
		w.refused("a user reading members' notification settings", me, `SELECT * FROM app_notify_members($1)`, direct)
		w.refused("a user reading another's identity", me, `SELECT * FROM app_identity_of($1)`, peer.ID)
		w.refused("a user reading subscriptions", me, `SELECT * FROM app_push_subscriptions_of($1)`, pq.Array([]int64{peer.ID}))
		w.refused("a user dropping a subscription", me, `SELECT app_push_subscription_gone($1)`, uuid.NewString())
		w.refused("a user listing digest candidates", me, `SELECT * FROM app_digest_candidates(now(), 1, 10)`)
		w.refused("a user redeeming a ticket inside their transaction", me, `SELECT * FROM app_redeem_push_ticket($1)`, make([]byte, 32))
	})

	t.Run("subscriptions and tickets", func(t *testing.T) {
		w := wall{t: t, app: w.app, owner: w.owner}
		endpoint := "https://push.example.com/send/abc"
		save := `SELECT app_save_push_subscription($1, $2, 'BPk1', 'au_th', 'Chrome')`
		if _, err := w.try(peer, save, uuid.NewString(), endpoint); err != nil {
			t.Fatalf("saving a subscription: %v", err)
		}
		w.refused("inserting a subscription past the gate", me,
			`INSERT INTO push_subscriptions (id, user_id, org_id, endpoint, p256dh, auth) VALUES ($1, $2, $3, 'https://x.example/1', 'a', 'b')`,
			uuid.NewString(), peer.ID, peer.OrgID)
		w.refused("deleting another user's subscription", me, `DELETE FROM push_subscriptions`)
		w.refused("renaming another user's device", me, `UPDATE push_subscriptions SET browser = 'x'`)
		if n := w.count(me, `SELECT * FROM push_subscriptions`); n != 0 {
			t.Errorf("a user sees %d subscriptions of others", n)
		}
		// The same browser subscribing for me takes the endpoint over.
		if _, err := w.try(me, save, uuid.NewString(), endpoint); err != nil {
			t.Fatalf("resubscribing the endpoint: %v", err)
		}
		if v := w.value(`SELECT user_id FROM push_subscriptions WHERE endpoint = $1`, endpoint); v != strconv.FormatInt(me.ID, 10) {
			t.Errorf("the endpoint belongs to user %s, want %d", v, me.ID)
		}

		tok := sha256.Sum256([]byte("ticket"))
		w.refused("a ticket for another user", me,
			`INSERT INTO push_tickets (token_hash, user_id, org_id, expires_at) VALUES ($1, $2, $3, now() + interval '1 minute')`,
			tok[:], peer.ID, peer.OrgID)
		w.refused("a ticket for an hour", me,
			`INSERT INTO push_tickets (token_hash, user_id, org_id, expires_at) VALUES ($1, $2, $3, now() + interval '1 hour')`,
			tok[:], me.ID, me.OrgID)
		w.refused("a ticket made used", me,
			`INSERT INTO push_tickets (token_hash, user_id, org_id, expires_at, used_at) VALUES ($1, $2, $3, now() + interval '1 minute', now())`,
			tok[:], me.ID, me.OrgID)
		if _, err := w.try(me, `INSERT INTO push_tickets (token_hash, user_id, org_id, expires_at) VALUES ($1, $2, $3, now() + interval '5 minutes')`,
			tok[:], me.ID, me.OrgID); err != nil {
			t.Fatalf("a user's own ticket: %v", err)
		}
		w.refused("a user using their ticket by hand", me, `UPDATE push_tickets SET used_at = NULL`)
		var first, second int64
		_ = w.app.QueryRow(`SELECT user_id FROM app_redeem_push_ticket($1)`, tok[:]).Scan(&first)
		_ = w.app.QueryRow(`SELECT user_id FROM app_redeem_push_ticket($1)`, tok[:]).Scan(&second)
		if first != me.ID || second != 0 {
			t.Errorf("a ticket redeemed twice answered users %d then %d, want %d then none", first, second, me.ID)
		}
	})

	t.Run("digest marks", func(t *testing.T) {
		w := wall{t: t, app: w.app, owner: w.owner}
		w.refused("marking another user's digest", me,
			`INSERT INTO digest_marks (conversation_id, user_id, org_id, up_to_seq) VALUES ($1, $2, $3, 0)`, direct, peer.ID, peer.OrgID)
		w.refused("a mark past the last message", me,
			`INSERT INTO digest_marks (conversation_id, user_id, org_id, up_to_seq) VALUES ($1, $2, $3, 99)`, direct, me.ID, me.OrgID)
		w.refused("a mark where one is not a member", outsider,
			`INSERT INTO digest_marks (conversation_id, user_id, org_id, up_to_seq) VALUES ($1, $2, $3, 0)`, direct, outsider.ID, outsider.OrgID)
		w.refused("a digest sent in the future", me,
			`INSERT INTO digest_state (user_id, org_id, last_sent_at) VALUES ($1, $2, now() + interval '1 day')`, me.ID, me.OrgID)
	})
}
