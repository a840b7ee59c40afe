package realtime

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Tuning is what a test shortens or lowers of one engine it makes, so fault, trimming and
// expiry tests need not wait for the production values and can run in parallel. A zero
// field keeps the production value.
type Tuning struct {
	Presence PresenceTimings // all of them, or none

	HistoryMaxLen int
	HistoryTTL    time.Duration

	// The Redis engine's health checks: its PING period, the silence after which its
	// connection is presumed dead, the re-send period of a subscription barrier.
	RedisPing, RedisRead, RedisWaitRetry time.Duration

	MaxLostChannels int
}

func (tu Tuning) tuning() tuning {
	tn := defaultTuning()
	if tu.Presence != (PresenceTimings{}) {
		tn.presence = tu.Presence.config()
	}
	set := func(field *time.Duration, d time.Duration) {
		if d > 0 {
			*field = d
		}
	}
	if tu.HistoryMaxLen > 0 {
		tn.history.maxLen = tu.HistoryMaxLen
	}
	set(&tn.history.ttl, tu.HistoryTTL)
	set(&tn.redis.ping, tu.RedisPing)
	set(&tn.redis.read, tu.RedisRead)
	set(&tn.redis.waitRetry, tu.RedisWaitRetry)
	if tu.MaxLostChannels > 0 {
		tn.maxLost = tu.MaxLostChannels
	}
	return tn
}

// NewMemoryTuned is NewMemory tuned by tu.
func NewMemoryTuned(queueSize int, tu Tuning) *Memory { return newMemory(queueSize, tu.tuning()) }

// NewRedisTuned is NewRedis with keys and pubsub channels under prefix instead of
// "messenger:", so a test owns its epoch and history keys, tuned by tu.
func NewRedisTuned(ctx context.Context, url string, queueSize int, logger *slog.Logger, prefix string, tu Tuning) (*Redis, error) {
	return newRedis(ctx, url, false, queueSize, logger, prefix, tu.tuning())
}

// NewRedisClusterTuned is NewRedisTuned on the Redis Cluster at url.
func NewRedisClusterTuned(ctx context.Context, url string, queueSize int, logger *slog.Logger, prefix string, tu Tuning) (*Redis, error) {
	return newRedis(ctx, url, true, queueSize, logger, prefix, tu.tuning())
}

// NewRedisPrefixed is NewRedisTuned with the production values.
func NewRedisPrefixed(ctx context.Context, url string, queueSize int, logger *slog.Logger, prefix string) (*Redis, error) {
	return NewRedisTuned(ctx, url, queueSize, logger, prefix, Tuning{})
}

// EpochKey is the Redis key holding the engine epoch.
func (r *Redis) EpochKey() string { return r.epochKey("") }

// HistoryKey is the Redis stream holding channel's history.
func (r *Redis) HistoryKey(channel string) string { return r.historyKey(channel) }

// BodiesKey is the Redis stream holding the bodies of fanned-out events of channel's
// bucket.
func (r *Redis) BodiesKey(channel string) string { return r.bodiesKey(channel) }

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
	return NewMemoryTuned(queueSize, Tuning{Presence: pt})
}

// NewRedisTimed is NewRedisPrefixed with the given presence timings.
func NewRedisTimed(ctx context.Context, url string, queueSize int, logger *slog.Logger, prefix string, pt PresenceTimings) (*Redis, error) {
	return NewRedisTuned(ctx, url, queueSize, logger, prefix, Tuning{Presence: pt})
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
func (r *Redis) PresenceUsersKey() string { return r.presenceIndexKeys()[0] }

// TypingKey is the Redis sorted set of the users typing in convID.
func (r *Redis) TypingKey(convID int64) string { return r.typingKey(convID) }

// HoldRepair takes r's repair lock, as a repair that hangs on a slow Redis would, until
// release is called.
func (r *Redis) HoldRepair() (release func()) {
	r.repairSem <- struct{}{}
	return func() { <-r.repairSem }
}

// PubSubName is the Redis pub/sub channel that channel's events go through.
func (r *Redis) PubSubName(channel string) string { return r.pubsubName(channel) }

// EpochKeyOf is the key of the epoch of channel's event IDs.
func (r *Redis) EpochKeyOf(channel string) string { return r.epochKey(channel) }

// PresenceIndexKey is the index of online users that lists userID.
func (r *Redis) PresenceIndexKey(userID int64) string { return r.presenceIndexKey(userID) }

// Prefix is the start of r's keys and pub/sub channels.
func (r *Redis) Prefix() string { return r.prefix }

// SameEpochChannel answers a history channel other than c whose IDs share c's epoch: any
// other on a single Redis, one of c's bucket on a cluster (redis_cluster.go).
func SameEpochChannel(c string) string {
	for i := 0; ; i++ {
		other := c + "-" + strconv.Itoa(i)
		if bucket(other) == bucket(c) {
			return other
		}
	}
}

// StreamsKey and EvictedKey are the Redis sets of userID's admitted and evicted streams.
func (r *Redis) StreamsKey(userID int64) string { return r.streamsKey(userID) }

func (r *Redis) EvictedKey(userID int64) string { return r.evictedKey(userID) }
