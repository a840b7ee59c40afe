package realtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dreamseed/messenger/internal/tick"
)

// Presence and typing keys under the engine prefix:
//
//   - presence:<user> is a sorted set of the user's connection IDs scored
//     by expiry (Unix milliseconds, Redis clock). A connection is live while
//     its score is in the future. The key expires with its last entry.
//   - presence:users is a sorted set of the users considered online and not
//     yet reported offline, scored by the latest expiry of their
//     connections. A user leaves it exactly once per online period: by the
//     Disconnect of their last connection, or by the sweep that claims them
//     after every connection lapsed, whichever runs first.
//   - typing:<conversation> is a sorted set of user IDs scored by expiry.
//
// Every script reads the time from Redis, so expiries do not depend on the
// clocks of the processes. Scripts call TIME before writing, which needs
// Redis >= 5 (effects replication).
const (
	presenceKeyPrefix = "presence:"
	presenceUsersKey  = "presence:users"
	typingKeyPrefix   = "typing:"
)

// presenceBatch bounds the users per script (Online) and the scripts per
// pipeline (refresh, sweep), so that no single call occupies Redis long.
const presenceBatch = 500

// luaNow sets now to the Redis time in milliseconds.
const luaNow = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// luaSettle defines settle(user): it drops the expired connections of the
// user set KEYS[1], records the latest expiry of the others as the user's
// score in the index KEYS[2] and makes KEYS[1] expire with it. It returns
// whether a live connection remains; if none does, the index is untouched.
const luaSettle = `
local function settle(user)
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  if #top == 0 then
    return false
  end
  redis.call('ZADD', KEYS[2], top[2], user)
  redis.call('PEXPIREAT', KEYS[1], top[2])
  return true
end
`

// connectScript adds connection ARGV[3] of user ARGV[1] for ARGV[2] ms and
// returns 1 if the user had no live connection before.
var connectScript = redis.NewScript(luaNow + luaSettle + `
local before = redis.call('ZCOUNT', KEYS[1], '(' .. string.format('%d', now), '+inf')
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
settle(ARGV[1])
if before == 0 then
  return 1
end
return 0
`)

// disconnectScript removes connection ARGV[2] of user ARGV[1] and returns 1
// if the user thereby leaves the index: no live connection remains and the
// user had not been reported offline yet.
var disconnectScript = redis.NewScript(luaNow + luaSettle + `
redis.call('ZREM', KEYS[1], ARGV[2])
if settle(ARGV[1]) then
  return 0
end
return redis.call('ZREM', KEYS[2], ARGV[1])
`)

// refreshScript extends the connections ARGV[3..] of user ARGV[1] by ARGV[2]
// ms and returns those it did not find (lost or lapsed and swept), which
// only the engine can tell whether to add again. A connection that lapsed
// but was not swept yet is live again.
var refreshScript = redis.NewScript(luaNow + luaSettle + `
local exp = now + tonumber(ARGV[2])
local missing = {}
for i = 3, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], exp, ARGV[i])
  else
    missing[#missing + 1] = ARGV[i]
  end
end
settle(ARGV[1])
return missing
`)

// claimScript re-checks that user ARGV[1], found in the index with a past
// score, has no live connection, and then removes them from the index. It
// returns 1 to the one caller that removed them. A user with a live
// connection gets their score corrected instead.
var claimScript = redis.NewScript(luaNow + luaSettle + `
if settle(ARGV[1]) then
  return 0
end
return redis.call('ZREM', KEYS[2], ARGV[1])
`)

// onlineScript returns, for each user set in KEYS, how many live
// connections it has.
var onlineScript = redis.NewScript(luaNow + `
local min = '(' .. string.format('%d', now)
local out = {}
for i = 1, #KEYS do
  out[i] = redis.call('ZCOUNT', KEYS[i], min, '+inf')
end
return out
`)

// typingOnScript marks user ARGV[1] typing in KEYS[1] for ARGV[2] ms and
// returns 1 if they were not typing.
var typingOnScript = redis.NewScript(luaNow + `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local was = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if was then
  return 0
end
return 1
`)

// typingOffScript stops user ARGV[1] typing in KEYS[1] and returns 1 if
// they were typing.
var typingOffScript = redis.NewScript(luaNow + `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZREM', KEYS[1], ARGV[1])
`)

// typingScript lists the users typing in KEYS[1].
var typingScript = redis.NewScript(luaNow + `
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%d', now), '+inf')
`)

// redisPresence is the part of the presence state only this process
// knows: its own connections, which its refresher keeps alive.
type redisPresence struct {
	cfg     presenceConfig
	expired *expiredQueue

	stopRefresh chan struct{} // closed by a test hook
	stopOnce    sync.Once

	// mu guards local. Disconnect forgets a connection here before
	// removing it from Redis, and the refresher only adds a lost connection
	// back while holding mu, so a disconnected connection is never revived.
	mu    sync.Mutex
	local map[int64]map[string]struct{}
}

func newRedisPresence(cfg presenceConfig) *redisPresence {
	return &redisPresence{
		cfg:         cfg,
		expired:     newExpiredQueue(cfg.buffer),
		stopRefresh: make(chan struct{}),
		local:       make(map[int64]map[string]struct{}),
	}
}

func (p *redisPresence) stopRefreshing() { p.stopOnce.Do(func() { close(p.stopRefresh) }) }

// On a cluster, a user's presence set and the index that lists them carry the hash tag
// of the user's channel (redis_cluster.go): one index per bucket.
func (r *Redis) presenceKey(userID int64) string {
	return r.prefix + r.tag(userChannel(userID)) + presenceKeyPrefix + strconv.FormatInt(userID, 10)
}

// presenceIndexKey is the index of online users that lists userID.
func (r *Redis) presenceIndexKey(userID int64) string {
	return r.prefix + r.tag(userChannel(userID)) + presenceUsersKey
}

func (r *Redis) typingKey(convID int64) string {
	return r.prefix + typingKeyPrefix + strconv.FormatInt(convID, 10)
}

func (r *Redis) presenceKeys(userID int64) []string {
	return []string{r.presenceKey(userID), r.presenceIndexKey(userID)}
}

// Connect records connID of userID in Redis, then keeps it alive from this
// process until Disconnect.
func (r *Redis) Connect(ctx context.Context, userID int64, connID string) (bool, error) {
	if connID == "" {
		return false, ErrInvalidConnID
	}
	if r.closing() {
		return false, ErrClosed
	}
	n, err := connectScript.Run(ctx, r.client, r.presenceKeys(userID),
		userID, r.pres.cfg.ttl.Milliseconds(), connID).Int64()
	if err != nil {
		return false, fmt.Errorf("realtime: connect user %d: %w", userID, err)
	}
	p := r.pres
	p.mu.Lock()
	conns := p.local[userID]
	if conns == nil {
		conns = make(map[string]struct{})
		p.local[userID] = conns
	}
	conns[connID] = struct{}{}
	p.mu.Unlock()
	return n == 1, nil
}

// Disconnect stops refreshing connID of userID and removes it from Redis.
// If that fails, the entry lapses within PresenceTTL and the user, if it
// was their last connection, is reported on PresenceExpired.
func (r *Redis) Disconnect(ctx context.Context, userID int64, connID string) (bool, error) {
	if connID == "" {
		return false, ErrInvalidConnID
	}
	if r.closing() {
		return false, ErrClosed
	}
	p := r.pres
	p.mu.Lock()
	if conns := p.local[userID]; conns != nil {
		delete(conns, connID)
		if len(conns) == 0 {
			delete(p.local, userID)
		}
	}
	p.mu.Unlock()
	n, err := disconnectScript.Run(ctx, r.client, r.presenceKeys(userID), userID, connID).Int64()
	if err != nil {
		return false, fmt.Errorf("realtime: disconnect user %d: %w", userID, err)
	}
	return n == 1, nil
}

// Online asks Redis in one round trip.
func (r *Redis) Online(ctx context.Context, userIDs []int64) (map[int64]bool, error) {
	if r.closing() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ids := unique(userIDs)
	out := make(map[int64]bool, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	// One script's keys lie in one slot on a cluster: chunks of one bucket each.
	var chunks [][]int64
	if r.cluster {
		byBucket := make(map[int][]int64)
		for _, id := range ids {
			b := bucket(userChannel(id))
			byBucket[b] = append(byBucket[b], id)
		}
		for _, group := range byBucket {
			chunks = append(chunks, slices.Collect(slices.Chunk(group, presenceBatch))...)
		}
	} else {
		chunks = slices.Collect(slices.Chunk(ids, presenceBatch))
	}
	calls := make([]*scriptCall, 0, len(chunks))
	for _, chunk := range chunks {
		keys := make([]string, len(chunk))
		for i, id := range chunk {
			keys[i] = r.presenceKey(id)
		}
		calls = append(calls, &scriptCall{keys: keys})
	}
	if err := r.runScripts(ctx, onlineScript, calls); err != nil {
		return nil, fmt.Errorf("realtime: online: %w", err)
	}
	for i, chunk := range chunks {
		counts, err := calls[i].cmd.Int64Slice()
		if err != nil || len(counts) != len(chunk) {
			return nil, fmt.Errorf("realtime: online: unexpected reply %v: %w", calls[i].cmd.Val(), err)
		}
		for j, id := range chunk {
			out[id] = counts[j] > 0
		}
	}
	return out, nil
}

// PresenceExpired delivers the users this process claimed after their
// presence lapsed (see Engine).
func (r *Redis) PresenceExpired() <-chan int64 { return r.pres.expired.channel() }

// SetTyping marks userID typing in convID for TypingTTL, or stops it.
func (r *Redis) SetTyping(ctx context.Context, convID, userID int64, on bool) (bool, error) {
	if r.closing() {
		return false, ErrClosed
	}
	keys := []string{r.typingKey(convID)}
	var cmd *redis.Cmd
	if on {
		cmd = typingOnScript.Run(ctx, r.client, keys, userID, r.pres.cfg.typingTTL.Milliseconds())
	} else {
		cmd = typingOffScript.Run(ctx, r.client, keys, userID)
	}
	n, err := cmd.Int64()
	if err != nil {
		return false, fmt.Errorf("realtime: typing in %d: %w", convID, err)
	}
	return n == 1, nil
}

// Typing lists the users typing in convID now.
func (r *Redis) Typing(ctx context.Context, convID int64) ([]int64, error) {
	if r.closing() {
		return nil, ErrClosed
	}
	members, err := typingScript.Run(ctx, r.client, []string{r.typingKey(convID)}).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("realtime: typing in %d: %w", convID, err)
	}
	ids := make([]int64, 0, len(members))
	for _, m := range members {
		id, err := strconv.ParseInt(m, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("realtime: typing in %d: bad member %q", convID, m)
		}
		ids = append(ids, id)
	}
	return sortedIDs(ids), nil
}

// runScripts runs one script per call in a single pipeline; a call whose
// script Redis does not know (NOSCRIPT: it did not run) is sent again in
// full. It returns the first error of any call.
func (r *Redis) runScripts(ctx context.Context, s *redis.Script, calls []*scriptCall) error {
	pipe := r.client.Pipeline()
	for _, c := range calls {
		c.cmd = s.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx) // errors are per command, below
	var retry []*scriptCall
	for _, c := range calls {
		if err := c.cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			retry = append(retry, c)
		}
	}
	if len(retry) > 0 {
		pipe := r.client.Pipeline()
		for _, c := range retry {
			c.cmd = s.Eval(ctx, pipe, c.keys, c.args...)
		}
		_, _ = pipe.Exec(ctx)
	}
	var errs []error
	for _, c := range calls {
		if err := c.cmd.Err(); err != nil && !errors.Is(err, redis.Nil) {
			errs = append(errs, err)
		}
	}
	return errors.Join(dedupErrors(errs)...)
}

// refreshLoop extends the entries of this process's connections every
// refresh period, so they lapse only if the process stops. The work is spread
// over the period: each second (refreshSlices) a slice of the users, by id,
// so ten thousand connections cost Redis and this process a few milliseconds
// a second, not a few hundred every half minute — the stall a burst of
// deliveries met when it coincided.
func (r *Redis) refreshLoop() {
	defer r.wg.Done()
	p := r.pres
	n := refreshSlices(p.cfg.refresh)
	slice := 0
	tick.Every(p.cfg.refresh/time.Duration(n), r.done, p.stopRefresh, func() {
		ctx, cancel := context.WithTimeout(r.bg, p.cfg.refresh)
		defer cancel()
		r.refreshPresence(ctx, slice, n)
		slice = (slice + 1) % n
	})
}

// refreshSlices is how many slices a refresh period is cut in: one a second, at
// most 60 (a period shorter than two seconds, as tests use, is not cut).
func refreshSlices(period time.Duration) int {
	return int(min(max(period/time.Second, 1), 60))
}

type userConns struct {
	user  int64
	conns []string
}

// refreshPresence refreshes the connections of the users in slice of n (user id mod n).
func (r *Redis) refreshPresence(ctx context.Context, slice, n int) {
	p := r.pres
	p.mu.Lock()
	all := make([]userConns, 0, len(p.local)/n+1)
	for user, conns := range p.local {
		if uint64(user)%uint64(n) != uint64(slice) {
			continue
		}
		uc := userConns{user: user, conns: make([]string, 0, len(conns))}
		for c := range conns {
			uc.conns = append(uc.conns, c)
		}
		all = append(all, uc)
	}
	p.mu.Unlock()

	ttl := p.cfg.ttl.Milliseconds()
	var lost []userConns
	for chunk := range slices.Chunk(all, presenceBatch) {
		calls := make([]*scriptCall, len(chunk))
		for i, uc := range chunk {
			args := make([]any, 0, 2+len(uc.conns))
			args = append(args, uc.user, ttl)
			for _, c := range uc.conns {
				args = append(args, c)
			}
			calls[i] = &scriptCall{keys: r.presenceKeys(uc.user), args: args}
		}
		if err := r.runScripts(ctx, refreshScript, calls); err != nil {
			if !r.closing() {
				r.log.Warn("realtime: presence refresh failed", "users", len(chunk), "err", err)
			}
		}
		for i, uc := range chunk {
			missing, err := calls[i].cmd.StringSlice()
			if err == nil && len(missing) > 0 {
				lost = append(lost, userConns{user: uc.user, conns: missing})
			}
		}
	}
	for _, uc := range lost {
		for _, c := range uc.conns {
			r.revive(ctx, uc.user, c)
		}
	}
}

// revive adds back a connection of this process that Redis lost (data
// loss) or that lapsed and was swept (Redis unreachable for PresenceTTL),
// unless it was disconnected meanwhile: mu is held across the call so a
// concurrent Disconnect removes it only afterwards.
func (r *Redis) revive(ctx context.Context, userID int64, connID string) {
	p := r.pres
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.local[userID][connID]; !ok {
		return
	}
	// Bounded by the op timeout because Connect and Disconnect wait for mu.
	ctx, cancel := context.WithTimeout(ctx, r.timings.op)
	defer cancel()
	n, err := connectScript.Run(ctx, r.client, r.presenceKeys(userID),
		userID, p.cfg.ttl.Milliseconds(), connID).Int64()
	if err != nil {
		if !r.closing() {
			r.log.Warn("realtime: presence revive failed", "user", userID, "err", err)
		}
		return
	}
	// The user may have been reported offline meanwhile; the API has no
	// way to announce them online again short of their next Connect.
	r.log.Info("realtime: presence entry restored", "user", userID, "online_again", n == 1)
}

// sweepLoop claims and delivers lapsed users every sweep period, once
// PresenceExpired has been asked for.
func (r *Redis) sweepLoop() {
	defer r.wg.Done()
	p := r.pres
	tick.Every(p.cfg.sweep, r.done, nil, func() {
		ctx, cancel := context.WithTimeout(r.bg, max(p.cfg.sweep, r.timings.op))
		defer cancel()
		if err := r.sweepPresence(ctx); err != nil && !r.closing() {
			r.log.Warn("realtime: presence sweep failed", "err", err)
		}
	})
}

// sweepPresence lists index entries whose score is past and claims each
// with claimScript, which re-checks it atomically: of all the processes
// sweeping concurrently, only the one whose ZREM removed the user delivers
// it. It claims no more users than PresenceExpired has room for.
//
// On a cluster it sweeps each bucket's index in turn; one that fails (its node down)
// leaves the others swept.
func (r *Redis) sweepPresence(ctx context.Context) error {
	var errs []error
	for _, index := range r.presenceIndexKeys() {
		if err := r.sweepIndex(ctx, index); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(dedupErrors(errs)...)
}

// sweepIndex is sweepPresence for the index of online users at key index.
func (r *Redis) sweepIndex(ctx context.Context, index string) error {
	p := r.pres
	// Bounded: a process clock ahead of Redis's lists users whose score
	// the claim script then finds still in the future.
	for range 10 {
		room := p.expired.room()
		if room == 0 {
			return nil
		}
		n := min(room, presenceBatch)
		members, err := r.client.ZRangeByScore(ctx, index, &redis.ZRangeBy{
			Min:   "-inf",
			Max:   strconv.FormatInt(time.Now().UnixMilli(), 10),
			Count: int64(n),
		}).Result()
		if err != nil {
			return err
		}
		if len(members) == 0 {
			return nil
		}
		users := make([]int64, 0, len(members))
		calls := make([]*scriptCall, 0, len(members))
		for _, m := range members {
			id, err := strconv.ParseInt(m, 10, 64)
			if err != nil {
				r.log.Warn("realtime: removing a bad member of the presence index", "member", m)
				_ = r.client.ZRem(ctx, index, m).Err()
				continue
			}
			users = append(users, id)
			calls = append(calls, &scriptCall{keys: r.presenceKeys(id), args: []any{id}})
		}
		err = r.runScripts(ctx, claimScript, calls)
		for i, id := range users {
			if claimed, _ := calls[i].cmd.Int64(); claimed == 1 {
				if !p.expired.push(id) {
					r.log.Error("realtime: lapsed user lost: PresenceExpired full", "user", id)
				}
			}
		}
		if err != nil {
			return err
		}
		if len(members) < n {
			return nil
		}
	}
	return nil
}
