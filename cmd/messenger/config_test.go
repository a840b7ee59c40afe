package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/handlers"
	"github.com/dreamseed/messenger/ratelimit"
	"github.com/dreamseed/messenger/store"
)

func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestLoadConfig(t *testing.T) {
	t.Run("fresh machine: embedded database, dev mode, dev secret", func(t *testing.T) {
		c, err := loadConfig(envOf(nil))
		if err != nil {
			t.Fatal(err)
		}
		if !c.Embedded() || !c.Dev || len(c.JWTSecret) == 0 || c.Addr != ":8001" || c.CookieSameSite != http.SameSiteLaxMode ||
			c.MaxStreamsPerUser != 10 || c.MaxSessionsPerUser != 20 || c.JobWorkers != 4 {
			t.Errorf("config = %+v", c)
		}
	})
	t.Run("real database: dev off, a secret required", func(t *testing.T) {
		_, err := loadConfig(envOf(map[string]string{"DATABASE_URL": "postgres://db/messenger"}))
		if err == nil || !strings.Contains(err.Error(), "MESSENGER_JWT_SECRET or MESSENGER_JWKS_URL") {
			t.Errorf("err = %v, want a message naming the missing secret", err)
		}
	})
	t.Run("portal origins make the cookie cross-site", func(t *testing.T) {
		c, err := loadConfig(envOf(map[string]string{
			"DATABASE_URL": "postgres://db/messenger", "MESSENGER_JWT_SECRET": strings.Repeat("s", 32),
			"MESSENGER_PORTAL_ORIGINS": "https://portal.example/, https://www.portal.example",
		}))
		if err != nil {
			t.Fatal(err)
		}
		if c.Dev || c.CookieSameSite != http.SameSiteNoneMode || len(c.PortalOrigins) != 2 || c.PortalOrigins[0] != "https://portal.example" {
			t.Errorf("config = %+v", c)
		}
	})
	t.Run("per-user caps", func(t *testing.T) {
		c, err := loadConfig(envOf(map[string]string{"MESSENGER_MAX_STREAMS_PER_USER": "3", "MESSENGER_MAX_SESSIONS_PER_USER": "5"}))
		if err != nil || c.MaxStreamsPerUser != 3 || c.MaxSessionsPerUser != 5 {
			t.Errorf("config = %+v, %v", c, err)
		}
		for _, bad := range []string{"0", "-1", "many", "1001"} {
			_, err := loadConfig(envOf(map[string]string{"MESSENGER_MAX_STREAMS_PER_USER": bad, "MESSENGER_MAX_SESSIONS_PER_USER": bad}))
			for _, want := range []string{"MESSENGER_MAX_STREAMS_PER_USER", "MESSENGER_MAX_SESSIONS_PER_USER"} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("%q: err = %v, want it to name %s", bad, err, want)
				}
			}
		}
	})
	t.Run("notifications", func(t *testing.T) {
		c, err := loadConfig(envOf(map[string]string{"MESSENGER_QUIET_HOURS_TEACHER": "off",
			"MESSENGER_QUIET_HOURS_PARENT": "22:00-07:00", "MESSENGER_MAX_KEYWORDS": "20"}))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := c.Notify.QuietDefaults["teacher"]; ok || c.Notify.QuietDefaults["parent"].String() != "22:00-07:00" ||
			c.Notify.MaxKeywords != 20 || c.Notify.MaxKeywordChars != 50 {
			t.Errorf("notify = %+v", c.Notify)
		}
		if c, _ := loadConfig(envOf(nil)); c.Notify.QuietDefaults["teacher"].String() != "21:00-08:00" {
			t.Errorf("teachers' default = %v", c.Notify.QuietDefaults)
		}
		for name, bad := range map[string]string{"MESSENGER_QUIET_HOURS_STAFF": "9-5", "MESSENGER_MAX_KEYWORDS": "101",
			"MESSENGER_MAX_KEYWORD_CHARS": "0", "MESSENGER_QUIET_HOURS_STUDENT": "08:00-08:00"} {
			if _, err := loadConfig(envOf(map[string]string{name: bad})); err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%s=%q: err = %v", name, bad, err)
			}
		}
	})
	t.Run("job workers", func(t *testing.T) {
		c, err := loadConfig(envOf(map[string]string{"MESSENGER_JOB_WORKERS": "0"}))
		if err != nil || c.JobWorkers != 0 {
			t.Errorf("config = %+v, %v", c, err)
		}
		for _, bad := range []string{"-1", "some", "1001"} {
			_, err := loadConfig(envOf(map[string]string{"MESSENGER_JOB_WORKERS": bad}))
			if err == nil || !strings.Contains(err.Error(), "MESSENGER_JOB_WORKERS") {
				t.Errorf("%q: err = %v, want it to name MESSENGER_JOB_WORKERS", bad, err)
			}
		}
	})
	t.Run("send transactions", func(t *testing.T) {
		if c, err := loadConfig(envOf(nil)); err != nil || c.SendTransactions != chat.DefaultSendTransactions {
			t.Errorf("default = %d, %v", c.SendTransactions, err)
		}
		if c, err := loadConfig(envOf(map[string]string{"MESSENGER_SEND_TRANSACTIONS": "4"})); err != nil || c.SendTransactions != 4 {
			t.Errorf("4 = %d, %v", c.SendTransactions, err)
		}
		for _, bad := range []string{"0", "-1", "two", "33"} {
			_, err := loadConfig(envOf(map[string]string{"MESSENGER_SEND_TRANSACTIONS": bad}))
			if err == nil || !strings.Contains(err.Error(), "MESSENGER_SEND_TRANSACTIONS") {
				t.Errorf("%q: err = %v, want it to name MESSENGER_SEND_TRANSACTIONS", bad, err)
			}
		}
	})
	t.Run("archive", func(t *testing.T) {
		if c, err := loadConfig(envOf(nil)); err != nil || c.Archive != store.DefaultArchive || c.ArchiveEvery != 0 {
			t.Errorf("default = %+v every %v, %v", c.Archive, c.ArchiveEvery, err)
		}
		c, err := loadConfig(envOf(map[string]string{"MESSENGER_ARCHIVE_AFTER": "720h", "MESSENGER_ARCHIVE_BATCH": "200",
			"MESSENGER_ARCHIVE_PAUSE": "5ms", "MESSENGER_ARCHIVE_EVERY": "24h"}))
		if err != nil || c.Archive != (store.ArchiveOptions{OlderThan: 720 * time.Hour, Batch: 200, Pause: 5 * time.Millisecond}) ||
			c.ArchiveEvery != 24*time.Hour {
			t.Errorf("set = %+v every %v, %v", c.Archive, c.ArchiveEvery, err)
		}
		for name, bads := range map[string][]string{
			"MESSENGER_ARCHIVE_AFTER": {"1h", "23h59m", "year", "-24h"},
			"MESSENGER_ARCHIVE_BATCH": {"0", "10001", "many"},
			"MESSENGER_ARCHIVE_PAUSE": {"-1ms", "2m", "x"},
			"MESSENGER_ARCHIVE_EVERY": {"30s", "721h", "daily"},
		} {
			for _, bad := range bads {
				_, err := loadConfig(envOf(map[string]string{name: bad}))
				if err == nil || !strings.Contains(err.Error(), name) {
					t.Errorf("%s=%q: err = %v, want it to name it", name, bad, err)
				}
			}
		}
	})
	t.Run("presence batches and streams", func(t *testing.T) {
		c, err := loadConfig(envOf(nil))
		if err != nil || c.Presence != chat.DefaultPresenceConfig || c.StreamWriteTimeout != handlers.DefaultStreamWriteTimeout ||
			c.StreamHiddenClose != handlers.DefaultStreamHiddenClose {
			t.Errorf("defaults = %+v %v %v, %v", c.Presence, c.StreamWriteTimeout, c.StreamHiddenClose, err)
		}
		c, err = loadConfig(envOf(map[string]string{"MESSENGER_PRESENCE_BATCH_SIZE": "200", "MESSENGER_PRESENCE_RETRY_MAX": "5s",
			"MESSENGER_STREAM_WRITE_TIMEOUT": "2s", "MESSENGER_STREAM_HIDDEN_CLOSE": "30s"}))
		if err != nil || c.Presence.BatchSize != 200 || c.Presence.RetryMax != 5*time.Second || c.StreamWriteTimeout != 2*time.Second ||
			c.StreamHiddenClose != 30*time.Second {
			t.Errorf("set = %+v %v %v, %v", c.Presence, c.StreamWriteTimeout, c.StreamHiddenClose, err)
		}
		for name, bad := range map[string]string{"MESSENGER_PRESENCE_BATCH_SIZE": "10001", "MESSENGER_PRESENCE_RETRY_MAX": "1ms",
			"MESSENGER_STREAM_WRITE_TIMEOUT": "0s", "MESSENGER_STREAM_HIDDEN_CLOSE": "soon"} {
			if _, err := loadConfig(envOf(map[string]string{name: bad})); err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%s=%q: err = %v, want it named", name, bad, err)
			}
		}
	})
	t.Run("receipts and typing", func(t *testing.T) {
		c, err := loadConfig(envOf(nil))
		if err != nil || c.ReceiptCoalesce != chat.DefaultReceiptCoalesce || c.TypingAnnounceEvery != chat.DefaultTypingAnnounceEvery {
			t.Errorf("defaults = %v %v, %v", c.ReceiptCoalesce, c.TypingAnnounceEvery, err)
		}
		c, err = loadConfig(envOf(map[string]string{"MESSENGER_RECEIPT_COALESCE": "0s", "MESSENGER_TYPING_ANNOUNCE_EVERY": "500ms"}))
		if err != nil || c.ReceiptCoalesce != 0 || c.TypingAnnounceEvery != 500*time.Millisecond {
			t.Errorf("set = %v %v, %v", c.ReceiptCoalesce, c.TypingAnnounceEvery, err)
		}
		for name, bad := range map[string]string{"MESSENGER_RECEIPT_COALESCE": "2m", "MESSENGER_TYPING_ANNOUNCE_EVERY": "3s"} {
			if _, err := loadConfig(envOf(map[string]string{name: bad})); err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%s=%q: err = %v, want it named", name, bad, err)
			}
		}
		if _, err := loadConfig(envOf(map[string]string{"MESSENGER_RECEIPT_COALESCE": "-1s"})); err == nil {
			t.Error("MESSENGER_RECEIPT_COALESCE=-1s was taken")
		}
	})
	t.Run("job timeout and rescue", func(t *testing.T) {
		c, err := loadConfig(envOf(map[string]string{"MESSENGER_JOB_TIMEOUT": "20s", "MESSENGER_JOB_RESCUE_AFTER": "30s"}))
		if err != nil || c.JobTimeout != 20*time.Second || c.JobRescueAfter != 30*time.Second {
			t.Errorf("config = %v %v, %v", c.JobTimeout, c.JobRescueAfter, err)
		}
		for _, bad := range []map[string]string{
			{"MESSENGER_JOB_TIMEOUT": "0s"}, {"MESSENGER_JOB_TIMEOUT": "soon"}, {"MESSENGER_JOB_TIMEOUT": "2h"},
			{"MESSENGER_JOB_RESCUE_AFTER": "30s"}, // not longer than the default timeout (1m)
			{"MESSENGER_JOB_TIMEOUT": "20s", "MESSENGER_JOB_RESCUE_AFTER": "later"},
		} {
			if _, err := loadConfig(envOf(bad)); err == nil || !strings.Contains(err.Error(), "MESSENGER_JOB_") {
				t.Errorf("%v: err = %v, want it to name the variable", bad, err)
			}
		}
	})
	t.Run("redis cluster", func(t *testing.T) {
		c, err := loadConfig(envOf(nil))
		if err != nil || c.RedisCluster {
			t.Errorf("default: cluster %v, %v", c.RedisCluster, err)
		}
		c, err = loadConfig(envOf(map[string]string{"REDIS_URL": "redis://r1:6379?addr=r2:6379", "MESSENGER_REDIS_CLUSTER": "1"}))
		if err != nil || !c.RedisCluster {
			t.Errorf("set: cluster %v, %v", c.RedisCluster, err)
		}
		for _, bad := range []map[string]string{
			{"MESSENGER_REDIS_CLUSTER": "1"}, // no REDIS_URL
			{"REDIS_URL": "redis://r1:6379", "MESSENGER_REDIS_CLUSTER": "yes"},
			{"REDIS_URL": "redis://r1:6379", "MESSENGER_REDIS_CLUSTER": "1", "MESSENGER_REDIS_PREFIX": "{m}:"},
		} {
			if _, err := loadConfig(envOf(bad)); err == nil || !strings.Contains(err.Error(), "MESSENGER_REDIS_CLUSTER") &&
				!strings.Contains(err.Error(), "MESSENGER_REDIS_PREFIX") {
				t.Errorf("%v: err = %v, want it named", bad, err)
			}
		}
	})
	t.Run("every bad value is named", func(t *testing.T) {
		_, err := loadConfig(envOf(map[string]string{
			"MESSENGER_DEV": "maybe", "MESSENGER_PORTAL_ORIGINS": "portal.example/path",
			"MESSENGER_COOKIE_SAMESITE": "sometimes", "MESSENGER_LOG_LEVEL": "loud", "MESSENGER_JWT_SECRET": "short",
			"MESSENGER_RATE_SEND": "fast", "MESSENGER_RATE_SIGNIN_IP": "10:0", "MESSENGER_TRUSTED_PROXIES": "10.0.0.1, nginx",
		}))
		for _, want := range []string{"MESSENGER_DEV", "MESSENGER_PORTAL_ORIGINS", "MESSENGER_COOKIE_SAMESITE", "MESSENGER_LOG_LEVEL", "at least 32 bytes",
			"MESSENGER_RATE_SEND", "MESSENGER_RATE_SIGNIN_IP", `MESSENGER_TRUSTED_PROXIES: "nginx"`} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v, want it to name %s", err, want)
			}
		}
	})
	t.Run("limits and the metrics listener", func(t *testing.T) {
		c, err := loadConfig(envOf(nil))
		if err != nil {
			t.Fatal(err)
		}
		if c.MaxBodyBytes != 64<<10 || c.JWTMaxLifetime != 24*time.Hour || c.MetricsAddr != "127.0.0.1:9101" || c.HTTPS || c.BodyReadTimeout != 30*time.Second || c.ShutdownTimeout != 15*time.Second {
			t.Errorf("defaults: body %d, JWT lifetime %s, metrics %q, https %v, shutdown %s", c.MaxBodyBytes, c.JWTMaxLifetime, c.MetricsAddr, c.HTTPS, c.ShutdownTimeout)
		}
		c, err = loadConfig(envOf(map[string]string{
			"MESSENGER_MAX_BODY_BYTES": "131072", "MESSENGER_JWT_MAX_LIFETIME": "2h", "MESSENGER_METRICS_ADDR": "off", "MESSENGER_BODY_READ_TIMEOUT": "5s",
			"MESSENGER_SHUTDOWN_TIMEOUT": "2m",
			"MESSENGER_BASE_URL":         "https://chat.school.example",
		}))
		if err != nil {
			t.Fatal(err)
		}
		if c.MaxBodyBytes != 128<<10 || c.JWTMaxLifetime != 2*time.Hour || c.MetricsAddr != "" || !c.HTTPS || c.BodyReadTimeout != 5*time.Second || c.ShutdownTimeout != 2*time.Minute {
			t.Errorf("set: body %d, JWT lifetime %s, metrics %q, https %v, shutdown %s", c.MaxBodyBytes, c.JWTMaxLifetime, c.MetricsAddr, c.HTTPS, c.ShutdownTimeout)
		}
		_, err = loadConfig(envOf(map[string]string{
			"MESSENGER_MAX_BODY_BYTES": "1000", "MESSENGER_JWT_MAX_LIFETIME": "forever", "MESSENGER_METRICS_ADDR": "nine-one-oh-one",
			"MESSENGER_BODY_READ_TIMEOUT": "0s", "MESSENGER_SHUTDOWN_TIMEOUT": "11m",
		}))
		for _, want := range []string{"MESSENGER_MAX_BODY_BYTES", "MESSENGER_JWT_MAX_LIFETIME", "MESSENGER_METRICS_ADDR", "MESSENGER_BODY_READ_TIMEOUT", "MESSENGER_SHUTDOWN_TIMEOUT"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v, want it to name %s", err, want)
			}
		}
		if c, err := loadConfig(envOf(nil)); err != nil || c.DBTimeout != 5*time.Second {
			t.Errorf("MESSENGER_DB_TIMEOUT unset: %s, %v; want 5s", c.DBTimeout, err)
		}
		if c, err := loadConfig(envOf(map[string]string{"MESSENGER_DB_TIMEOUT": "2s"})); err != nil || c.DBTimeout != 2*time.Second {
			t.Errorf("MESSENGER_DB_TIMEOUT=2s: %s, %v", c.DBTimeout, err)
		}
		for _, bad := range []string{"100ms", "6m", "abc"} {
			if _, err := loadConfig(envOf(map[string]string{"MESSENGER_DB_TIMEOUT": bad})); err == nil || !strings.Contains(err.Error(), "MESSENGER_DB_TIMEOUT") {
				t.Errorf("MESSENGER_DB_TIMEOUT=%s: %v, want it refused", bad, err)
			}
		}
		for _, bad := range []string{"0s", "-1h", "abc"} {
			if _, err := loadConfig(envOf(map[string]string{"MESSENGER_JWT_MAX_LIFETIME": bad})); err == nil {
				t.Errorf("MESSENGER_JWT_MAX_LIFETIME=%s accepted", bad)
			}
		}
		if c.DrainDelay != 0 {
			t.Errorf("default drain delay %s, want 0", c.DrainDelay)
		}
		if c, err := loadConfig(envOf(map[string]string{"MESSENGER_DRAIN_DELAY": "5s"})); err != nil || c.DrainDelay != 5*time.Second {
			t.Errorf("MESSENGER_DRAIN_DELAY=5s: %s, %v", c.DrainDelay, err)
		}
		// The delay counts inside the shutdown's bound, so it must leave room for the rest.
		for _, bad := range []map[string]string{{"MESSENGER_DRAIN_DELAY": "-1s"}, {"MESSENGER_DRAIN_DELAY": "soon"},
			{"MESSENGER_DRAIN_DELAY": "15s"}, {"MESSENGER_DRAIN_DELAY": "20s", "MESSENGER_SHUTDOWN_TIMEOUT": "10s"}} {
			if _, err := loadConfig(envOf(bad)); err == nil || !strings.Contains(err.Error(), "MESSENGER_DRAIN_DELAY") {
				t.Errorf("%v: err %v, want it to name MESSENGER_DRAIN_DELAY", bad, err)
			}
		}
	})
	t.Run("the profiler listener: off unless asked for, loopback only", func(t *testing.T) {
		c, err := loadConfig(envOf(nil))
		if err != nil || c.PprofAddr != "" {
			t.Fatalf("default: pprof %q, err %v; want off", c.PprofAddr, err)
		}
		for _, ok := range []string{"127.0.0.1:9102", "[::1]:9102", "localhost:9102"} {
			if c, err := loadConfig(envOf(map[string]string{"MESSENGER_PPROF_ADDR": ok})); err != nil || c.PprofAddr != ok {
				t.Errorf("%s: pprof %q, err %v", ok, c.PprofAddr, err)
			}
		}
		for _, bad := range []string{"0.0.0.0:9102", ":9102", "10.1.2.3:9102", "example.com:9102", "9102"} {
			if _, err := loadConfig(envOf(map[string]string{"MESSENGER_PPROF_ADDR": bad})); err == nil || !strings.Contains(err.Error(), "MESSENGER_PPROF_ADDR") {
				t.Errorf("%s: err = %v, want it refused", bad, err)
			}
		}
	})
	t.Run("trusted proxies: addresses and ranges", func(t *testing.T) {
		c, err := loadConfig(envOf(map[string]string{"MESSENGER_TRUSTED_PROXIES": "10.0.0.1, 172.16.0.0/12,::1"}))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, n := range c.TrustedProxies {
			got = append(got, n.String())
		}
		if strings.Join(got, " ") != "10.0.0.1/32 172.16.0.0/12 ::1/128" {
			t.Errorf("trusted proxies %v", got)
		}
	})
	t.Run("rate limits: defaults, each overridable, off", func(t *testing.T) {
		c, err := loadConfig(envOf(nil))
		if err != nil {
			t.Fatal(err)
		}
		if c.RateLimits[ratelimit.Send] != (ratelimit.Rate{PerSecond: 30, Burst: 60}) || len(c.RateLimits) != len(ratelimit.Actions) {
			t.Errorf("default rates %v", c.RateLimits)
		}
		c, err = loadConfig(envOf(map[string]string{"MESSENGER_RATE_SEND": "100:200", "MESSENGER_RATE_TYPING": "off"}))
		if err != nil {
			t.Fatal(err)
		}
		if c.RateLimits[ratelimit.Send] != (ratelimit.Rate{PerSecond: 100, Burst: 200}) || !c.RateLimits[ratelimit.Typing].Off() ||
			c.RateLimits[ratelimit.Read] != ratelimit.DefaultRates()[ratelimit.Read] {
			t.Errorf("rates %v", c.RateLimits)
		}
		for _, a := range ratelimit.Actions {
			if rateLimitVars[a] == "" {
				t.Errorf("action %s has no variable", a)
			}
		}
	})
}

func TestLoadConfigFiles(t *testing.T) {
	prod := map[string]string{"DATABASE_URL": "postgres://db/messenger", "MESSENGER_JWT_SECRET": strings.Repeat("s", 32)}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range prod {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	t.Run("defaults: the local disk, 10 MB, 50 megapixels, 10 files", func(t *testing.T) {
		c, err := loadConfig(envOf(nil))
		if err != nil {
			t.Fatal(err)
		}
		if c.StorageURL != "" || c.MaxUploadBytes != 10485760 || c.MaxImagePixels != 50000000 || c.MaxFilesPerUpload != 10 || c.ClamdAddr != "" || c.ScanOff ||
			c.ThumbnailMaxPixels != 100000000 {
			t.Errorf("config = %+v", c)
		}
		if err := c.requireScanner(); err != nil {
			t.Errorf("dev mode without a scanner refused: %v", err)
		}
	})
	t.Run("each set", func(t *testing.T) {
		c, err := loadConfig(envOf(with("MESSENGER_STORAGE_URL", "s3://k:s@b2.example:443/files", "MESSENGER_MAX_UPLOAD_BYTES", "20971520",
			"MESSENGER_MAX_IMAGE_PIXELS", "24000000", "MESSENGER_MAX_FILES_PER_UPLOAD", "3", "MESSENGER_CLAMD_ADDR", "unix:///run/clamav/clamd.ctl",
			"MESSENGER_THUMBNAIL_MAX_PIXELS", "30000000")))
		if err != nil {
			t.Fatal(err)
		}
		if c.StorageURL != "s3://k:s@b2.example:443/files" || c.MaxUploadBytes != 20<<20 || c.MaxImagePixels != 24000000 || c.MaxFilesPerUpload != 3 ||
			c.ThumbnailMaxPixels != 30000000 ||
			c.ClamdAddr != "unix:///run/clamav/clamd.ctl" || c.requireScanner() != nil {
			t.Errorf("config = %+v", c)
		}
	})
	t.Run("production without a scanner refuses to start, naming the variables", func(t *testing.T) {
		c, err := loadConfig(envOf(prod))
		if err != nil {
			t.Fatal(err)
		}
		err = c.requireScanner()
		for _, want := range []string{"MESSENGER_CLAMD_ADDR", "MESSENGER_SCAN=off"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v, want it to name %s", err, want)
			}
		}
		err = run(t.Context(), []string{"serve"}, envOf(prod), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "MESSENGER_CLAMD_ADDR") {
			t.Errorf("serve: err = %v, want the refusal", err)
		}
		c, err = loadConfig(envOf(with("MESSENGER_SCAN", "off")))
		if err != nil || !c.ScanOff || c.requireScanner() != nil {
			t.Errorf("MESSENGER_SCAN=off: %+v, %v", c, err)
		}
	})
	t.Run("every bad value is named, no secret echoed", func(t *testing.T) {
		_, err := loadConfig(envOf(with("MESSENGER_STORAGE_URL", "https://key:supersecret@b2.example/files", "MESSENGER_MAX_UPLOAD_BYTES", "0",
			"MESSENGER_MAX_IMAGE_PIXELS", "lots", "MESSENGER_MAX_FILES_PER_UPLOAD", "101", "MESSENGER_CLAMD_ADDR", "clamd:3310", "MESSENGER_SCAN", "maybe",
			"MESSENGER_THUMBNAIL_MAX_PIXELS", "0")))
		for _, want := range []string{"MESSENGER_STORAGE_URL", "MESSENGER_MAX_UPLOAD_BYTES", "MESSENGER_MAX_IMAGE_PIXELS", "MESSENGER_MAX_FILES_PER_UPLOAD",
			"MESSENGER_CLAMD_ADDR", "MESSENGER_SCAN", "MESSENGER_THUMBNAIL_MAX_PIXELS"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v, want it to name %s", err, want)
			}
		}
		if err != nil && strings.Contains(err.Error(), "supersecret") {
			t.Errorf("err echoes the storage secret: %v", err)
		}
		_, err = loadConfig(envOf(with("MESSENGER_SCAN", "off", "MESSENGER_CLAMD_ADDR", "tcp://127.0.0.1:3310")))
		if err == nil || !strings.Contains(err.Error(), "both set") {
			t.Errorf("scan off with a scanner: err = %v", err)
		}
	})
}
