package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/backup"
	"github.com/dreamseed/messenger/storage"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

const year = 365 * 24 * time.Hour

// archiveFixture is a group of three with a history, and the owner's connection.
type archiveFixture struct {
	db      *store.DB
	d       storetest.Database
	owner   *sql.DB
	members []messenger.User
	conv    int64
}

func newArchiveFixture(t *testing.T, org string) archiveFixture {
	t.Helper()
	db, d := storetest.NewDB(t)
	f := archiveFixture{db: db, d: d, owner: storetest.Conn(t, d.OwnerDSN)}
	for i, role := range []string{messenger.RoleTeacher, messenger.RoleParent, messenger.RoleParent} {
		f.members = append(f.members, storetest.MustSignIn(t, db, fmt.Sprintf("%s-%d", org, i), fmt.Sprintf("사람 %d", i), org, "", role))
	}
	err := db.InTx(context.Background(), f.members[0].Identity(), func(tx *store.Tx) error {
		var err error
		f.conv, err = tx.CreateGroup(context.Background(), "보관", []int64{f.members[1].ID, f.members[2].ID})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// send stores n messages through the send gate, each from the next member in turn, and
// answers their client_msg_ids.
func (f archiveFixture) send(t *testing.T, n int, from int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		u := f.members[(from+i)%len(f.members)]
		id := uuid.NewString()
		ids = append(ids, id)
		err := f.db.InTx(context.Background(), messenger.Identity{}, func(tx *store.Tx) error {
			res, err := tx.InsertMessages(context.Background(), []store.SendGroup{{ConvID: f.conv,
				Sends: []store.BatchSend{{Sender: u.Identity(), Body: fmt.Sprintf("메시지 %d", from+i), ClientMsgID: &id}}}})
			if err == nil && res[0][0].Err != nil {
				err = res[0][0].Err
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// age makes the messages with seq up to through daysAgo days old, each a minute after the
// one before (as the owner: nobody else may write a message's time).
func (f archiveFixture) age(t *testing.T, through int64, daysAgo int) {
	t.Helper()
	_, err := f.owner.Exec(`UPDATE messages SET created_at = now() - make_interval(days => $3) + seq * interval '1 minute'
		WHERE conversation_id = $1 AND seq <= $2`, f.conv, through, daysAgo)
	if err != nil {
		t.Fatal(err)
	}
}

func (f archiveFixture) archive(t *testing.T, batch int) store.ArchiveResult {
	t.Helper()
	res, err := f.db.Archive(context.Background(), store.ArchiveOptions{OlderThan: year, Batch: batch}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// sides answers the seqs of the conversation in messages and in messages_archive, and its
// boundary, as the owner.
func (f archiveFixture) sides(t *testing.T) (hot, cold []int64, boundary int64) {
	t.Helper()
	read := func(table string) []int64 {
		var seqs pq.Int64Array
		if err := f.owner.QueryRow(`SELECT coalesce(array_agg(seq ORDER BY seq), '{}') FROM `+table+` WHERE conversation_id = $1`,
			f.conv).Scan(&seqs); err != nil {
			t.Fatal(err)
		}
		return seqs
	}
	if err := f.owner.QueryRow(`SELECT archived_through_seq FROM conversations WHERE id = $1`, f.conv).Scan(&boundary); err != nil {
		t.Fatal(err)
	}
	return read("messages"), read("messages_archive"), boundary
}

// history reads the whole conversation as u the ways a client does: every page from the
// newest down (page messages each, before_seq), every catch-up from the start (after_seq),
// and a few pages at given places.
func (f archiveFixture) history(t *testing.T, u messenger.User, page int) map[string][]messenger.Message {
	t.Helper()
	out := map[string][]messenger.Message{}
	err := f.db.InTx(context.Background(), u.Identity(), func(tx *store.Tx) error {
		ctx := context.Background()
		before := int64(0)
		for i := 0; ; i++ {
			msgs, err := tx.MessagesBefore(ctx, f.conv, before, page)
			if err != nil {
				return err
			}
			out[fmt.Sprintf("before page %d", i)] = msgs
			if len(msgs) < page {
				break
			}
			before = msgs[len(msgs)-1].Seq
		}
		after := int64(0)
		for i := 0; ; i++ {
			msgs, err := tx.MessagesAfter(ctx, f.conv, after, page)
			if err != nil {
				return err
			}
			out[fmt.Sprintf("after page %d", i)] = msgs
			if len(msgs) < page {
				break
			}
			after = msgs[len(msgs)-1].Seq
		}
		// The page read of the JSON API and the thread page (MessagePage), which says
		// whether more lie beyond: a page that has more is told by a key of its own.
		pages := func(name string, after bool) error {
			at := int64(0)
			for i := 0; ; i++ {
				msgs, more, err := tx.MessagePage(ctx, f.conv, after, at, page)
				if err != nil {
					return err
				}
				out[fmt.Sprintf("%s %d", name, i)] = msgs
				if !more {
					return nil
				}
				out[fmt.Sprintf("%s %d has more", name, i)] = nil
				at = msgs[len(msgs)-1].Seq
			}
		}
		if err := pages("message page before", false); err != nil {
			return err
		}
		if err := pages("message page after", true); err != nil {
			return err
		}
		for _, at := range []int64{2, 60, 99, 100, 101, 102, 115} {
			for _, after := range []bool{false, true} {
				from := at
				if after {
					from = at - 2
				}
				msgs, more, err := tx.MessagePage(ctx, f.conv, after, from, page)
				if err != nil {
					return err
				}
				out[fmt.Sprintf("message page at %d after %v more %v", from, after, more)] = msgs
			}
		}
		for _, at := range []int64{2, 60, 99, 100, 101, 102, 115} {
			msgs, err := tx.MessagesBefore(ctx, f.conv, at, page)
			if err != nil {
				return err
			}
			out[fmt.Sprintf("before %d", at)] = msgs
			if msgs, err = tx.MessagesAfter(ctx, f.conv, at-2, page); err != nil {
				return err
			}
			out[fmt.Sprintf("after %d", at-2)] = msgs
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestArchivePagesSeamless: after a conversation's old messages move to the archive, every
// page a reader asks for — above the boundary, below it, across it, forwards and
// backwards — is the same as before, message for message (ids, seqs, bodies, senders,
// runs, read counts), and the newest message stays hot.
func TestArchivePagesSeamless(t *testing.T) {
	f := newArchiveFixture(t, "org-arch")
	f.send(t, 120, 0)
	f.age(t, 100, 400) // seq 1..100 a year and more old, 101..120 new
	// Two readers with different watermarks: read counts must not change either.
	err := f.db.InTx(context.Background(), f.members[1].Identity(), func(tx *store.Tx) error {
		_, _, err := tx.MarkRead(context.Background(), f.conv, 90)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	before := map[int]map[string][]messenger.Message{}
	for _, page := range []int{7, 25, 51} {
		before[page] = f.history(t, f.members[2], page)
	}

	res := f.archive(t, 13)
	if res.Messages != 100 || res.Conversations != 1 || res.Batches != 8 {
		t.Fatalf("archived %+v, want 100 messages of 1 conversation in 8 batches", res)
	}
	hot, cold, boundary := f.sides(t)
	if boundary != 100 || len(cold) != 100 || cold[0] != 1 || cold[99] != 100 || len(hot) != 20 || hot[0] != 101 {
		t.Fatalf("boundary %d, archive %d seqs (%v…), hot %v", boundary, len(cold), cold[:min(3, len(cold))], hot)
	}
	if again := f.archive(t, 13); again.Messages != 0 {
		t.Fatalf("a second run moved %d messages", again.Messages)
	}

	for page, want := range before {
		got := f.history(t, f.members[2], page)
		for k, w := range want {
			if !reflect.DeepEqual(got[k], w) {
				t.Errorf("page size %d, %s: after archiving %v, before %v", page, k, seqsOf(got[k]), seqsOf(w))
				for i := range min(len(got[k]), len(w)) {
					if !reflect.DeepEqual(got[k][i], w[i]) {
						t.Errorf("  first difference: %+v, was %+v", got[k][i], w[i])
						break
					}
				}
			}
		}
		if len(got) != len(want) {
			t.Errorf("page size %d: %d reads, before %d", page, len(got), len(want))
		}
	}

	// Everything old: all but the last message moves; the newest page still reads.
	f.age(t, 120, 500)
	if res := f.archive(t, 1000); res.Messages != 19 {
		t.Fatalf("moved %d, want 19 (all but the last)", res.Messages)
	}
	hot, cold, boundary = f.sides(t)
	if boundary != 119 || len(cold) != 119 || len(hot) != 1 || hot[0] != 120 {
		t.Fatalf("boundary %d, archive %d, hot %v", boundary, len(cold), hot)
	}
	got := f.history(t, f.members[2], 25)
	if s := seqsOf(got["before page 0"]); len(s) != 25 || s[0] != 120 || s[24] != 96 {
		t.Fatalf("newest page %v", s)
	}
	if s := seqsOf(got["after page 0"]); len(s) != 25 || s[0] != 1 || s[24] != 25 {
		t.Fatalf("first catch-up %v", s)
	}
}

func seqsOf(msgs []messenger.Message) []int64 {
	out := make([]int64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Seq
	}
	return out
}

// archiveScans answers how often this connection has scanned messages_archive, by index or
// sequentially, since it last reported its counts (PostgreSQL's own count of table
// accesses, pg_stat_xact_user_tables).
func archiveScans(t *testing.T, ctx context.Context, tx *store.Tx) int64 {
	t.Helper()
	var n int64
	err := store.QueryRowIn(ctx, tx, `SELECT coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0)
		FROM pg_stat_xact_user_tables WHERE relname = 'messages_archive'`, &n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestArchiveNotReadAboveBoundary: a page whose messages are all hot (and the message before
// it too) does not touch the archive at all; one that crosses the boundary does.
func TestArchiveNotReadAboveBoundary(t *testing.T) {
	f := newArchiveFixture(t, "org-arch-scan")
	f.send(t, 80, 0)
	f.age(t, 40, 400)
	f.archive(t, 1000)
	ctx := context.Background()
	read := func(what string, fn func(tx *store.Tx) ([]messenger.Message, error), wantSeqs int, wantArchive bool) {
		t.Helper()
		err := f.db.InTx(ctx, f.members[1].Identity(), func(tx *store.Tx) error {
			// The counts of this connection not yet reported may include an earlier
			// transaction's: the read's own are the difference.
			scans := archiveScans(t, ctx, tx)
			msgs, err := fn(tx)
			if err != nil {
				return err
			}
			if len(msgs) != wantSeqs {
				t.Errorf("%s: %d messages, want %d", what, len(msgs), wantSeqs)
			}
			if n := archiveScans(t, ctx, tx) - scans; (n > 0) != wantArchive {
				t.Errorf("%s: %d scans of the archive, want archive read %v", what, n, wantArchive)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	read("the newest page", func(tx *store.Tx) ([]messenger.Message, error) { return tx.MessagesBefore(ctx, f.conv, 0, 30) }, 30, false)
	read("a page just above the boundary", func(tx *store.Tx) ([]messenger.Message, error) { return tx.MessagesBefore(ctx, f.conv, 62, 20) }, 20, false)
	read("a catch-up", func(tx *store.Tx) ([]messenger.Message, error) { return tx.MessagesAfter(ctx, f.conv, 70, 50) }, 10, false)
	read("the conversation and its preview", func(tx *store.Tx) ([]messenger.Message, error) {
		c, err := tx.Conversation(ctx, f.conv)
		if err != nil || c.LastMessage == nil {
			return nil, fmt.Errorf("preview: %v", err)
		}
		return []messenger.Message{*c.LastMessage}, nil
	}, 1, false)
	read("a page across the boundary", func(tx *store.Tx) ([]messenger.Message, error) { return tx.MessagesBefore(ctx, f.conv, 50, 20) }, 20, true)
	read("a page starting at the boundary (the message before is archived)", func(tx *store.Tx) ([]messenger.Message, error) {
		return tx.MessagesBefore(ctx, f.conv, 61, 20)
	}, 20, true)
	read("a page in the archive", func(tx *store.Tx) ([]messenger.Message, error) { return tx.MessagesBefore(ctx, f.conv, 20, 10) }, 10, true)

	// The same through the page read of the API and the thread page (one statement).
	page := func(after bool, seq int64, limit int) func(tx *store.Tx) ([]messenger.Message, error) {
		return func(tx *store.Tx) ([]messenger.Message, error) {
			msgs, _, err := tx.MessagePage(ctx, f.conv, after, seq, limit)
			return msgs, err
		}
	}
	read("the newest message page", page(false, 0, 30), 30, false)
	read("a message page just above the boundary", page(false, 62, 20), 20, false)
	read("a catch-up message page", page(true, 70, 50), 10, false)
	read("a catch-up message page from the lowest hot message", page(true, 41, 50), 39, false)
	read("a message page across the boundary", page(false, 50, 20), 20, true)
	read("a catch-up message page across the boundary", page(true, 30, 20), 20, true)
	read("a message page in the archive", page(false, 20, 10), 10, true)
}

// TestArchiveWhileSending: archiving (two runs at once, small batches) while members send
// through the send gate loses nothing and stores nothing twice: every conversation's seqs
// are exactly 1..last_seq across both tables, every send is there once, and the
// consistency check (messenger check) passes.
func TestArchiveWhileSending(t *testing.T) {
	f := newArchiveFixture(t, "org-arch-live")
	first := f.send(t, 300, 0)
	f.age(t, 300, 400)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	sent := make([][]string, len(f.members))
	for i := range f.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := f.members[i]
			for j := range 60 {
				id := uuid.NewString()
				err := f.db.InTx(ctx, messenger.Identity{}, func(tx *store.Tx) error {
					res, err := tx.InsertMessages(ctx, []store.SendGroup{{ConvID: f.conv,
						Sends: []store.BatchSend{{Sender: u.Identity(), Body: fmt.Sprintf("동시 %d-%d", i, j), ClientMsgID: &id}}}})
					if err == nil && res[0][0].Err != nil {
						err = res[0][0].Err
					}
					return err
				})
				if err != nil {
					errs <- err
					return
				}
				sent[i] = append(sent[i], id)
			}
		}()
	}
	var moved [2]int64
	for i := range moved {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := f.db.Archive(ctx, store.ArchiveOptions{OlderThan: year, Batch: 7}, nil)
			if err != nil {
				errs <- err
			}
			moved[i] = res.Messages
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if rest := f.archive(t, 7); moved[0]+moved[1]+rest.Messages != 300 {
		t.Fatalf("moved %d + %d + %d, want 300", moved[0], moved[1], rest.Messages)
	}
	hot, cold, boundary := f.sides(t)
	if boundary != 300 || len(cold) != 300 || len(hot) != 180 {
		t.Fatalf("boundary %d, %d archived, %d hot", boundary, len(cold), len(hot))
	}
	all := append(cold, hot...)
	for i, s := range all {
		if s != int64(i+1) {
			t.Fatalf("seq %d at place %d: the seqs are not 1..%d once each", s, i+1, len(all))
		}
	}
	// Every client_msg_id once, in one table or the other.
	want := append([]string{}, first...)
	for _, ids := range sent {
		want = append(want, ids...)
	}
	var n int
	err := f.owner.QueryRow(`SELECT count(DISTINCT c) FROM (SELECT client_msg_id::text AS c FROM messages WHERE client_msg_id = ANY($1::uuid[])
		UNION ALL SELECT client_msg_id::text FROM messages_archive WHERE client_msg_id = ANY($1::uuid[])) x`, pq.Array(want)).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(want) || len(all) != len(want) {
		t.Fatalf("%d of %d sends found, %d messages", n, len(want), len(all))
	}
	checkConsistent(t, f.d.OwnerDSN)

	// The check sees the archive: a message gone from it is missing.
	if _, err := f.owner.Exec(`DELETE FROM messages_archive WHERE conversation_id = $1 AND seq = 150`, f.conv); err != nil {
		t.Fatal(err)
	}
	if r := runCheck(t, f.d.OwnerDSN); len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "missing at seq [150]") {
		t.Fatalf("check after deleting an archived message: %v", r.Problems)
	}
}

func runCheck(t *testing.T, dsn string) backup.Report {
	t.Helper()
	disk, err := storage.NewDisk(storage.DiskConfig{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	r, err := backup.Check(context.Background(), backup.Config{DatabaseURL: dsn, Storage: disk}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func checkConsistent(t *testing.T, dsn string) {
	t.Helper()
	if r := runCheck(t, dsn); !r.OK() {
		t.Fatalf("consistency check: %v", r.Problems)
	}
}

// TestArchiveWall: the archive is read as messages are (another organization's user, and a
// member who left, read nothing of it), and only the archive step writes it: the
// application's role can neither write the archive nor move messages itself, nor run the
// step inside a user's transaction or for messages younger than a day.
func TestArchiveWall(t *testing.T) {
	f := newArchiveFixture(t, "org-arch-wall")
	f.send(t, 30, 0)
	f.age(t, 20, 400)
	f.archive(t, 1000)
	outsider := storetest.MustSignIn(t, f.db, "arch-outsider", "남", "org-other", "", messenger.RoleTeacher)
	ctx := context.Background()
	count := func(u messenger.User, query string, args ...any) int {
		t.Helper()
		var n int
		err := f.db.InTx(ctx, u.Identity(), func(tx *store.Tx) error {
			return store.QueryRowIn(ctx, tx, query, &n, args...)
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(f.members[1], `SELECT count(*) FROM messages_archive`); n != 20 {
		t.Fatalf("a member reads %d archived messages, want 20", n)
	}
	if n := count(outsider, `SELECT count(*) FROM messages_archive`); n != 0 {
		t.Fatalf("another organization's user reads %d archived messages", n)
	}
	if n := count(outsider, `SELECT count(*) FROM messages_archive WHERE conversation_id = $1`, f.conv); n != 0 {
		t.Fatalf("another organization's user reads %d archived messages by conversation", n)
	}
	err := f.db.InTx(ctx, outsider.Identity(), func(tx *store.Tx) error {
		msgs, err := tx.MessagesBefore(ctx, f.conv, 15, 10)
		if err == nil && len(msgs) != 0 {
			t.Errorf("another organization's user reads a page of %d archived messages", len(msgs))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	refused := func(what string, u messenger.User, query string, args ...any) {
		t.Helper()
		err := f.db.InTx(ctx, u.Identity(), func(tx *store.Tx) error {
			var ignored any
			return store.QueryRowIn(ctx, tx, query, &ignored, args...)
		})
		var pqErr *pq.Error
		if !errors.As(err, &pqErr) || (pqErr.Code != "42501" && pqErr.Code != "22023") {
			t.Errorf("%s: %v, want a refusal", what, err)
		}
	}
	member := f.members[0]
	refused("a member inserting into the archive", member, `INSERT INTO messages_archive (id, conversation_id, org_id, seq, sender_id, kind, body, created_at)
		VALUES (999999, $1, $2, 1000, $3, 'text', '가짜', now()) RETURNING 1`, f.conv, member.OrgID, member.ID)
	refused("a member editing an archived message", member, `UPDATE messages_archive SET body = '고침' WHERE conversation_id = $1 RETURNING 1`, f.conv)
	refused("a member deleting archived messages", member, `DELETE FROM messages_archive WHERE conversation_id = $1 RETURNING 1`, f.conv)
	refused("a member deleting hot messages", member, `DELETE FROM messages WHERE conversation_id = $1 RETURNING 1`, f.conv)
	refused("a member moving the boundary", member, `UPDATE conversations SET archived_through_seq = 25 WHERE id = $1 RETURNING 1`, f.conv)
	refused("the archive step inside a user's transaction", member, `SELECT app_archive_conversation($1, interval '400 days', 10)`, f.conv)
	refused("the candidates inside a user's transaction", member, `SELECT app_archive_candidates(interval '400 days', 0, 10)`)
	refused("the archive step for young messages", messenger.User{}, `SELECT app_archive_conversation($1, interval '1 hour', 10)`, f.conv)
	hot, cold, _ := f.sides(t)
	if len(hot) != 10 || len(cold) != 20 {
		t.Fatalf("after the refusals: %d hot, %d archived", len(hot), len(cold))
	}
	// A member who left reads the archive no more.
	err = f.db.InTx(ctx, f.members[2].Identity(), func(tx *store.Tx) error { return tx.Leave(ctx, f.conv) })
	if err != nil {
		t.Fatal(err)
	}
	if n := count(f.members[2], `SELECT count(*) FROM messages_archive`); n != 0 {
		t.Fatalf("a member who left reads %d archived messages", n)
	}
}

// TestArchiveFileMessage: an archived file message keeps its files (a move is a DELETE,
// which must not unlink them), and deleting its file makes the archived message a
// tombstone, as it would a hot one.
func TestArchiveFileMessage(t *testing.T) {
	f := newArchiveFixture(t, "org-arch-file")
	ctx := context.Background()
	sender := f.members[0]
	upload, file := newUpload(t, f.db, sender, f.conv)
	if _, err := f.owner.Exec(`SELECT * FROM app_record_scan($1, 'test', 'clean', '', '', 1)`, file); err != nil {
		t.Fatal(err)
	}
	var fm store.FileMessage
	if err := f.db.InTx(ctx, sender.Identity(), func(tx *store.Tx) (err error) {
		fm, err = tx.StoreFileMessage(ctx, upload)
		return err
	}); err != nil || !fm.Created {
		t.Fatalf("store the file message: %+v, %v", fm, err)
	}
	f.send(t, 10, 1)
	f.age(t, 5, 400)
	if res := f.archive(t, 1000); res.Messages != 5 {
		t.Fatalf("moved %d, want 5", res.Messages)
	}
	page := func() messenger.Message {
		t.Helper()
		var msgs []messenger.Message
		err := f.db.InTx(ctx, f.members[1].Identity(), func(tx *store.Tx) (err error) {
			msgs, err = tx.MessagesBefore(ctx, f.conv, 3, 10)
			return err
		})
		if err != nil || len(msgs) != 2 || msgs[1].Seq != 1 {
			t.Fatalf("archived page: %v, %v", seqsOf(msgs), err)
		}
		return msgs[1]
	}
	m := page()
	if m.ID != fm.Message.ID || m.Kind != messenger.MessageFile || len(m.Files) != 1 || m.Files[0].ID != file || m.Deleted {
		t.Fatalf("the archived file message: %+v", m)
	}
	if err := f.db.InTx(ctx, sender.Identity(), func(tx *store.Tx) error {
		d, err := tx.DeleteFile(ctx, file)
		if err == nil && (!d.Deleted || !d.Tombstone) {
			err = fmt.Errorf("deleted %+v", d)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if m := page(); !m.Deleted || m.Body != "" || len(m.Files) != 0 {
		t.Fatalf("after deleting its file: %+v", m)
	}
	checkConsistent(t, f.d.OwnerDSN)
}
