package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dreamseed/messenger/auth"
)

// config is the messenger's configuration, read from the environment (see CONTRACT.md).
type config struct {
	Addr           string
	DatabaseURL    string // migrations run with it; unset: the embedded PostgreSQL
	AppDatabaseURL string // the server's own connection; derived from DatabaseURL when unset
	AppDBPassword  string
	RedisURL       string // unset: the memory engine (one process)
	RedisPrefix    string // of every Redis key and pub/sub channel: deployments sharing a Redis differ
	JWTSecret      []byte
	JWKSURL        string
	Issuer         string
	Audience       string
	PortalOrigins  []string
	BaseURL        string
	Dev            bool
	DataDir        string
	CookieSecure   bool
	CookieSameSite http.SameSite
	LogLevel       slog.Level
	// MaxStreamsPerUser caps a user's live streams (the oldest closes), MaxSessionsPerUser
	// their browser sessions (the oldest is revoked).
	MaxStreamsPerUser  int
	MaxSessionsPerUser int
}

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
		c.CookieSecure = base.Scheme == "https" || host == "localhost" || host == "127.0.0.1" || host == "::1"
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

	var err1, err2 error
	c.MaxStreamsPerUser, err1 = perUserCap(env("MESSENGER_MAX_STREAMS_PER_USER", "10"), "MESSENGER_MAX_STREAMS_PER_USER")
	c.MaxSessionsPerUser, err2 = perUserCap(env("MESSENGER_MAX_SESSIONS_PER_USER", "20"), "MESSENGER_MAX_SESSIONS_PER_USER")
	errs = append(errs, err1, err2)

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
