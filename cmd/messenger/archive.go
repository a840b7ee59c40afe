package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

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
