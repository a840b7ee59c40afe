package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dreamseed/messenger"
)

// ArchiveOptions is what one archive run moves and how fast.
type ArchiveOptions struct {
	// OlderThan: messages older than this move (at least a day: the database refuses less).
	OlderThan time.Duration
	// Batch: the most messages one transaction moves (1 to 10000).
	Batch int
	// Pause: the wait after each batch, which leaves the database to the sends.
	Pause time.Duration
}

// DefaultArchive: messages a year old move, a thousand a transaction, without a pause.
var DefaultArchive = ArchiveOptions{OlderThan: 365 * 24 * time.Hour, Batch: 1000}

// ArchiveResult is what an archive run moved.
type ArchiveResult struct {
	Conversations int   // conversations with messages moved
	Messages      int64 // messages moved
	Batches       int   // transactions that moved messages
}

// archiveCandidates is how many conversations one look-up of the work answers.
const archiveCandidates = 500

// Archive moves every conversation's messages older than opt.OlderThan, but its last one,
// from messages to messages_archive (sql/024_archive.sql), each batch of one conversation
// in a transaction of its own that also raises the conversation's boundary, acting as
// nobody: sends and reads go on meanwhile, and a run stopped anywhere (ctx) leaves every
// conversation whole, to be continued by the next. progress, if not nil, is told the
// totals after each conversation.
func (db *DB) Archive(ctx context.Context, opt ArchiveOptions, progress func(ArchiveResult)) (ArchiveResult, error) {
	var res ArchiveResult
	if opt.OlderThan < 24*time.Hour || opt.Batch < 1 || opt.Batch > 10000 {
		return res, errors.New("archive: messages older than a day, 1 to 10000 a batch")
	}
	secs := opt.OlderThan.Seconds()
	var after int64
	for {
		var ids []int64
		err := db.InTx(ctx, messenger.Identity{}, func(tx *Tx) error {
			ids = ids[:0]
			rows, err := tx.tx.QueryContext(ctx,
				`SELECT app_archive_candidates($1 * interval '1 second', $2, $3)`, secs, after, archiveCandidates)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					return err
				}
				ids = append(ids, id)
			}
			return rows.Err()
		})
		if err != nil {
			return res, fmt.Errorf("archive: candidates: %w", err)
		}
		if len(ids) == 0 {
			return res, nil
		}
		for _, id := range ids {
			moved := false
			for {
				var n int64
				err := db.InTx(ctx, messenger.Identity{}, func(tx *Tx) error {
					return tx.tx.QueryRowContext(ctx, `SELECT app_archive_conversation($1, $2 * interval '1 second', $3)`,
						id, secs, opt.Batch).Scan(&n)
				})
				if err != nil {
					return res, fmt.Errorf("archive: conversation %d: %w", id, err)
				}
				if n == 0 {
					break
				}
				res.Messages += n
				res.Batches++
				moved = true
				if opt.Pause > 0 {
					if err := wait(ctx, opt.Pause); err != nil {
						return res, err
					}
				}
				if n < int64(opt.Batch) {
					break
				}
			}
			if moved {
				res.Conversations++
				if progress != nil {
					progress(res)
				}
			}
		}
		after = ids[len(ids)-1]
	}
}
