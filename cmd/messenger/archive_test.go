package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

// TestArchiveJob: the periodic archive job moves a conversation's old messages, all but its
// last, to the archive, with the configured age.
func TestArchiveJob(t *testing.T) {
	ctx := context.Background()
	db, d := storetest.NewDB(t)
	owner := storetest.Conn(t, d.OwnerDSN)
	a := storetest.MustSignIn(t, db, "job-a", "가", "org-job", "", messenger.RoleTeacher)
	b := storetest.MustSignIn(t, db, "job-b", "나", "org-job", "", messenger.RoleParent)
	var conv int64
	err := db.InTx(ctx, a.Identity(), func(tx *store.Tx) (err error) {
		if conv, err = tx.CreateGroup(ctx, "보관", []int64{b.ID}); err != nil {
			return err
		}
		for range 5 {
			if _, err := tx.InsertMessage(ctx, conv, store.NewMessage{Kind: messenger.MessageText, Body: "옛날"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Seq 1..4 forty days old, 5 today: a 30-day job moves 1..4.
	if _, err := owner.Exec(`UPDATE messages SET created_at = now() - interval '40 days' WHERE conversation_id = $1 AND seq <= 4`, conv); err != nil {
		t.Fatal(err)
	}
	w := &archiveWorker{db: db, opt: store.ArchiveOptions{OlderThan: 30 * 24 * time.Hour, Batch: 3},
		logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := w.Work(ctx, &river.Job[ArchiveArgs]{}); err != nil {
		t.Fatal(err)
	}
	var hot, cold, boundary int
	if err := owner.QueryRow(`SELECT (SELECT count(*) FROM messages WHERE conversation_id = $1),
		(SELECT count(*) FROM messages_archive WHERE conversation_id = $1),
		(SELECT archived_through_seq FROM conversations WHERE id = $1)`, conv).Scan(&hot, &cold, &boundary); err != nil {
		t.Fatal(err)
	}
	if hot != 1 || cold != 4 || boundary != 4 {
		t.Fatalf("after the job: %d hot, %d archived, boundary %d; want 1, 4, 4", hot, cold, boundary)
	}
	if w.Timeout(nil) != -1 || w.periodicJob(24*time.Hour) == nil {
		t.Fatal("the job must run without a timeout, on a schedule")
	}
}
