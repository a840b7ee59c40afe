package realtime

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Stream registry: the live streams of each user in the order they opened, so that
// a user's streams beyond a cap close the oldest first, across processes. A stream
// is a presence connection (same ID), so a stream whose connection was
// disconnected or lapsed is not counted, and needs no removal of its own.

// streamsKeyPrefix names the Redis sorted set of a user's streams, scored by when
// they were admitted (Redis clock, microseconds).
const streamsKeyPrefix = "streams:"

// evictedKeyPrefix names the Redis sorted set of a user's streams that AdmitStream
// evicted while their connection is still live, scored like streamsKeyPrefix's.
const evictedKeyPrefix = "streams-evicted:"

// streamsKeyTTL is how long a user's registry outlives their last admitted stream.
const streamsKeyTTL = 7 * 24 * time.Hour

// admitScript forgets the streams of KEYS[1] (admitted) and KEYS[3] (evicted) whose
// connection is not live in the presence set KEYS[2], adds stream ARGV[1], and moves
// the oldest beyond ARGV[2] from KEYS[1] to KEYS[3], returning them.
var admitScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, key in ipairs({KEYS[1], KEYS[3]}) do
  for _, id in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    local exp = redis.call('ZSCORE', KEYS[2], id)
    if not exp or tonumber(exp) <= now then
      redis.call('ZREM', key, id)
    end
  end
end
local score = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZADD', KEYS[1], score, ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2])
if over <= 0 then
  return {}
end
local out = redis.call('ZRANGE', KEYS[1], 0, over - 1)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1)
for _, id in ipairs(out) do
  redis.call('ZADD', KEYS[3], score, id)
end
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return out
`)

// AdmitStream registers connID as userID's newest stream in Redis (see Engine).
func (r *Redis) AdmitStream(ctx context.Context, userID int64, connID string, max int) ([]string, error) {
	if connID == "" {
		return nil, ErrInvalidConnID
	}
	if r.closing() {
		return nil, ErrClosed
	}
	max = capOrNone(max)
	// On a cluster the three keys carry the user's hash tag (redis_cluster.go).
	keys := []string{r.streamsKey(userID), r.presenceKey(userID), r.evictedKey(userID)}
	evicted, err := admitScript.Run(ctx, r.client, keys, connID, max, streamsKeyTTL.Milliseconds()).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("realtime: admit stream of user %d: %w", userID, err)
	}
	return evicted, nil
}

func (r *Redis) streamsKey(userID int64) string {
	return r.prefix + r.tag(userChannel(userID)) + streamsKeyPrefix + strconv.FormatInt(userID, 10)
}

func (r *Redis) evictedKey(userID int64) string {
	return r.prefix + r.tag(userChannel(userID)) + evictedKeyPrefix + strconv.FormatInt(userID, 10)
}

// StreamEvicted reports whether AdmitStream evicted the stream connID of userID (see
// Engine).
func (r *Redis) StreamEvicted(ctx context.Context, userID int64, connID string) (bool, error) {
	if r.closing() {
		return false, ErrClosed
	}
	err := r.client.ZScore(ctx, r.evictedKey(userID), connID).Err()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, redis.Nil):
		return false, nil
	}
	return false, fmt.Errorf("realtime: stream evicted of user %d: %w", userID, err)
}

// memStreams is the stream registry of a Memory engine: each user's streams, oldest
// first.
type memStreams struct {
	mu      sync.Mutex
	users   map[int64][]string
	evicted map[int64]map[string]bool // streams evicted whose connection is still live
}

// AdmitStream registers connID as userID's newest stream (see Engine).
func (m *Memory) AdmitStream(ctx context.Context, userID int64, connID string, max int) ([]string, error) {
	if connID == "" {
		return nil, ErrInvalidConnID
	}
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	max = capOrNone(max)
	now := time.Now()
	m.streams.mu.Lock()
	defer m.streams.mu.Unlock()
	m.pres.mu.Lock()
	conns := m.pres.users[userID]
	isLive := func(id string) bool { exp, ok := conns[id]; return ok && exp.After(now) }
	live := make([]string, 0, len(m.streams.users[userID])+1)
	for _, id := range m.streams.users[userID] {
		if isLive(id) && id != connID {
			live = append(live, id)
		}
	}
	gone := m.streams.evicted[userID]
	for id := range gone {
		if !isLive(id) || id == connID {
			delete(gone, id)
		}
	}
	m.pres.mu.Unlock()
	live = append(live, connID)
	var evicted []string
	if over := len(live) - max; over > 0 {
		evicted, live = live[:over:over], live[over:]
		if gone == nil {
			gone = make(map[string]bool, len(evicted))
			m.streams.evicted[userID] = gone
		}
		for _, id := range evicted {
			gone[id] = true
		}
	}
	if len(gone) == 0 {
		delete(m.streams.evicted, userID)
	}
	m.streams.users[userID] = live
	return evicted, nil
}

// StreamEvicted reports whether AdmitStream evicted the stream connID of userID (see
// Engine).
func (m *Memory) StreamEvicted(ctx context.Context, userID int64, connID string) (bool, error) {
	if err := m.check(ctx); err != nil {
		return false, err
	}
	m.streams.mu.Lock()
	defer m.streams.mu.Unlock()
	return m.streams.evicted[userID][connID], nil
}

// capOrNone is max as a cap, a max below 1 meaning none.
func capOrNone(max int) int {
	if max < 1 {
		return math.MaxInt32
	}
	return max
}
