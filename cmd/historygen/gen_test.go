package main

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/backup"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/storage"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// A small history: the consistency check passes, the counts are the plan's, and the five
// reads the bench measures answer what the rows say.
func TestLoadSmallHistory(t *testing.T) {
	ctx := context.Background()
	d := storetest.NewDatabase(t)
	cfg := Config{
		Users: 400, Conversations: 120, Messages: 10_000,
		BigGroups: 2, BigSize: 60, Classes: 20, ClassSize: 12, HeavyConvs: 60, HeavyClasses: 8,
		Zones: 3, Span: 30 * 24 * time.Hour, Seed: 3, Org: "bench-org",
	}
	p, err := Load(ctx, d.OwnerDSN, cfg)
	if err != nil {
		t.Fatal(err)
	}
	disk, err := storage.NewDisk(storage.DiskConfig{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	report, err := backup.Check(ctx, backup.Config{DatabaseURL: d.OwnerDSN, Storage: disk}, nil)
	if err != nil || !report.OK() {
		t.Fatalf("the consistency check: %v %q", err, report.Problems)
	}
	if report.Counts.Messages != 10_000 || report.Counts.Conversations != 120 || report.Counts.Users != 400 {
		t.Fatalf("counts %+v, want the config's", report.Counts)
	}
	if p.HeavyConvs != 60 || p.Thread == 0 || p.ThreadLastSeq < 2*int64(chat.PageSize) || p.HeavyUnread == 0 {
		t.Fatalf("plan %+v: not the heavy user asked for", p)
	}

	owner := storetest.Conn(t, d.OwnerDSN)
	// The keys dropped for the load are back, and the foreign keys the load did not check hold.
	var keys, orphans int
	if err := owner.QueryRow(`SELECT count(*) FROM pg_constraint WHERE conrelid = 'messages'::regclass AND contype IN ('p', 'u')`).Scan(&keys); err != nil || keys != 3 {
		t.Fatalf("messages has %d primary and unique keys (%v), want 3", keys, err)
	}
	if err := owner.QueryRow(`SELECT
		(SELECT count(*) FROM messages m WHERE NOT EXISTS (SELECT 1 FROM conversation_participants p WHERE p.conversation_id = m.conversation_id AND p.user_id = m.sender_id))
		+ (SELECT count(*) FROM read_receipts r WHERE NOT EXISTS (SELECT 1 FROM conversation_participants p WHERE p.conversation_id = r.conversation_id AND p.user_id = r.user_id))
		+ (SELECT count(*) FROM conversations c WHERE last_message_at <> coalesce((SELECT max(created_at) FROM messages m WHERE m.conversation_id = c.id), c.last_message_at))
		+ (SELECT count(*) FROM (SELECT m.conversation_id, m.sender_id, max(m.seq) AS s FROM messages m GROUP BY 1, 2) x
		    WHERE NOT EXISTS (SELECT 1 FROM read_receipts r WHERE r.conversation_id = x.conversation_id AND r.user_id = x.sender_id AND r.last_read_seq >= x.s))`).Scan(&orphans); err != nil || orphans != 0 {
		t.Fatalf("%d rows that the schema's keys and triggers would not have let be (%v)", orphans, err)
	}
	wantUnread := map[int64]int64{}
	rows, err := owner.Query(`SELECT c.id, c.last_seq - coalesce(r.last_read_seq, 0) FROM conversation_participants p
		JOIN conversations c ON c.id = p.conversation_id
		LEFT JOIN read_receipts r ON r.conversation_id = p.conversation_id AND r.user_id = p.user_id
		WHERE p.user_id = 1 AND c.last_seq > coalesce(r.last_read_seq, 0)`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		wantUnread[id] = n
	}
	rows.Close()
	if int64(len(wantUnread)) != p.HeavyUnread {
		t.Fatalf("the plan says %d conversations unread, the rows %d", p.HeavyUnread, len(wantUnread))
	}

	db, err := store.Open(ctx, d.AppDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	id := messenger.Identity{UserID: p.UserID, OrgID: p.OrgID, ZoneID: p.ZoneID}
	err = db.InTx(ctx, id, func(tx *store.Tx) error {
		counts, err := tx.UnreadCounts(ctx)
		if err != nil {
			return err
		}
		if len(counts) != len(wantUnread) {
			t.Errorf("unread counts of %d conversations, want %d", len(counts), len(wantUnread))
		}
		for c, n := range wantUnread {
			if counts[c] != n {
				t.Errorf("conversation %d: %d unread, want %d", c, counts[c], n)
			}
		}
		convs, err := tx.Conversations(ctx, nil, chat.PageSize+1)
		if err != nil {
			return err
		}
		if len(convs) != chat.PageSize+1 {
			t.Errorf("the list has %d conversations, want %d", len(convs), chat.PageSize+1)
		}
		for i := 1; i < len(convs); i++ {
			if convs[i].LastMessageAt.After(*convs[i-1].LastMessageAt) {
				t.Errorf("the list is not newest first at %d", i)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Each read of the bench, checked by the bench's own checks (which fail on a wrong page).
	reads := storeReads(ctx, db, p)
	rng := rand.New(rand.NewPCG(1, 1))
	for _, name := range readNames {
		if err := reads(name, rng); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// And a wrong page is one the checks see.
	if err := checkSeqs([]int64{p.ThreadLastSeq, p.ThreadLastSeq - 2}, p, 0, false, 2); err == nil {
		t.Error("a page with a gap passed the check")
	}
}
