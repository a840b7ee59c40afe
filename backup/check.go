package backup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path"
	"sort"
	"time"

	"github.com/lib/pq"

	"github.com/dreamseed/messenger/storage"
)

// Report is what the consistency check found.
type Report struct {
	// Problems are worded for an operator, one a line; none means the check passed.
	Problems []string
	Counts   Counts
	Objects  ObjectTotals
}

// OK reports whether the check found no problem.
func (r Report) OK() bool { return len(r.Problems) == 0 }

func (r *Report) problemf(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// Check is the consistency check of the database at cfg.DatabaseURL and the file storage,
// read-only: every conversation's messages, hot and archived, are exactly seq 1..last_seq, each
// on its side of the archive boundary, every file message exists, no watermark (read,
// digest, push) passes last_seq, every live file row has its objects and every object a
// file row, and, when m is not nil (a restored backup), the counts are the manifest's.
//
// On a running system (m nil) storage moves while the check reads it: an object younger
// than cfg.CheckGrace with no row is an upload whose row is not committed yet, and an
// object missing whose file was deleted since the check's snapshot is not a problem.
// A restored copy has no such excuse.
func Check(ctx context.Context, cfg Config, m *Manifest) (Report, error) {
	var r Report
	lister, err := cfg.lister()
	if err != nil {
		return r, err
	}
	started := time.Now()
	snap, err := openSnapshot(ctx, cfg.DatabaseURL)
	if err != nil {
		return r, err
	}
	defer snap.close()
	tx := snap.tx
	if err := checkSequences(ctx, tx, &r); err != nil {
		return r, err
	}
	if err := checkArchive(ctx, tx, &r); err != nil {
		return r, err
	}
	if err := checkWatermarks(ctx, tx, &r); err != nil {
		return r, err
	}
	if r.Counts, err = readCounts(ctx, tx); err != nil {
		return r, err
	}
	fo, err := readFileObjects(ctx, tx)
	if err != nil {
		return r, err
	}
	if err := tx.Commit(); err != nil {
		return r, fmt.Errorf("database: %w", err)
	}
	if err := checkObjects(ctx, cfg, snap.db, lister, fo, m == nil, started, &r); err != nil {
		return r, err
	}
	if m != nil {
		compareManifest(m, &r)
	}
	return r, nil
}

// checkSequences finds the conversations whose messages are not exactly seq 1..last_seq,
// and words each: the seqs missing, the seqs stored twice, the seqs past last_seq.
func checkSequences(ctx context.Context, tx *sql.Tx, r *Report) error {
	const q = `
	WITH bad AS (
		SELECT c.id, c.last_seq
		  FROM conversations c LEFT JOIN ` + allMessages + ` m ON m.conversation_id = c.id
		 GROUP BY c.id, c.last_seq
		HAVING count(m.seq) <> c.last_seq OR count(DISTINCT m.seq) <> count(m.seq)
		    OR coalesce(max(m.seq), 0) <> c.last_seq OR coalesce(min(m.seq), 1) <> 1)
	SELECT b.id, b.last_seq,
	       coalesce((SELECT array_agg(s ORDER BY s) FROM (
	                   SELECT s FROM generate_series(1, b.last_seq) s
	                    WHERE NOT EXISTS (SELECT 1 FROM ` + allMessages + ` m WHERE m.conversation_id = b.id AND m.seq = s)
	                    LIMIT 10) missing), '{}'),
	       coalesce((SELECT array_agg(seq ORDER BY seq) FROM (
	                   SELECT seq FROM ` + allMessages + ` m WHERE m.conversation_id = b.id
	                    GROUP BY seq HAVING count(*) > 1 LIMIT 10) dup), '{}'),
	       (SELECT count(*) FROM ` + allMessages + ` m WHERE m.conversation_id = b.id AND (m.seq > b.last_seq OR m.seq < 1))
	  FROM bad b ORDER BY b.id`
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("check message seqs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, lastSeq, outside int64
		var missing, dup pq.Int64Array
		if err := rows.Scan(&id, &lastSeq, &missing, &dup, &outside); err != nil {
			return fmt.Errorf("check message seqs: %w", err)
		}
		if len(missing) > 0 {
			r.problemf("conversation %d: messages missing at seq %v (last_seq %d)", id, missing, lastSeq)
		}
		if len(dup) > 0 {
			r.problemf("conversation %d: more than one message at seq %v", id, dup)
		}
		if outside > 0 {
			r.problemf("conversation %d: %d messages outside seq 1..%d", id, outside, lastSeq)
		}
	}
	return rows.Err()
}

// allMessages is every message, hot and archived (sql/024_archive.sql), as a FROM item.
const allMessages = `(SELECT conversation_id, seq FROM messages UNION ALL SELECT conversation_id, seq FROM messages_archive)`

// checkArchive finds messages on the wrong side of their conversation's archive boundary
// (seq 1..archived_through_seq archived, the others hot), and files or uploads naming a
// message that is in neither table.
func checkArchive(ctx context.Context, tx *sql.Tx, r *Report) error {
	const q = `
	SELECT 'hot' AS side, m.conversation_id, count(*), c.archived_through_seq
	  FROM messages m JOIN conversations c ON c.id = m.conversation_id
	 WHERE m.seq <= c.archived_through_seq GROUP BY m.conversation_id, c.archived_through_seq
	UNION ALL
	SELECT 'archived', a.conversation_id, count(*), c.archived_through_seq
	  FROM messages_archive a JOIN conversations c ON c.id = a.conversation_id
	 WHERE a.seq > c.archived_through_seq GROUP BY a.conversation_id, c.archived_through_seq
	 ORDER BY 2, 1 LIMIT 1000`
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("check archive: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var side string
		var conv, n, boundary int64
		if err := rows.Scan(&side, &conv, &n, &boundary); err != nil {
			return fmt.Errorf("check archive: %w", err)
		}
		if side == "hot" {
			r.problemf("conversation %d: %d messages at or below its archive boundary %d are not archived", conv, n, boundary)
		} else {
			r.problemf("conversation %d: %d archived messages above its archive boundary %d", conv, n, boundary)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check archive: %w", err)
	}
	const files = `
	SELECT 'file', f.id::text, f.message_id FROM files f
	 WHERE f.message_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = f.message_id)
	   AND NOT EXISTS (SELECT 1 FROM messages_archive a WHERE a.id = f.message_id AND a.kind = 'file')
	UNION ALL
	SELECT 'upload', u.id::text, u.message_id FROM uploads u
	 WHERE u.message_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = u.message_id)
	   AND NOT EXISTS (SELECT 1 FROM messages_archive a WHERE a.id = u.message_id AND a.kind = 'file')
	 LIMIT 1000`
	rows, err = tx.QueryContext(ctx, files)
	if err != nil {
		return fmt.Errorf("check file messages: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var what, id string
		var msg int64
		if err := rows.Scan(&what, &id, &msg); err != nil {
			return fmt.Errorf("check file messages: %w", err)
		}
		r.problemf("%s %s: its message %d is in neither messages nor messages_archive", what, id, msg)
	}
	return rows.Err()
}

// checkWatermarks finds every mark of a member's position in a conversation past its last
// message: read receipts, the digest's and the push's marks.
func checkWatermarks(ctx context.Context, tx *sql.Tx, r *Report) error {
	const q = `
	SELECT w.kind, w.conversation_id, w.user_id, w.seq, c.last_seq
	  FROM (SELECT 'read receipt' AS kind, conversation_id, user_id, last_read_seq AS seq FROM read_receipts
	        UNION ALL SELECT 'digest mark', conversation_id, user_id, up_to_seq FROM digest_marks
	        UNION ALL SELECT 'push mark', conversation_id, user_id, seq FROM push_marks) w
	  JOIN conversations c ON c.id = w.conversation_id
	 WHERE w.seq > c.last_seq
	 ORDER BY w.conversation_id, w.user_id, w.kind
	 LIMIT 1000`
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("check watermarks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind string
		var conv, user, seq, lastSeq int64
		if err := rows.Scan(&kind, &conv, &user, &seq, &lastSeq); err != nil {
			return fmt.Errorf("check watermarks: %w", err)
		}
		r.problemf("conversation %d: user %d's %s is at seq %d, past last_seq %d", conv, user, kind, seq, lastSeq)
	}
	return rows.Err()
}

// checkObjects lists storage and compares it with the file rows.
func checkObjects(ctx context.Context, cfg Config, db *sql.DB, lister storage.Lister, fo fileObjects, live bool, started time.Time, r *Report) error {
	stored := map[string]storage.Object{}
	err := lister.List(ctx, func(o storage.Object) error {
		stored[o.Key] = o
		r.Objects.Count++
		r.Objects.Bytes += o.Size
		return nil
	})
	if err != nil {
		return err
	}
	for _, w := range fo.Wanted {
		o, ok := stored[w.Key]
		if ok && w.Size >= 0 && o.Size != w.Size {
			r.problemf("file %s: object %s is %d bytes, the row says %d", w.FileID, w.Key, o.Size, w.Size)
		}
		if ok {
			continue
		}
		if live {
			gone, err := goneSince(ctx, cfg, db, w)
			if err != nil {
				return err
			}
			if gone {
				continue
			}
		}
		r.problemf("file %s: object %s missing", w.FileID, w.Key)
	}
	var extra []string
	for key, o := range stored {
		if _, ok := fo.Dirs[path.Dir(key)]; ok {
			continue
		}
		if live && o.ModTime.After(started.Add(-cfg.checkGrace())) {
			continue // an upload whose row is not committed yet
		}
		extra = append(extra, key)
	}
	sort.Strings(extra)
	for _, key := range extra {
		r.problemf("object %s: no file row names it", key)
	}
	return nil
}

// goneSince reports whether an object missing from a running system went with its file,
// deleted after the check's snapshot (or appeared meanwhile after all).
func goneSince(ctx context.Context, cfg Config, db *sql.DB, w wantedObject) (bool, error) {
	if _, err := cfg.Storage.Stat(ctx, w.Key); err == nil {
		return true, nil
	} else if !errors.Is(err, storage.ErrNotFound) {
		return false, err
	}
	live, err := fileStillLive(ctx, db, w.FileID)
	return !live, err
}

// compareManifest words every count that differs from the backup's.
func compareManifest(m *Manifest, r *Report) {
	for _, c := range []struct {
		what      string
		got, want int64
	}{
		{"users", r.Counts.Users, m.Counts.Users},
		{"conversations", r.Counts.Conversations, m.Counts.Conversations},
		{"messages", r.Counts.Messages, m.Counts.Messages},
		{"files", r.Counts.Files, m.Counts.Files},
		{"objects", r.Objects.Count, m.Objects.Count},
		{"object bytes", r.Objects.Bytes, m.Objects.Bytes},
	} {
		if c.got != c.want {
			r.problemf("%s: %d, the backup's manifest says %d", c.what, c.got, c.want)
		}
	}
}
