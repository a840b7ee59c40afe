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
	return newRedis(ctx, url, queueSize, logger, prefix, defaultPresenceConfig)
}

// EpochKey is the Redis key holding the engine epoch.
func (r *Redis) EpochKey() string { return r.epochKey() }

// HistoryKey is the Redis stream holding channel's history.
func (r *Redis) HistoryKey(channel string) string { return r.historyKey(channel) }

// ForgetScript makes r call the publish script by a digest Redis does not
// know, so every publish takes the NOSCRIPT fallback. Call it before use.
func ForgetScript(r *Redis) { r.scriptSHA = strings.Repeat("0", 40) }

// PresenceTimings are the presence and typing timings of one engine, and
// the capacity of its PresenceExpired channel.
type PresenceTimings struct {
	Refresh, TTL, Sweep, Typing time.Duration
	Buffer                      int
}

func (pt PresenceTimings) config() presenceConfig {
	return presenceConfig{refresh: pt.Refresh, ttl: pt.TTL, sweep: pt.Sweep, typingTTL: pt.Typing, buffer: pt.Buffer}
}

// NewMemoryTimed is NewMemory with the given presence timings, so lapse and
// expiry tests stay fast (and can run in parallel).
func NewMemoryTimed(queueSize int, pt PresenceTimings) *Memory {
	return newMemory(queueSize, pt.config())
}

// NewRedisTimed is NewRedisPrefixed with the given presence timings.
func NewRedisTimed(ctx context.Context, url string, queueSize int, logger *slog.Logger, prefix string, pt PresenceTimings) (*Redis, error) {
	return newRedis(ctx, url, queueSize, logger, prefix, pt.config())
}

// StopPresenceRefresh stops e's presence refresher, as if its process had
// hung: its connections lapse after the presence TTL.
func StopPresenceRefresh(e Engine) {
	switch e := e.(type) {
	case *Memory:
		e.pres.stopRefreshing()
	case *Redis:
		e.pres.stopRefreshing()
	default:
		panic("StopPresenceRefresh: unknown engine")
	}
}

// PresenceKey is the Redis sorted set of userID's connections.
func (r *Redis) PresenceKey(userID int64) string { return r.presenceKey(userID) }

// PresenceUsersKey is the Redis index of online users.
func (r *Redis) PresenceUsersKey() string { return r.presenceUsersKey() }

// TypingKey is the Redis sorted set of the users typing in convID.
func (r *Redis) TypingKey(convID int64) string { return r.typingKey(convID) }

// SetMaxLostChannels lowers how many channels with lost events engines created until the
// returned restore is called remember. Not safe with parallel tests.
func SetMaxLostChannels(n int) (restore func()) {
	old := defaultMaxLost
	defaultMaxLost = n
	return func() { defaultMaxLost = old }
}

// HoldRepair takes r's repair lock, as a repair that hangs on a slow Redis would, until
// release is called.
func (r *Redis) HoldRepair() (release func()) {
	r.repairSem <- struct{}{}
	return func() { <-r.repairSem }
}
