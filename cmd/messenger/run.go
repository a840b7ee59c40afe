package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/demo"
	"github.com/dreamseed/messenger/digest"
	"github.com/dreamseed/messenger/handlers"
	"github.com/dreamseed/messenger/internal/trace"
	"github.com/dreamseed/messenger/ratelimit"
	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/pgserver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// run is the whole program: the end-to-end tests start it as a process with their own
// environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "serve", "migrate", "demo", "worker", "archive":
	case "vapid-keys":
		return vapidKeys(stdout)
	case "backup", "restore", "check":
		return backupCommand(ctx, cmd, args[1:], getenv, stdout)
	case "healthcheck":
		return healthcheck(ctx, args[1:], getenv, stdout)
	default:
		return fmt.Errorf("unknown command %q (want serve, worker, migrate, demo, archive, vapid-keys, backup, restore, check or healthcheck)", cmd)
	}

	cfg, err := loadConfig(getenv)
	if err == nil && (cmd == "serve" || cmd == "worker") {
		err = cfg.requireScanner()
	}
	if err == nil && cmd == "worker" {
		err = cfg.workerError()
	}
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	logger := slog.New(trace.NewJSON(stdout, cfg.LogLevel))
	if cmd == "serve" || cmd == "worker" {
		// Deferred first, so it bounds every step of the shutdown, the database's close too.
		defer watchShutdown(ctx, cfg.ShutdownTimeout, logger)()
	}

	appDSN, stopDB, err := prepareDatabase(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer stopDB()
	if cmd == "migrate" {
		return nil
	}

	db, err := store.Open(ctx, appDSN, store.Timeout(cfg.DBTimeout), store.MaxConns(cfg.DBMaxConns))
	if err != nil {
		return fmt.Errorf("%w (the server connects as the %s role; see MESSENGER_APP_DATABASE_URL)", err, store.AppRole)
	}
	defer func() {
		db.Close()
		logger.Info("database closed")
	}()
	if cmd == "archive" {
		return archive(ctx, cfg.Archive, db, logger, stdout)
	}
	if cmd == "demo" || (cfg.Dev && cmd == "serve") {
		if err := demo.Load(ctx, db); err != nil {
			return fmt.Errorf("load demo data: %w", err)
		}
		logger.Info("demo data loaded")
	}
	switch cmd {
	case "demo":
		return nil
	case "worker":
		return work(ctx, cfg, db, appDSN, logger)
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
	raiseOpenFiles(logger)
	var engine realtime.Engine
	if cfg.RedisURL != "" {
		r, err := newRedisEngine(ctx, cfg, logger)
		if err != nil {
			return fmt.Errorf("redis: %w", err)
		}
		engine = r
		logger.Info("realtime engine: redis", slog.Bool("cluster", cfg.RedisCluster))
	} else {
		engine = realtime.NewMemory(0)
		logger.Info("realtime engine: memory (one process)")
	}
	defer closeEngine(engine, logger)

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

	var pushKey handlers.PushKeys
	if cfg.PushOn() {
		keys, err := cfg.pushKeys()
		if err != nil {
			return err
		}
		pushKey = publicKey(keys.Public)
	}
	limits := ratelimit.New(limiter, cfg.RateLimits, logger)
	chatMetrics := prometheus.NewRegistry()
	registerProcessMetrics(chatMetrics, db)
	svc := chat.NewService(db, engine, logger, chatMetrics, limits)
	svc.SetNotifyConfig(cfg.Notify)
	svc.SetSendTransactions(cfg.SendTransactions)
	svc.SetPresenceConfig(cfg.Presence)
	svc.SetReceiptCoalesce(cfg.ReceiptCoalesce)
	svc.SetTypingAnnounceEvery(cfg.TypingAnnounceEvery)
	handler, server := handlers.New(handlers.Config{
		Issuer: cfg.Issuer, Audience: cfg.Audience, PortalOrigins: cfg.PortalOrigins,
		CookieSecure: cfg.CookieSecure, CookieSameSite: cfg.CookieSameSite, HTTPS: cfg.HTTPS,
		MaxBodyBytes: cfg.MaxBodyBytes, BodyReadTimeout: cfg.BodyReadTimeout, UploadReadTimeout: cfg.UploadReadTimeout, Dev: cfg.Dev, DevSecret: cfg.JWTSecret,
		Limits: limits, TrustedProxies: cfg.TrustedProxies,
		MaxStreamsPerUser: cfg.MaxStreamsPerUser, MaxSessionsPerUser: cfg.MaxSessionsPerUser, StreamsOnHTTP: cfg.StreamsOnHTTP,
		MaxUploadBytes: cfg.MaxUploadBytes, MaxFilesPerUpload: cfg.MaxFilesPerUpload,
		PushKeys: pushKey, PushAllowPrivate: cfg.Push.AllowPrivate, MaxPushDevices: cfg.MaxPushDevices,
		StreamWriteTimeout: cfg.StreamWriteTimeout, StreamHiddenClose: cfg.StreamHiddenClose,
	}, db, svc, verifier, engine, logger)

	dg, unsub, err := openDigest(cfg, db, engine, logger)
	if err != nil {
		return err
	}
	digestMetrics := digest.NewMetrics(chatMetrics)
	if dg != nil {
		dg.SetMetrics(digestMetrics)
	}
	server.SetUnsubscribe(unsub)
	jobsRegistry, stopJobs, err := startFiles(ctx, cfg, appDSN, db, svc, dg, logger)
	if err != nil {
		return err
	}
	// Deferred after the engine, so it runs before the engine closes (jobs publish) and,
	// like every deferred call, after the HTTP server has drained (requests enqueue).
	defer stopJobs()

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
		mux.Handle("GET /metrics", server.MetricsHandler(chatMetrics, jobsRegistry))
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
		logger.Info("metrics listening", slog.String("addr", metricsLn.Addr().String()))
	}
	var pprofSrv *http.Server
	var pprofLn net.Listener
	if cfg.PprofAddr != "" {
		if pprofLn, err = net.Listen("tcp", cfg.PprofAddr); err != nil {
			ln.Close()
			if metricsLn != nil {
				metricsLn.Close()
			}
			return fmt.Errorf("profiler listener (MESSENGER_PPROF_ADDR): %w", err)
		}
		pprofSrv = pprofServer()
		logger.Info("profiler listening", slog.String("addr", pprofLn.Addr().String()))
	}
	logger.Info("messenger listening", slog.String("addr", ln.Addr().String()),
		slog.String("url", cfg.BaseURL), slog.Bool("dev", cfg.Dev))
	if cfg.Dev {
		logger.Info("dev mode: sign in at " + cfg.BaseURL + "/dev/login")
	}

	// The background loops run until the streams end, and the process waits for them
	// before the jobs stop and the engine and the database close.
	var loops sync.WaitGroup
	defer func() {
		endStreams()
		loops.Wait()
		logger.Info("background loops stopped")
	}()
	loops.Go(func() { svc.WatchPresence(streamsCtx) }) // announces users whose server process died
	// Stores and announces users gone offline in batches; when the streams end it stores
	// what is queued, before the loops are waited for and the database closes.
	loops.Go(func() { svc.StorePresence(streamsCtx) })
	// Publishes groups' coalesced read receipts; when the streams end it publishes what is
	// pending, before the engine closes.
	loops.Go(func() { svc.CoalesceReceipts(streamsCtx) })
	loops.Go(func() { server.WatchReady(streamsCtx, cfg.ReadyProbeEvery) })
	served := make(chan error, 3)
	go func() { served <- srv.Serve(ln) }()
	if metricsSrv != nil {
		go func() { served <- metricsSrv.Serve(metricsLn) }()
	}
	if pprofSrv != nil {
		go func() { served <- pprofSrv.Serve(pprofLn) }()
	}
	serveErr := untilStopped(ctx, served, logger, "listener failed")
	logger.Info("shutting down", slog.Duration("timeout", cfg.ShutdownTimeout), slog.Duration("drain_delay", cfg.DrainDelay))
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	drainDelay(shutdownCtx, server, cfg.DrainDelay, logger)
	// The live streams are told to come back elsewhere and end; the listeners close and
	// the requests in flight (a send being stored) finish with their contexts intact;
	// only then does the base context end, for what is still running past the bound.
	server.Drain()
	err = srv.Shutdown(shutdownCtx)
	err = errors.Join(err, server.WaitStreams(shutdownCtx)) // the streams net/http handed over
	endStreams()
	if metricsSrv != nil {
		err = errors.Join(err, metricsSrv.Shutdown(shutdownCtx))
	}
	if pprofSrv != nil {
		pprofSrv.Close() // a profile in progress has nothing to finish
	}
	if err != nil {
		return errors.Join(serveErr, fmt.Errorf("shutdown: %w", err))
	}
	return serveErr
}

// drainDelay turns /readyz red and keeps serving for delay (within the shutdown's bound),
// so that a load balancer's health check takes the process out of rotation while it still
// answers: no request meets a closed port on its way in.
func drainDelay(ctx context.Context, server *handlers.Server, delay time.Duration, logger *slog.Logger) {
	server.Unready()
	if delay <= 0 {
		return
	}
	logger.Info("draining: /readyz answers 503, still serving", slog.Duration("delay", delay))
	select {
	case <-time.After(delay):
	case <-ctx.Done():
	}
}

// workerError refuses a worker that could not do its work: one sharing the serve process's
// embedded database or memory engine (both are inside that process), or one with no workers.
func (c config) workerError() error {
	var errs []error
	if c.Embedded() {
		errs = append(errs, errors.New("messenger worker needs DATABASE_URL: the embedded PostgreSQL belongs to the serve process"))
	}
	if c.RedisURL == "" {
		errs = append(errs, errors.New("messenger worker needs REDIS_URL: its jobs tell users' streams through Redis (the memory engine reaches only its own process)"))
	}
	if c.JobWorkers == 0 {
		errs = append(errs, errors.New("messenger worker with MESSENGER_JOB_WORKERS=0 would work no job"))
	}
	return errors.Join(errs...)
}

// work runs the job workers alone, without an HTTP listener (only /metrics, when
// MESSENGER_METRICS_ADDR is on), until ctx ends (SIGINT, SIGTERM); then it lets running jobs
// finish, up to 10 s.
func work(ctx context.Context, cfg config, db *store.DB, appDSN string, logger *slog.Logger) error {
	engine, err := newRedisEngine(ctx, cfg, logger)
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	defer closeEngine(engine, logger)
	reg := prometheus.NewRegistry()
	registerProcessMetrics(reg, db)
	svc := chat.NewService(db, engine, logger, reg, nil)
	svc.SetNotifyConfig(cfg.Notify)
	dg, _, err := openDigest(cfg, db, engine, logger)
	if err != nil {
		return err
	}
	digestMetrics := digest.NewMetrics(reg)
	if dg != nil {
		dg.SetMetrics(digestMetrics)
	}
	jobsRegistry, stopJobs, err := startFiles(ctx, cfg, appDSN, db, svc, dg, logger)
	if err != nil {
		return err
	}
	defer stopJobs()

	failed := make(chan error, 1)
	var metricsSrv *http.Server
	if cfg.MetricsAddr != "" {
		ln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("metrics listener (MESSENGER_METRICS_ADDR; a worker beside a server needs its own): %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(prometheus.Gatherers{reg, jobsRegistry}, promhttp.HandlerOpts{}))
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
		go func() { failed <- metricsSrv.Serve(ln) }()
		logger.Info("metrics listening", slog.String("addr", ln.Addr().String()))
	}
	logger.Info("messenger worker running", slog.Int("workers", cfg.JobWorkers))
	runErr := untilStopped(ctx, failed, logger, "metrics listener failed")
	logger.Info("worker stopping: letting running jobs finish")
	if metricsSrv != nil {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		metricsSrv.Shutdown(shutdownCtx)
	}
	return runErr
}

// newLimiter answers the rate limiter's buckets: in Redis when it is configured, so that
// every process shares one budget per user, in memory otherwise.
func newLimiter(cfg config) (ratelimit.Limiter, func(), error) {
	if cfg.RedisURL == "" {
		return ratelimit.NewMemory(), func() {}, nil
	}
	newRedis := ratelimit.NewRedis
	if cfg.RedisCluster {
		newRedis = ratelimit.NewRedisCluster
	}
	r, err := newRedis(cfg.RedisURL, cfg.RedisPrefix)
	if err != nil {
		return nil, nil, err
	}
	return r, func() { r.Close() }, nil
}

// newRedisEngine answers the Redis engine of REDIS_URL: a single Redis, or a Redis
// Cluster when MESSENGER_REDIS_CLUSTER is on.
func newRedisEngine(ctx context.Context, cfg config, logger *slog.Logger) (*realtime.Redis, error) {
	if cfg.RedisCluster {
		return realtime.NewRedisCluster(ctx, cfg.RedisURL, 0, logger, cfg.RedisPrefix)
	}
	return realtime.NewRedisWithPrefix(ctx, cfg.RedisURL, 0, logger, cfg.RedisPrefix)
}

// closeEngine closes the realtime engine, last but for the database: nothing that
// publishes (requests, background loops, jobs) runs any more.
func closeEngine(engine realtime.Engine, logger *slog.Logger) {
	engine.Close()
	logger.Info("realtime engine closed")
}
