package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/handlers"
	"github.com/dreamseed/messenger/jobs"
	"github.com/dreamseed/messenger/ratelimit"
	"github.com/dreamseed/messenger/scan"
	"github.com/dreamseed/messenger/store"
)

// config is the messenger's configuration, read from the environment (see docs/configuration.md).
type config struct {
	Addr            string
	DatabaseURL     string // migrations run with it; unset: the embedded PostgreSQL
	AppDatabaseURL  string // the server's own connection; derived from DatabaseURL when unset
	AppDBPassword   string
	RedisURL        string // unset: the memory engine (one process)
	RedisPrefix     string // of every Redis key and pub/sub channel: deployments sharing a Redis differ
	RedisCluster    bool   // REDIS_URL names a Redis Cluster: hash tags, sharded pub/sub
	JWTSecret       []byte
	JWKSURL         string
	Issuer          string
	Audience        string
	PortalOrigins   []string
	BaseURL         string
	Dev             bool
	DataDir         string
	CookieSecure    bool
	CookieSameSite  http.SameSite
	HTTPS           bool // the base URL is https: HSTS and the __Host- session cookie
	LogLevel        slog.Level
	MetricsAddr     string        // the /metrics listener; "" when off
	PprofAddr       string        // the Go profiler's listener, loopback only; "" when off
	MaxBodyBytes    int64         // every request body but an upload's
	JWTMaxLifetime  time.Duration // the longest a portal token may live
	BodyReadTimeout time.Duration // how long a form or JSON body may take to arrive
	// UploadReadTimeout is how long an upload's body may take to arrive.
	UploadReadTimeout time.Duration
	// DBTimeout is the longest the application pool waits for PostgreSQL to answer a
	// statement, or for a connection to come free: past it the request fails with 503.
	DBTimeout time.Duration
	// ShutdownTimeout bounds the whole shutdown after SIGTERM; past it the process exits 1.
	// DrainDelay, inside it, is how long the process keeps serving with /readyz red, so that
	// a load balancer's health check takes it out of rotation before its listener closes.
	ShutdownTimeout time.Duration
	DrainDelay      time.Duration
	// ReadyProbeEvery is how often the server runs the checks of /readyz for its metrics.
	ReadyProbeEvery time.Duration
	RateLimits      ratelimit.Rates // per user (or address, or portal subject) and action
	TrustedProxies  []*net.IPNet    // reverse proxies whose X-Forwarded-For names the client
	// MaxStreamsPerUser caps a user's live streams (the oldest closes), MaxSessionsPerUser
	// their browser sessions (the oldest is revoked).
	MaxStreamsPerUser int
	// StreamsOnHTTP keeps live streams on net/http (MESSENGER_STREAMS_DETACH=0).
	StreamsOnHTTP      bool
	MaxSessionsPerUser int
	// MaxPushDevices caps a user's push subscriptions: one more drops the oldest.
	MaxPushDevices int
	// SendTransactions is how many send transactions this process runs at once: the sends
	// that wait meanwhile are stored together by the next ones (group commit).
	SendTransactions int
	// Archive: what `messenger archive` and the periodic archive job move to
	// messages_archive, and how fast; ArchiveEvery: how often the job runs (0: never).
	Archive      store.ArchiveOptions
	ArchiveEvery time.Duration
	// Presence: how users gone offline are stored and announced in batches.
	Presence chat.PresenceConfig
	// ReceiptCoalesce: a group's other members hear its watermark rises at most once this
	// long, together (0: each at once). TypingAnnounceEvery: a typist still typing is told
	// at most once this long.
	ReceiptCoalesce     time.Duration
	TypingAnnounceEvery time.Duration
	// StreamWriteTimeout closes a live stream whose write stays blocked this long;
	// StreamHiddenClose is how long a page's tab stays hidden before it closes its stream.
	StreamWriteTimeout time.Duration
	StreamHiddenClose  time.Duration
	// DBMaxConns bounds this process's pool of database connections.
	DBMaxConns int
	// JobWorkers is how many background jobs this process works at once; 0: none, it only
	// enqueues them (for a separate worker process).
	JobWorkers int
	// JobTimeout ends a job's attempt; a job still running after JobRescueAfter (its
	// process was killed) is run again.
	JobTimeout     time.Duration
	JobRescueAfter time.Duration
	Backup         backupConfig // the backup, restore and check commands

	// Files. StorageURL "" keeps them on the local disk under DataDir/files.
	StorageURL     string
	MaxUploadBytes int64 // one file
	MaxImagePixels int64 // width×height, read from the header before any decoding
	// ThumbnailMaxPixels bounds the pixels decoded for thumbnails at once in this process.
	ThumbnailMaxPixels int64
	MaxFilesPerUpload  int
	// ClamdAddr is the virus scanner (tcp://host:port or unix:///path); "" with ScanOff
	// (MESSENGER_SCAN=off) or in dev mode only: files are then stored unscanned.
	ClamdAddr string
	ScanOff   bool
	// Push is web push (VAPID keys, delay, the notification's link).
	Push pushConfig
	// Mail is the SMTP server and the email digest (cmd/messenger/mail.go).
	Mail mailConfig
	// Notify: role default quiet hours (MESSENGER_QUIET_HOURS_<ROLE>) and keyword caps.
	Notify chat.NotifyConfig
}

// Defaults and bounds of the file limits.
const (
	defaultMaxUploadBytes = 10 << 20
	maxMaxUploadBytes     = 1 << 30 // a file is streamed, never held, but clamd and the disk bound it too
	defaultMaxImagePixels = 50_000_000
	// A decoded image takes 4 bytes a pixel (8 for 16-bit PNG) while its thumbnails are
	// made: 250 megapixels is a 1–2 GB job.
	maxMaxImagePixels = 250_000_000
	// Two pictures of the default largest size decoded at once: about 0.75 GB (7.5 bytes a
	// pixel measured for an 8-bit PNG, docs/performance.md).
	defaultThumbnailMaxPixels = 100_000_000
	maxThumbnailMaxPixels     = 10_000_000_000
	defaultMaxFilesPerUpload  = 10
	maxMaxFilesPerUpload      = 100
)

// rateLimitVars names the variable of each rate limit.
var rateLimitVars = map[ratelimit.Action]string{
	ratelimit.Send:          "MESSENGER_RATE_SEND",
	ratelimit.Typing:        "MESSENGER_RATE_TYPING",
	ratelimit.Read:          "MESSENGER_RATE_READ",
	ratelimit.Create:        "MESSENGER_RATE_CREATE",
	ratelimit.Invite:        "MESSENGER_RATE_INVITE",
	ratelimit.SignInAddress: "MESSENGER_RATE_SIGNIN_IP",
	ratelimit.SignInSubject: "MESSENGER_RATE_SIGNIN_SUBJECT",
	ratelimit.PushTicket:    "MESSENGER_RATE_PUSH_TICKET",
}

// minBodyBytes is the smallest body limit allowed: the longest message escaped as heavily
// as JSON or a form can (12 bytes a character) and the rest of its form.
const minBodyBytes = 12*messenger.MaxMessageLength + 4<<10

// Embedded reports whether the server runs its own PostgreSQL.
func (c config) Embedded() bool { return c.DatabaseURL == "" }

func loadConfig(getenv func(string) string) (config, error) {
	env := trimmedEnv(getenv)
	c := config{
		Addr:           env("MESSENGER_ADDR", ":8001"),
		DatabaseURL:    env("DATABASE_URL", ""),
		AppDatabaseURL: env("MESSENGER_APP_DATABASE_URL", ""),
		AppDBPassword:  env("MESSENGER_APP_DB_PASSWORD", ""),
		RedisURL:       env("REDIS_URL", ""),
		RedisPrefix:    env("MESSENGER_REDIS_PREFIX", "messenger:"),
		JWTSecret:      []byte(env("MESSENGER_JWT_SECRET", "")),
		JWKSURL:        env("MESSENGER_JWKS_URL", ""),
		Issuer:         env("MESSENGER_JWT_ISSUER", "dreamseed-portal"),
		Audience:       env("MESSENGER_JWT_AUDIENCE", "messenger"),
		BaseURL:        strings.TrimRight(env("MESSENGER_BASE_URL", "http://localhost:8001"), "/"),
		DataDir:        env("MESSENGER_DATA_DIR", "data"),
	}
	var errs []error

	switch env("MESSENGER_REDIS_CLUSTER", "0") {
	case "1", "true":
		c.RedisCluster = true
		if c.RedisURL == "" {
			errs = append(errs, errors.New("MESSENGER_REDIS_CLUSTER=1 needs REDIS_URL: the cluster's nodes"))
		}
		if strings.ContainsAny(c.RedisPrefix, "{}") {
			errs = append(errs, errors.New("MESSENGER_REDIS_PREFIX must not contain { or } on a Redis Cluster (they would be its hash tag)"))
		}
	case "0", "false":
	default:
		errs = append(errs, errors.New("MESSENGER_REDIS_CLUSTER must be 1 or 0"))
	}

	switch env("MESSENGER_DEV", "") {
	case "":
		c.Dev = c.Embedded()
	case "1", "true":
		c.Dev = true
	case "0", "false":
	default:
		errs = append(errs, errors.New("MESSENGER_DEV must be 1 or 0"))
	}
	if len(c.JWTSecret) == 0 && c.Dev {
		c.JWTSecret = []byte(auth.DevSecret)
	}
	if len(c.JWTSecret) == 0 && c.JWKSURL == "" {
		errs = append(errs, errors.New("MESSENGER_JWT_SECRET or MESSENGER_JWKS_URL is required outside dev mode"))
	}
	if len(c.JWTSecret) > 0 && len(c.JWTSecret) < 32 {
		errs = append(errs, errors.New("MESSENGER_JWT_SECRET must be at least 32 bytes"))
	}

	for _, o := range strings.Split(env("MESSENGER_PORTAL_ORIGINS", ""), ",") {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		if o == "" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" {
			errs = append(errs, fmt.Errorf("MESSENGER_PORTAL_ORIGINS: %q is not an origin like https://portal.example", o))
			continue
		}
		c.PortalOrigins = append(c.PortalOrigins, u.Scheme+"://"+u.Host)
	}

	base, err := url.Parse(c.BaseURL)
	if err != nil || base.Host == "" {
		errs = append(errs, fmt.Errorf("MESSENGER_BASE_URL: %q is not a URL", c.BaseURL))
	} else {
		host := base.Hostname()
		c.HTTPS = base.Scheme == "https"
		c.CookieSecure = c.HTTPS || host == "localhost" || host == "127.0.0.1" || host == "::1"
	}

	// Inside a portal on another site the cookie must be SameSite=None (and so Secure and
	// Partitioned); a same-site deployment can keep Lax.
	switch strings.ToLower(env("MESSENGER_COOKIE_SAMESITE", "")) {
	case "":
		c.CookieSameSite = http.SameSiteLaxMode
		if len(c.PortalOrigins) > 0 {
			c.CookieSameSite = http.SameSiteNoneMode
		}
	case "none":
		c.CookieSameSite = http.SameSiteNoneMode
	case "lax":
		c.CookieSameSite = http.SameSiteLaxMode
	case "strict":
		c.CookieSameSite = http.SameSiteStrictMode
	default:
		errs = append(errs, errors.New("MESSENGER_COOKIE_SAMESITE must be none, lax or strict"))
	}

	// Metrics are for operators, on a listener of their own (loopback by default).
	if addr := env("MESSENGER_METRICS_ADDR", "127.0.0.1:9101"); addr != "off" {
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("MESSENGER_METRICS_ADDR: %q is not host:port (or off)", addr))
		}
		c.MetricsAddr = addr
	}
	// The Go profiler, for benchmarks: off unless asked for, and never on a public address
	// (a profile shows the process's code paths and its request data in flight).
	if addr := env("MESSENGER_PPROF_ADDR", "off"); addr != "off" {
		if err := loopbackAddr(addr); err != nil {
			errs = append(errs, fmt.Errorf("MESSENGER_PPROF_ADDR: %w", err))
		}
		c.PprofAddr = addr
	}

	if n, err := strconv.ParseInt(env("MESSENGER_MAX_BODY_BYTES", strconv.Itoa(handlers.DefaultMaxBodyBytes)), 10, 64); err != nil || n < minBodyBytes || n > 64<<20 {
		errs = append(errs, fmt.Errorf("MESSENGER_MAX_BODY_BYTES must be a number of bytes from %d (the longest message, escaped) to %d", minBodyBytes, 64<<20))
	} else {
		c.MaxBodyBytes = n
	}
	if d, err := time.ParseDuration(env("MESSENGER_JWT_MAX_LIFETIME", auth.DefaultMaxLifetime.String())); err != nil || d <= 0 {
		errs = append(errs, errors.New("MESSENGER_JWT_MAX_LIFETIME must be a positive duration like 24h"))
	} else {
		c.JWTMaxLifetime = d
	}
	if d, err := time.ParseDuration(env("MESSENGER_BODY_READ_TIMEOUT", handlers.DefaultBodyReadTimeout.String())); err != nil || d < time.Second || d > 10*time.Minute {
		errs = append(errs, errors.New("MESSENGER_BODY_READ_TIMEOUT must be a duration from 1s to 10m, like 30s"))
	} else {
		c.BodyReadTimeout = d
	}
	if d, err := time.ParseDuration(env("MESSENGER_UPLOAD_READ_TIMEOUT", handlers.DefaultUploadReadTimeout.String())); err != nil || d < time.Second || d > time.Hour {
		errs = append(errs, errors.New("MESSENGER_UPLOAD_READ_TIMEOUT must be a duration from 1s to 1h, like 10m"))
	} else {
		c.UploadReadTimeout = d
	}
	if d, err := time.ParseDuration(env("MESSENGER_SHUTDOWN_TIMEOUT", "15s")); err != nil || d < time.Second || d > 10*time.Minute {
		errs = append(errs, errors.New("MESSENGER_SHUTDOWN_TIMEOUT must be a duration from 1s to 10m, like 15s"))
	} else {
		c.ShutdownTimeout = d
	}
	if d, err := time.ParseDuration(env("MESSENGER_READY_PROBE_EVERY", handlers.DefaultReadyProbeEvery.String())); err != nil || d < time.Second || d > 10*time.Minute {
		errs = append(errs, errors.New("MESSENGER_READY_PROBE_EVERY must be a duration from 1s to 10m, like 5s"))
	} else {
		c.ReadyProbeEvery = d
	}
	if d, err := time.ParseDuration(env("MESSENGER_DRAIN_DELAY", "0s")); err != nil || d < 0 || d > 5*time.Minute {
		errs = append(errs, errors.New("MESSENGER_DRAIN_DELAY must be a duration from 0s to 5m, like 5s"))
	} else if c.ShutdownTimeout > 0 && d >= c.ShutdownTimeout {
		errs = append(errs, errors.New("MESSENGER_DRAIN_DELAY must be shorter than MESSENGER_SHUTDOWN_TIMEOUT, which it counts inside"))
	} else {
		c.DrainDelay = d
	}
	if d, err := time.ParseDuration(env("MESSENGER_DB_TIMEOUT", store.DefaultTimeout.String())); err != nil || d < 500*time.Millisecond || d > 5*time.Minute {
		errs = append(errs, errors.New("MESSENGER_DB_TIMEOUT must be a duration from 500ms to 5m, like 5s"))
	} else {
		c.DBTimeout = d
	}

	for _, p := range strings.Split(env("MESSENGER_TRUSTED_PROXIES", ""), ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !strings.Contains(p, "/") {
			if ip, err := netip.ParseAddr(p); err == nil {
				p = netip.PrefixFrom(ip, ip.BitLen()).String()
			}
		}
		_, n, err := net.ParseCIDR(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("MESSENGER_TRUSTED_PROXIES: %q is not an address or CIDR like 10.0.0.0/8", p))
			continue
		}
		c.TrustedProxies = append(c.TrustedProxies, n)
	}

	c.RateLimits = ratelimit.DefaultRates()
	for _, action := range ratelimit.Actions {
		name := rateLimitVars[action]
		v := env(name, "")
		if v == "" {
			continue
		}
		r, err := ratelimit.ParseRate(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		c.RateLimits[action] = r
	}
	var err1, err2 error
	c.MaxStreamsPerUser, err1 = perUserCap(env("MESSENGER_MAX_STREAMS_PER_USER", "10"), "MESSENGER_MAX_STREAMS_PER_USER")
	c.MaxSessionsPerUser, err2 = perUserCap(env("MESSENGER_MAX_SESSIONS_PER_USER", "20"), "MESSENGER_MAX_SESSIONS_PER_USER")
	errs = append(errs, err1, err2)
	switch v := env("MESSENGER_STREAMS_DETACH", "1"); v {
	case "1":
	case "0":
		c.StreamsOnHTTP = true
	default:
		errs = append(errs, fmt.Errorf("MESSENGER_STREAMS_DETACH must be 1 or 0, not %q", v))
	}
	c.MaxPushDevices, err1 = perUserCap(env("MESSENGER_MAX_PUSH_DEVICES", "20"), "MESSENGER_MAX_PUSH_DEVICES")
	errs = append(errs, err1)
	if n, err := boundedInt(env("MESSENGER_SEND_TRANSACTIONS", strconv.Itoa(chat.DefaultSendTransactions)), 1, 32); err != nil {
		errs = append(errs, fmt.Errorf("MESSENGER_SEND_TRANSACTIONS must be a whole number from 1 to 32, not %q", env("MESSENGER_SEND_TRANSACTIONS", "")))
	} else {
		c.SendTransactions = int(n)
	}
	if d, err := time.ParseDuration(env("MESSENGER_ARCHIVE_AFTER", store.DefaultArchive.OlderThan.String())); err != nil || d < 24*time.Hour || d > 100*8760*time.Hour {
		errs = append(errs, errors.New("MESSENGER_ARCHIVE_AFTER must be a duration from 24h to 876000h, like 8760h (a year)"))
	} else {
		c.Archive.OlderThan = d
	}
	if d, err := time.ParseDuration(env("MESSENGER_ARCHIVE_EVERY", "0s")); err != nil || (d != 0 && (d < time.Minute || d > 30*24*time.Hour)) {
		errs = append(errs, errors.New("MESSENGER_ARCHIVE_EVERY must be 0s (off) or a duration from 1m to 720h, like 24h"))
	} else {
		c.ArchiveEvery = d
	}
	if n, err := boundedInt(env("MESSENGER_ARCHIVE_BATCH", strconv.Itoa(store.DefaultArchive.Batch)), 1, 10000); err != nil {
		errs = append(errs, fmt.Errorf("MESSENGER_ARCHIVE_BATCH must be a whole number from 1 to 10000, not %q", env("MESSENGER_ARCHIVE_BATCH", "")))
	} else {
		c.Archive.Batch = int(n)
	}
	if d, err := time.ParseDuration(env("MESSENGER_ARCHIVE_PAUSE", store.DefaultArchive.Pause.String())); err != nil || d < 0 || d > time.Minute {
		errs = append(errs, errors.New("MESSENGER_ARCHIVE_PAUSE must be a duration from 0s to 1m, like 10ms"))
	} else {
		c.Archive.Pause = d
	}
	if n, err := boundedInt(env("MESSENGER_PRESENCE_BATCH_SIZE", strconv.Itoa(chat.DefaultPresenceConfig.BatchSize)), 1, store.MaxPresenceBatch); err != nil {
		errs = append(errs, fmt.Errorf("MESSENGER_PRESENCE_BATCH_SIZE must be a whole number from 1 to %d, not %q", store.MaxPresenceBatch, env("MESSENGER_PRESENCE_BATCH_SIZE", "")))
	} else {
		c.Presence.BatchSize = int(n)
	}
	if d, err := time.ParseDuration(env("MESSENGER_PRESENCE_RETRY_MAX", chat.DefaultPresenceConfig.RetryMax.String())); err != nil || d < 100*time.Millisecond || d > 10*time.Minute {
		errs = append(errs, errors.New("MESSENGER_PRESENCE_RETRY_MAX must be a duration from 100ms to 10m, like 30s"))
	} else {
		c.Presence.RetryMax = d
	}
	if d, err := time.ParseDuration(env("MESSENGER_RECEIPT_COALESCE", chat.DefaultReceiptCoalesce.String())); err != nil || d < 0 || d > time.Minute {
		errs = append(errs, errors.New("MESSENGER_RECEIPT_COALESCE must be a duration from 0 (off) to 1m, like 1s"))
	} else {
		c.ReceiptCoalesce = d
	}
	if d, err := time.ParseDuration(env("MESSENGER_TYPING_ANNOUNCE_EVERY", chat.DefaultTypingAnnounceEvery.String())); err != nil || d < 0 || d > 2*time.Second {
		errs = append(errs, errors.New("MESSENGER_TYPING_ANNOUNCE_EVERY must be a duration from 0 (every signal) to 2s, like 1s"))
	} else {
		c.TypingAnnounceEvery = d
	}
	if d, err := time.ParseDuration(env("MESSENGER_STREAM_WRITE_TIMEOUT", handlers.DefaultStreamWriteTimeout.String())); err != nil || d < 100*time.Millisecond || d > 10*time.Minute {
		errs = append(errs, errors.New("MESSENGER_STREAM_WRITE_TIMEOUT must be a duration from 100ms to 10m, like 10s"))
	} else {
		c.StreamWriteTimeout = d
	}
	if d, err := time.ParseDuration(env("MESSENGER_STREAM_HIDDEN_CLOSE", handlers.DefaultStreamHiddenClose.String())); err != nil || d < time.Second || d > 24*time.Hour {
		errs = append(errs, errors.New("MESSENGER_STREAM_HIDDEN_CLOSE must be a duration from 1s to 24h, like 5m"))
	} else {
		c.StreamHiddenClose = d
	}
	if n, err := boundedInt(env("MESSENGER_DB_MAX_CONNS", strconv.Itoa(store.DefaultMaxConns)), 2, 1000); err != nil {
		errs = append(errs, fmt.Errorf("MESSENGER_DB_MAX_CONNS must be a whole number from 2 to 1000, not %q", env("MESSENGER_DB_MAX_CONNS", "")))
	} else {
		c.DBMaxConns = int(n)
	}
	if v := env("MESSENGER_JOB_WORKERS", "4"); v == "0" {
		c.JobWorkers = 0
	} else {
		if c.JobWorkers, err1 = perUserCap(v, "MESSENGER_JOB_WORKERS"); err1 != nil {
			errs = append(errs, fmt.Errorf("MESSENGER_JOB_WORKERS must be 0 (no workers) or a whole number from 1 to 1000, not %q", v))
		}
	}
	if c.JobTimeout, err1 = time.ParseDuration(env("MESSENGER_JOB_TIMEOUT", jobs.DefaultJobTimeout.String())); err1 != nil || c.JobTimeout < time.Second || c.JobTimeout > time.Hour {
		errs = append(errs, fmt.Errorf("MESSENGER_JOB_TIMEOUT must be a duration from 1s to 1h, not %q", env("MESSENGER_JOB_TIMEOUT", "")))
	}
	rescue := env("MESSENGER_JOB_RESCUE_AFTER", "")
	if rescue != "" {
		if c.JobRescueAfter, err1 = time.ParseDuration(rescue); err1 != nil || c.JobRescueAfter <= c.JobTimeout || c.JobRescueAfter > 24*time.Hour {
			errs = append(errs, fmt.Errorf("MESSENGER_JOB_RESCUE_AFTER must be a duration longer than MESSENGER_JOB_TIMEOUT (%s) and at most 24h, not %q", c.JobTimeout, rescue))
		}
	}

	errs = append(errs, c.loadFiles(env)...)
	errs = append(errs, c.loadPush(env)...)
	errs = append(errs, c.loadMail(env)...)
	errs = append(errs, c.loadNotify(env)...)
	errs = append(errs, c.loadBackup(env)...)

	if err := c.LogLevel.UnmarshalText([]byte(env("MESSENGER_LOG_LEVEL", "info"))); err != nil {
		errs = append(errs, errors.New("MESSENGER_LOG_LEVEL must be debug, info, warn or error"))
	}
	c.DataDir, _ = filepath.Abs(c.DataDir)
	return c, errors.Join(errs...)
}

// loadFiles reads the files' storage, limits and scanner.
func (c *config) loadFiles(env func(key, def string) string) []error {
	var errs []error
	c.StorageURL = env("MESSENGER_STORAGE_URL", "")
	if c.StorageURL != "" && !strings.HasPrefix(c.StorageURL, "s3://") {
		// Never echo the URL: it may carry a secret key.
		errs = append(errs, errors.New("MESSENGER_STORAGE_URL must be empty (the local disk) or s3://ACCESS:SECRET@host:port/bucket?region=&secure="))
	}
	var err error
	if c.MaxUploadBytes, err = boundedInt(env("MESSENGER_MAX_UPLOAD_BYTES", strconv.Itoa(defaultMaxUploadBytes)), 1, maxMaxUploadBytes); err != nil {
		errs = append(errs, fmt.Errorf("MESSENGER_MAX_UPLOAD_BYTES must be a number of bytes from 1 to %d, not %q", maxMaxUploadBytes, env("MESSENGER_MAX_UPLOAD_BYTES", "")))
	}
	if c.MaxImagePixels, err = boundedInt(env("MESSENGER_MAX_IMAGE_PIXELS", strconv.Itoa(defaultMaxImagePixels)), 1, maxMaxImagePixels); err != nil {
		errs = append(errs, fmt.Errorf("MESSENGER_MAX_IMAGE_PIXELS must be a number of pixels from 1 to %d, not %q", maxMaxImagePixels, env("MESSENGER_MAX_IMAGE_PIXELS", "")))
	}
	if c.ThumbnailMaxPixels, err = boundedInt(env("MESSENGER_THUMBNAIL_MAX_PIXELS", strconv.Itoa(defaultThumbnailMaxPixels)), 1, maxThumbnailMaxPixels); err != nil {
		errs = append(errs, fmt.Errorf("MESSENGER_THUMBNAIL_MAX_PIXELS must be a number of pixels from 1 to %d, not %q", int64(maxThumbnailMaxPixels), env("MESSENGER_THUMBNAIL_MAX_PIXELS", "")))
	}
	n, err := boundedInt(env("MESSENGER_MAX_FILES_PER_UPLOAD", strconv.Itoa(defaultMaxFilesPerUpload)), 1, maxMaxFilesPerUpload)
	if err != nil {
		errs = append(errs, fmt.Errorf("MESSENGER_MAX_FILES_PER_UPLOAD must be a whole number from 1 to %d, not %q", maxMaxFilesPerUpload, env("MESSENGER_MAX_FILES_PER_UPLOAD", "")))
	}
	c.MaxFilesPerUpload = int(n)

	c.ClamdAddr = env("MESSENGER_CLAMD_ADDR", "")
	if c.ClamdAddr != "" {
		if _, err := scan.New(c.ClamdAddr, scan.Options{}); err != nil {
			errs = append(errs, fmt.Errorf("MESSENGER_CLAMD_ADDR: %q is not tcp://host:port or unix:///path/to/clamd.sock", c.ClamdAddr))
		}
	}
	switch v := env("MESSENGER_SCAN", "on"); v {
	case "on":
	case "off":
		c.ScanOff = true
		if c.ClamdAddr != "" {
			errs = append(errs, errors.New("MESSENGER_SCAN=off and MESSENGER_CLAMD_ADDR are both set: unset one"))
		}
	default:
		errs = append(errs, fmt.Errorf("MESSENGER_SCAN must be on or off, not %q", v))
	}
	return errs
}

// requireScanner refuses a production configuration (not dev mode) that has no scanner and
// does not say MESSENGER_SCAN=off: files are never stored unscanned by omission. Only the
// processes that handle files (serve, worker) check it; migrate and demo do not.
func (c config) requireScanner() error {
	if !c.Dev && c.ClamdAddr == "" && !c.ScanOff {
		return errors.New("files must be virus-scanned outside dev mode: set MESSENGER_CLAMD_ADDR (tcp://host:port or unix:///path to clamd), or MESSENGER_SCAN=off to store files unscanned")
	}
	return nil
}

// boundedInt reads a whole number from lo to hi.
func boundedInt(v string, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%q is not a whole number from %d to %d", v, lo, hi)
	}
	return n, nil
}

// perUserCap reads a per-user cap: a whole number from 1 to 1000.
func perUserCap(v, name string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		return 0, fmt.Errorf("%s must be a whole number from 1 to 1000, not %q", name, v)
	}
	return n, nil
}
