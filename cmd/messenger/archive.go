package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/dreamseed/messenger/store"
)

// archive is `messenger archive`: one run of the archive step (store.DB.Archive) over every
// conversation, online (sends and reads go on; each batch is a short transaction of its
// own), logging its progress every 10 s and its totals at the end. Stopped by a signal, it
// leaves what it moved moved; the next run goes on from there.
func archive(ctx context.Context, opt store.ArchiveOptions, db *store.DB, logger *slog.Logger, stdout io.Writer) error {
	started := time.Now()
	last := started
	logger.Info("archive started", slog.Duration("older_than", opt.OlderThan), slog.Int("batch", opt.Batch),
		slog.Duration("pause", opt.Pause))
	res, err := db.Archive(ctx, opt, func(r store.ArchiveResult) {
		if time.Since(last) >= 10*time.Second {
			last = time.Now()
			logger.Info("archive progress", slog.Int("conversations", r.Conversations), slog.Int64("messages", r.Messages),
				slog.Int("batches", r.Batches))
		}
	})
	took := time.Since(started)
	rate := 0.0
	if took > 0 {
		rate = float64(res.Messages) / took.Seconds()
	}
	if err != nil {
		logger.Error("archive stopped", slog.String("error", err.Error()), slog.Int64("messages", res.Messages))
		return err
	}
	logger.Info("archive done", slog.Int("conversations", res.Conversations), slog.Int64("messages", res.Messages),
		slog.Int("batches", res.Batches), slog.Duration("took", took))
	fmt.Fprintf(stdout, "archived %d messages of %d conversations in %d batches, %.1f s (%.0f messages/s)\n",
		res.Messages, res.Conversations, res.Batches, took.Seconds(), rate)
	return nil
}

// ArchiveArgs is the periodic archive job (MESSENGER_ARCHIVE_EVERY): one run of the archive
// step, as `messenger archive` does.
type ArchiveArgs struct{}

// Kind names the job.
func (ArchiveArgs) Kind() string { return "archive" }

type archiveWorker struct {
	river.WorkerDefaults[ArchiveArgs]
	db     *store.DB
	opt    store.ArchiveOptions
	logger *slog.Logger
}

// periodicJob answers the job's schedule: every period, and at the start (River runs
// periodic jobs on its leader).
func (w *archiveWorker) periodicJob(every time.Duration) *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(every),
		func() (river.JobArgs, *river.InsertOpts) { return ArchiveArgs{}, nil },
		&river.PeriodicJobOpts{ID: "archive", RunOnStart: true})
}

// Timeout: none. A run ends when nothing is left to move; cut short (a shutdown), what it
// moved stays moved and the next run goes on from there.
func (w *archiveWorker) Timeout(*river.Job[ArchiveArgs]) time.Duration { return -1 }

func (w *archiveWorker) Work(ctx context.Context, job *river.Job[ArchiveArgs]) error {
	started := time.Now()
	res, err := w.db.Archive(ctx, w.opt, nil)
	if err != nil {
		return err
	}
	if res.Messages > 0 {
		w.logger.InfoContext(ctx, "archive done", slog.Int("conversations", res.Conversations),
			slog.Int64("messages", res.Messages), slog.Int("batches", res.Batches), slog.Duration("took", time.Since(started)))
	}
	return nil
}
