package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/demo"
	"github.com/dreamseed/messenger/handlers"
	"github.com/dreamseed/messenger/jobs"
	"github.com/dreamseed/messenger/ratelimit"
	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/pgserver"
	"github.com/prometheus/client_golang/prometheus"
)

// run is the whole program: the end-to-end tests start it as a process with their own
// environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "serve", "migrate", "demo":
	default:
		return fmt.Errorf("unknown command %q (want serve, migrate or demo)", cmd)
	}

	cfg, err := loadConfig(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	logger := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))

	appDSN, stopDB, err := prepareDatabase(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer stopDB()
	if cmd == "migrate" {
		return nil
	}

	db, err := store.Open(ctx, appDSN)
	if err != nil {
		return fmt.Errorf("%w (the server connects as the %s role; see MESSENGER_APP_DATABASE_URL)", err, store.AppRole)
	}
	defer db.Close()
	if cmd == "demo" || cfg.Dev {
		if err := demo.Load(ctx, db); err != nil {
			return fmt.Errorf("load demo data: %w", err)
		}
		logger.Info("demo data loaded")
	}
	if cmd == "demo" {
		return nil
	}
	return serve(ctx, cfg, db, appDSN, logger)
}

// prepareDatabase starts the embedded PostgreSQL when no DATABASE_URL is set, applies the
// migrations, and answers the connection string of the application role.
func prepareDatabase(ctx context.Context, cfg config, logger *slog.Logger) (appDSN string, stop func(), err error) {
	stop = func() {}
	ownerDSN, password := cfg.DatabaseURL, cfg.AppDBPassword
	if cfg.Embedded() {
		srv, err := pgserver.Start(ctx, filepath.Join(cfg.DataDir, "postgres"), logger)
		if err != nil {
			if errors.Is(err, pgserver.ErrNoBinaries) {
				return "", stop, fmt.Errorf("no DATABASE_URL is set, so the messenger runs its own PostgreSQL, but %w", err)
			}
			return "", stop, fmt.Errorf("embedded PostgreSQL: %w", err)
		}
		stop = func() {
			if err := srv.Stop(); err != nil {
				logger.Error("stop embedded postgres", slog.String("error", err.Error()))
			}
		}
		if err := srv.EnsureDatabase(ctx, "messenger"); err != nil {
			stop()
			return "", func() {}, err
		}
		ownerDSN = srv.DSN("messenger")
		if password, err = secretFile(filepath.Join(cfg.DataDir, "app.password")); err != nil {
			stop()
			return "", func() {}, err
		}
	}
	if err := store.Migrate(ctx, ownerDSN, logger); err != nil {
		stop()
		return "", func() {}, err
	}
	if cfg.AppDatabaseURL != "" {
		return cfg.AppDatabaseURL, stop, nil
	}
	if password != "" {
		if err := store.SetAppPassword(ctx, ownerDSN, password); err != nil {
			stop()
			return "", func() {}, err
		}
	}
	appDSN, err = store.AppDSN(ownerDSN, password)
	if err != nil {
		stop()
		return "", func() {}, err
	}
	return appDSN, stop, nil
}

// secretFile answers the secret kept in path, creating it on first use.
func secretFile(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	secret := auth.NewToken()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", err
	}
	return secret, nil
}

// serve runs the HTTP server until ctx ends, then drains it.
func serve(ctx context.Context, cfg config, db *store.DB, appDSN string, logger *slog.Logger) error {
	jobsRegistry, stopJobs, err := startJobs(ctx, cfg, appDSN, logger)
	if err != nil {
		return err
	}
	// Deferred first, so it runs last: the runner stops after the HTTP server (whose
	// requests may still enqueue) and before the database closes.
	defer stopJobs()
	var engine realtime.Engine
	if cfg.RedisURL != "" {
		r, err := realtime.NewRedisWithPrefix(ctx, cfg.RedisURL, 0, logger, cfg.RedisPrefix)
		if err != nil {
			return fmt.Errorf("redis: %w", err)
		}
		engine = r
		logger.Info("realtime engine: redis")
	} else {
		engine = realtime.NewMemory(0)
		logger.Info("realtime engine: memory (one process)")
	}
	defer engine.Close()

	limiter, closeLimiter, err := newLimiter(cfg)
	if err != nil {
		return err
	}
	defer closeLimiter()

	verifier, err := auth.NewVerifier(ctx, auth.VerifierConfig{
		Secret: cfg.JWTSecret, JWKSURL: cfg.JWKSURL, Issuer: cfg.Issuer, Audience: cfg.Audience,
		MaxLifetime: cfg.JWTMaxLifetime,
	})
	if err != nil {
		return err
	}

	handler, server := handlers.New(handlers.Config{
		Issuer: cfg.Issuer, Audience: cfg.Audience, PortalOrigins: cfg.PortalOrigins,
		CookieSecure: cfg.CookieSecure, CookieSameSite: cfg.CookieSameSite, HTTPS: cfg.HTTPS,
		MaxBodyBytes: cfg.MaxBodyBytes, BodyReadTimeout: cfg.BodyReadTimeout, Dev: cfg.Dev, DevSecret: cfg.JWTSecret,
		Limits: ratelimit.New(limiter, cfg.RateLimits, logger), TrustedProxies: cfg.TrustedProxies,
		MaxStreamsPerUser: cfg.MaxStreamsPerUser, MaxSessionsPerUser: cfg.MaxSessionsPerUser,
	}, db, verifier, engine, logger)

	// Streams end when their base context does, so shutdown need not wait for them.
	streamsCtx, endStreams := context.WithCancel(context.WithoutCancel(ctx))
	defer endStreams()
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return streamsCtx },
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	// /metrics has a listener of its own, which only operators reach.
	var metricsSrv *http.Server
	var metricsLn net.Listener
	if cfg.MetricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			ln.Close()
			return fmt.Errorf("metrics listener (MESSENGER_METRICS_ADDR): %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", server.MetricsHandler(jobsRegistry))
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
		logger.Info("metrics listening", slog.String("addr", metricsLn.Addr().String()))
	}
	logger.Info("messenger listening", slog.String("addr", ln.Addr().String()),
		slog.String("url", cfg.BaseURL), slog.Bool("dev", cfg.Dev))
	if cfg.Dev {
		logger.Info("dev mode: sign in at " + cfg.BaseURL + "/dev/login")
	}

	go server.Watch(streamsCtx)
	served := make(chan error, 2)
	go func() { served <- srv.Serve(ln) }()
	if metricsSrv != nil {
		go func() { served <- metricsSrv.Serve(metricsLn) }()
	}
	var serveErr error
	select {
	case serveErr = <-served:
		logger.Error("listener failed", slog.String("error", serveErr.Error()))
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	endStreams()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	if metricsSrv != nil {
		err = errors.Join(err, metricsSrv.Shutdown(shutdownCtx))
	}
	if err != nil {
		return errors.Join(serveErr, fmt.Errorf("shutdown: %w", err))
	}
	return serveErr
}

// startJobs opens the job runner's own pool as the application role (River holds
// connections while it polls, and must not starve requests) and starts its workers, unless
// MESSENGER_JOB_WORKERS is 0. The stop function waits up to 10 s for running jobs (River
// hands back any it must cut, to run again) and closes the pool.
func startJobs(ctx context.Context, cfg config, appDSN string, logger *slog.Logger) (*prometheus.Registry, func(), error) {
	jobsDB, err := sql.Open("postgres", appDSN)
	if err != nil {
		return nil, nil, fmt.Errorf("jobs: %w", err)
	}
	jobsDB.SetMaxOpenConns(cfg.JobWorkers + 4)
	reg := prometheus.NewRegistry()
	runner, err := jobs.New(jobsDB, logger, jobs.Config{Workers: cfg.JobWorkers}, reg, nil)
	if err == nil {
		err = runner.Start(ctx)
	}
	if err != nil {
		jobsDB.Close()
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
	}, nil
}

// newLimiter answers the rate limiter's buckets: in Redis when it is configured, so that
// every process shares one budget per user, in memory otherwise.
func newLimiter(cfg config) (ratelimit.Limiter, func(), error) {
	if cfg.RedisURL == "" {
		return ratelimit.NewMemory(), func() {}, nil
	}
	r, err := ratelimit.NewRedis(cfg.RedisURL, cfg.RedisPrefix)
	if err != nil {
		return nil, nil, err
	}
	return r, func() { r.Close() }, nil
}
