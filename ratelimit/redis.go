package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// takeScript is one bucket's token taken atomically, with Redis's clock so that every
// process agrees: KEYS[1] is a hash {tokens, at (µs)}, ARGV is per second and burst. It
// answers {1, 0} or {0, µs until a token is back}. The key lapses once the bucket would
// be full again, so idle buckets cost nothing.
const takeScript = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1])
local at = tonumber(b[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate / 1000000)
end
local ok = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  ok = 1
else
  wait = math.ceil((1 - tokens) * 1000000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
return {ok, wait}
`

var takeRedisScript = redis.NewScript(takeScript)

// Redis is the Limiter of several processes: the buckets live in Redis under a prefix.
type Redis struct {
	client redis.UniversalClient
	prefix string
}

// NewRedis answers a limiter on the Redis at url, its keys under prefix (the deployment's
// MESSENGER_REDIS_PREFIX). It has its own small connection pool with short timeouts: a
// Redis that does not answer must not hold requests up. It does not dial until used.
func NewRedis(url, prefix string) (*Redis, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("ratelimit: redis url: %w", err)
	}
	opts.DialTimeout = 200 * time.Millisecond
	opts.ReadTimeout = 200 * time.Millisecond
	opts.WriteTimeout = 200 * time.Millisecond
	opts.MaxRetries = 0
	opts.ContextTimeoutEnabled = true
	return &Redis{client: redis.NewClient(opts), prefix: prefix + "ratelimit:"}, nil
}

// NewRedisCluster is NewRedis on a Redis Cluster, url naming one node or several as
// go-redis's ParseClusterURL reads it (redis://host1:6379?addr=host2:6379). Each bucket
// is one key, so its script runs on the node owning the key's slot.
func NewRedisCluster(url, prefix string) (*Redis, error) {
	opts, err := redis.ParseClusterURL(url)
	if err != nil {
		return nil, fmt.Errorf("ratelimit: redis cluster url: %w", err)
	}
	opts.DialTimeout = 200 * time.Millisecond
	opts.ReadTimeout = 200 * time.Millisecond
	opts.WriteTimeout = 200 * time.Millisecond
	opts.MaxRetries = 0
	opts.ContextTimeoutEnabled = true
	// go-redis corrects its map of slots on MOVED, otherwise once a minute: after a
	// failover the buckets of a dead master would fail (open) that long.
	opts.ClusterStateReloadInterval = 5 * time.Second
	return &Redis{client: redis.NewClusterClient(opts), prefix: prefix + "ratelimit:"}, nil
}

// Take implements Limiter.
func (r *Redis) Take(ctx context.Context, key string, rate Rate) (bool, time.Duration, error) {
	res, err := takeRedisScript.Run(ctx, r.client, []string{r.prefix + key},
		strconv.FormatFloat(rate.PerSecond, 'f', -1, 64), rate.Burst).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("ratelimit: redis: %w", err)
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("ratelimit: redis answered %v", res)
	}
	return res[0] == 1, time.Duration(res[1]) * time.Microsecond, nil
}

// Close closes the connections.
func (r *Redis) Close() error { return r.client.Close() }
