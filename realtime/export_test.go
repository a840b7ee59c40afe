package realtime

import (
	"context"
	"log/slog"
	"strings"
	"time"
)

// SetRedisTimings shortens the Redis engine's health-check timings for
// engines created until the returned restore is called, so fault tests need
// not wait for the production values. Not safe with parallel tests.
func SetRedisTimings(ping, read, waitRetry time.Duration) (restore func()) {
	old := defaultRedisTimings
	defaultRedisTimings.ping = ping
	defaultRedisTimings.read = read
	defaultRedisTimings.waitRetry = waitRetry
	return func() { defaultRedisTimings = old }
}

// SetHistoryLimits changes the history retention of engines created until
// the returned restore is called, so trimming and expiry tests stay fast.
// Not safe with parallel tests.
func SetHistoryLimits(maxLen int, ttl time.Duration) (restore func()) {
	old := defaultHistoryLimits
	defaultHistoryLimits = historyLimits{maxLen: maxLen, ttl: ttl}
	return func() { defaultHistoryLimits = old }
}

// NewRedisPrefixed is NewRedis with keys and pubsub channels under prefix
// instead of "messenger:", so a test owns its epoch and history keys.
func NewRedisPrefixed(ctx context.Context, url string, queueSize int, logger *slog.Logger, prefix string) (*Redis, error) {
	return newRedis(ctx, url, queueSize, logger, prefix)
}

// EpochKey is the Redis key holding the engine epoch.
func (r *Redis) EpochKey() string { return r.epochKey() }

// HistoryKey is the Redis stream holding channel's history.
func (r *Redis) HistoryKey(channel string) string { return r.historyKey(channel) }

// ForgetScript makes r call the publish script by a digest Redis does not
// know, so every publish takes the NOSCRIPT fallback. Call it before use.
func ForgetScript(r *Redis) { r.scriptSHA = strings.Repeat("0", 40) }
