package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/riverqueue/river"

	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/digest"
	"github.com/dreamseed/messenger/jobs"
	"github.com/dreamseed/messenger/scan"
	"github.com/dreamseed/messenger/storage"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/upload"
)

// pingTimeout bounds each start-up check of the file store and the scanner.
const pingTimeout = 10 * time.Second

// openStorage opens the file store MESSENGER_STORAGE_URL names and checks that it can be
// used, so that a wrong bucket or an unwritable disk stops the start, not the first upload.
// Its errors never carry the URL (it may hold a secret key).
func openStorage(ctx context.Context, cfg config, logger *slog.Logger) (storage.Store, error) {
	st, err := storage.OpenConfig(storage.Config{URL: cfg.StorageURL, DataDir: cfg.DataDir, MaxObjectBytes: cfg.MaxUploadBytes})
	if err != nil {
		return nil, fmt.Errorf("file storage (MESSENGER_STORAGE_URL): %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := st.Ping(pingCtx); err != nil {
		st.Close()
		return nil, fmt.Errorf("file storage (MESSENGER_STORAGE_URL) cannot be used: %w", err)
	}
	logger.Info("file storage", slog.String("store", fmt.Sprint(st)))
	return st, nil
}

// openScanner answers the virus scanner, checked to answer, or nil when there is none
// (dev mode, or MESSENGER_SCAN=off): then it says so loudly, since files are then stored and
// shown without a scan.
func openScanner(ctx context.Context, cfg config, logger *slog.Logger) (*scan.Client, error) {
	if cfg.ClamdAddr == "" {
		reason := "dev mode without MESSENGER_CLAMD_ADDR"
		if cfg.ScanOff {
			reason = "MESSENGER_SCAN=off"
		}
		logger.Warn("files are not virus-scanned: they are stored and shown unscanned (marked so); set MESSENGER_CLAMD_ADDR to scan them",
			slog.String("reason", reason))
		return nil, nil
	}
	c, err := scan.New(cfg.ClamdAddr, scan.Options{})
	if err != nil {
		return nil, fmt.Errorf("MESSENGER_CLAMD_ADDR: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := c.Ping(pingCtx); err != nil {
		return nil, fmt.Errorf("the virus scanner at %s (MESSENGER_CLAMD_ADDR) does not answer: %w; start clamd or correct the address", c.Addr(), err)
	}
	version, err := c.Version(pingCtx)
	if err != nil {
		return nil, fmt.Errorf("the virus scanner at %s (MESSENGER_CLAMD_ADDR) does not say its version: %w", c.Addr(), err)
	}
	logger.Info("virus scanner", slog.String("addr", c.Addr()), slog.String("version", version))
	return c, nil
}

// startFiles gives svc its files — the store, the scanner and the job runner with the file
// jobs registered — and then starts the runner's workers (none when MESSENGER_JOB_WORKERS
// is 0: this process only enqueues). The runner has its own pool as the application role
// (River holds connections while it polls, and must not starve requests). The stop function
// waits up to 10 s for running jobs (River hands back any it must cut, to run again), then
// closes the pool and the store.
//
// dg, when email is on, adds the digest's jobs and its periodic scan; MESSENGER_ARCHIVE_EVERY,
// when set, the periodic archive step on db.
func startFiles(ctx context.Context, cfg config, appDSN string, db *store.DB, svc *chat.Service, dg *digest.Service, logger *slog.Logger) (*prometheus.Registry, func(), error) {
	st, err := openStorage(ctx, cfg, logger)
	if err != nil {
		return nil, nil, err
	}
	scanner, err := openScanner(ctx, cfg, logger)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	// The job runner's pool gives up on a stalled database as the application's does, so
	// that River's polls and the queue depth read by /metrics do not hang with it.
	connector, err := store.Connector(appDSN, cfg.DBTimeout)
	if err != nil {
		st.Close()
		return nil, nil, fmt.Errorf("jobs: %w", err)
	}
	jobsDB := sql.OpenDB(connector)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewDBStatsCollector(jobsDB, "messenger_jobs"))
	jc := jobs.Config{Workers: cfg.JobWorkers, JobTimeout: cfg.JobTimeout, RescueAfter: cfg.JobRescueAfter,
		Kinds: append([]string{chat.ScanArgs{}.Kind(), chat.ThumbnailArgs{}.Kind(), chat.DeleteArgs{}.Kind()}, chat.PushJobKinds()...)}
	conns := cfg.JobWorkers + 4
	if cfg.PushOn() {
		jc.Queues = map[string]int{chat.QueuePush: cfg.Push.Workers}
		conns += cfg.Push.Workers
	}
	jobsDB.SetMaxOpenConns(conns)
	register := func(w *river.Workers) {
		svc.RegisterWorkers(w)
		svc.RegisterPushWorker(w)
		if dg != nil {
			dg.Register(w)
		}
	}
	if cfg.ArchiveEvery > 0 {
		aw := &archiveWorker{db: db, opt: cfg.Archive, logger: logger}
		jc.Periodic = append(jc.Periodic, aw.periodicJob(cfg.ArchiveEvery))
		jc.Kinds = append(jc.Kinds, ArchiveArgs{}.Kind())
		prev := register
		register = func(w *river.Workers) {
			prev(w)
			river.AddWorker(w, aw)
		}
	}
	if dg != nil {
		jc.Periodic = append(jc.Periodic, dg.PeriodicJob())
		jc.Kinds = append(jc.Kinds, digest.ScanArgs{}.Kind(), digest.SendArgs{}.Kind())
	}
	runner, err := jobs.New(jobsDB, logger, jc, reg, register)
	if err != nil {
		jobsDB.Close()
		st.Close()
		return nil, nil, err
	}
	if err := enablePush(cfg, svc, runner, reg, logger); err != nil {
		jobsDB.Close()
		st.Close()
		return nil, nil, err
	}
	files := chat.Files{Storage: st, Jobs: runner, MaxFiles: cfg.MaxFilesPerUpload, ThumbnailMaxPixels: cfg.ThumbnailMaxPixels,
		Limits: upload.Limits{MaxBytes: cfg.MaxUploadBytes, MaxPixels: cfg.MaxImagePixels}}
	if scanner != nil { // a nil *scan.Client in the interface would be a scanner that is not there
		files.Scanner = scanner
	}
	svc.EnableFiles(files)
	// Only now: a job picked up at once finds the service ready.
	if err := runner.Start(ctx); err != nil {
		jobsDB.Close()
		st.Close()
		return nil, nil, err
	}
	logger.Info("jobs started", slog.Int("workers", cfg.JobWorkers))
	return reg, func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := runner.Stop(stopCtx); err != nil {
			logger.Error("stop jobs", slog.String("error", err.Error()))
		}
		jobsDB.Close()
		st.Close()
		logger.Info("jobs stopped")
	}, nil
}
