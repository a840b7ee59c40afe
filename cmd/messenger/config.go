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
	"github.com/dreamseed/messenger/handlers"
	"github.com/dreamseed/messenger/ratelimit"
)

// config is the messenger's configuration, read from the environment (see CONTRACT.md).
type config struct {
	Addr            string
	DatabaseURL     string // migrations run with it; unset: the embedded PostgreSQL
	AppDatabaseURL  string // the server's own connection; derived from DatabaseURL when unset
	AppDBPassword   string
	RedisURL        string // unset: the memory engine (one process)
	RedisPrefix     string // of every Redis key and pub/sub channel: deployments sharing a Redis differ
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
	MetricsAddr     string          // the /metrics listener; "" when off
	MaxBodyBytes    int64           // every request body but an upload's
	JWTMaxLifetime  time.Duration   // the longest a portal token may live
	BodyReadTimeout time.Duration   // how long a form or JSON body may take to arrive
	RateLimits      ratelimit.Rates // per user (or address, or portal subject) and action
	TrustedProxies  []*net.IPNet    // reverse proxies whose X-Forwarded-For names the client
	// MaxStreamsPerUser caps a user's live streams (the oldest closes), MaxSessionsPerUser
	// their browser sessions (the oldest is revoked).
	MaxStreamsPerUser  int
	MaxSessionsPerUser int
	// JobWorkers is how many background jobs this process works at once; 0: none, it only
	// enqueues them (for a separate worker process).
	JobWorkers int
}

// rateLimitVars names the variable of each rate limit.
var rateLimitVars = map[ratelimit.Action]string{
	ratelimit.Send:          "MESSENGER_RATE_SEND",
	ratelimit.Typing:        "MESSENGER_RATE_TYPING",
	ratelimit.Read:          "MESSENGER_RATE_READ",
	ratelimit.Create:        "MESSENGER_RATE_CREATE",
	ratelimit.Invite:        "MESSENGER_RATE_INVITE",
	ratelimit.SignInAddress: "MESSENGER_RATE_SIGNIN_IP",
	ratelimit.SignInSubject: "MESSENGER_RATE_SIGNIN_SUBJECT",
}

// minBodyBytes is the smallest body limit allowed: the longest message escaped as heavily
// as JSON or a form can (12 bytes a character) and the rest of its form.
const minBodyBytes = 12*messenger.MaxMessageLength + 4<<10

// Embedded reports whether the server runs its own PostgreSQL.
func (c config) Embedded() bool { return c.DatabaseURL == "" }

func loadConfig(getenv func(string) string) (config, error) {
	env := func(key, def string) string {
		if v := strings.TrimSpace(getenv(key)); v != "" {
			return v
		}
		return def
	}
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
	if v := env("MESSENGER_JOB_WORKERS", "4"); v == "0" {
		c.JobWorkers = 0
	} else {
		if c.JobWorkers, err1 = perUserCap(v, "MESSENGER_JOB_WORKERS"); err1 != nil {
			errs = append(errs, fmt.Errorf("MESSENGER_JOB_WORKERS must be 0 (no workers) or a whole number from 1 to 1000, not %q", v))
		}
	}

	if err := c.LogLevel.UnmarshalText([]byte(env("MESSENGER_LOG_LEVEL", "info"))); err != nil {
		errs = append(errs, errors.New("MESSENGER_LOG_LEVEL must be debug, info, warn or error"))
	}
	c.DataDir, _ = filepath.Abs(c.DataDir)
	return c, errors.Join(errs...)
}

// perUserCap reads a per-user cap: a whole number from 1 to 1000.
func perUserCap(v, name string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		return 0, fmt.Errorf("%s must be a whole number from 1 to 1000, not %q", name, v)
	}
	return n, nil
}
