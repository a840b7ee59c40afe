package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tidwall/gjson"

	"github.com/dreamseed/messenger/internal/tick"
)

// redisPrefix namespaces our channels and keys so the Redis can be shared
// with other applications without cross-talk.
const redisPrefix = "messenger:"

// Keys under the prefix: the epoch of every history ID, one stream per
// channel keeping history, and the stream of the bodies of events kept once for many
// channels (publishScript).
//
// The epoch key names the history's format ("epoch:2": entries that may name a body kept
// once). A process of the format before it, in the same Redis during a rolling deploy or
// a rollback, reads another epoch: each side's IDs are gone to the other, and an entry of
// the other's in a stream makes the history span epochs, so a resume across versions is
// a resync, never an event skipped.
const (
	epochKeySuffix   = "epoch:2"
	historyKeyPrefix = "history:"
	bodiesKeySuffix  = "bodies"
)

// bodyOnceMin is the number of channels of a publish script from which it stores the
// event once for all of them (publishScript). Below it the body's own entry and its
// trimming cost Redis more than the copies they save: a 500-member group's message on a
// cluster of 64 buckets is chunks of about 8, and took 10 % more of Redis's CPU stored
// once a chunk.
const bodyOnceMin = 32

// maxChannelsPerScript bounds how long one publish script may occupy Redis;
// PublishMany pipelines several calls for more channels.
const maxChannelsPerScript = 256

// publishScript publishes one event to channels keeping history, atomically
// so that history and live delivery agree and subscribers receive events in
// ID order: it creates the epoch if Redis has none (a Redis that lost its
// data thereby gets a new one, which makes every older ID gone), appends the
// event to each channel's stream, refreshes the stream's expiry and
// PUBLISHes the event with its ID "<epoch>-<stream entry id>": on each
// channel, or, when ARGV[6] names the fan-out channel, once on it for all of
// them (see fanoutMin).
//
// When ARGV[7] is set (a chunk of bodyOnceMin channels or more), the event is stored once,
// not once a channel: in the bodies stream (KEYS[2], trimmed to the history's TTL by entry
// time), each channel's entry holding the body's entry id ('b') instead of the event
// ('v'). A message to a group of 500 was 500 copies of it in Redis (docs/performance.md).
//
// KEYS[1] is the epoch key, KEYS[2] the bodies stream, KEYS[3..] the streams. ARGV[1] is
// the epoch to create if none exists, ARGV[2] the stream length to trim to (about),
// ARGV[3] the stream TTL in milliseconds, ARGV[4] and ARGV[5] the encoded event split
// where its ID goes, ARGV[6] the fan-out channel or "", ARGV[7] "1" to store the event
// once or "", ARGV[8..] the pubsub channel of each stream.
const publishScript = `
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch, 'NX')
end
local stored = ARGV[4] .. ARGV[5]
local fanout = ARGV[6] ~= ''
local lines = {epoch}
local field, value = 'v', stored
if ARGV[7] ~= '' then
  local now = redis.call('TIME')
  local oldest = now[1] * 1000 + math.floor(now[2] / 1000) - tonumber(ARGV[3])
  field = 'b'
  value = redis.call('XADD', KEYS[2], 'MINID', '~', oldest, '*', 'v', stored)
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
for i = 3, #KEYS do
  local sid = redis.call('XADD', KEYS[i], 'MAXLEN', '~', ARGV[2], '*', 'e', epoch, field, value)
  redis.call('PEXPIRE', KEYS[i], ARGV[3])
  if fanout then
    lines[i - 1] = ARGV[i + 5] .. ' ' .. sid
  else
    redis.call('PUBLISH', ARGV[i + 5], ARGV[4] .. ',"i":"' .. epoch .. '-' .. sid .. '"' .. ARGV[5])
  end
end
if fanout then
  redis.call('PUBLISH', ARGV[6], table.concat(lines, '\n') .. '\n\n' .. stored)
end
return epoch
`

// headScript appends a mark (an entry without an event) to a channel's history stream
// and answers the epoch and its ID: a position that History can resume from exactly.
// KEYS: epoch key, stream key. ARGV: a new epoch, MAXLEN, TTL in ms.
const headScript = `
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  redis.call('SET', KEYS[1], ARGV[1], 'NX')
  epoch = redis.call('GET', KEYS[1])
end
local sid = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'e', epoch, 'm', '1')
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {epoch, sid}
`

var headRedisScript = redis.NewScript(headScript)

// clusterPublishScript is publishScript for a Redis Cluster: sharded pub/sub.
var clusterPublishScript = strings.ReplaceAll(publishScript, "'PUBLISH'", "'SPUBLISH'")

// Ping payloads on the pubsub connection. Redis answers commands on one
// connection in order, so the pong of a PING written after a SUBSCRIBE proves
// the SUBSCRIBE has taken effect.
const (
	healthToken  = "hc"
	resyncPrefix = "rs:"
	waitPrefix   = "sb:"
)

// Redis is an Engine shared by every process connected to the same Redis:
// events go through Redis PUBLISH, and each process keeps a single pubsub
// connection, subscribed to the union of its local subscriptions' channels,
// that a reader goroutine fans out locally.
//
// History lives in Redis too (one stream per channel, see publishScript), so
// every process can resume what any process published.
//
// Redis pub/sub does not buffer: events published while the pubsub
// connection is down are lost. The engine then reconnects, and once every
// channel is subscribed again it signals Resync on every subscription.
//
// A publish that fails (Redis restarting, unreachable) is not retried, since
// a failure can come after Redis ran it; the engine remembers the channels
// and, as soon as Redis answers, publishes an EventResync to each of them,
// before any later event of theirs (redis_repair.go).
//
// Presence and typing state lives in Redis as sorted sets scored by expiry
// (see presence_redis.go), timed by the Redis clock so that the clocks of
// the processes need not agree.
//
// On a Redis Cluster (NewRedisCluster) the same holds per bucket of channels: one
// pubsub connection per bucket, sharded pub/sub, and keys tagged so that each script
// touches one slot (redis_cluster.go).
type Redis struct {
	log       *slog.Logger
	queueSize int
	hub       *hub
	prefix    string // of pubsub channels and keys
	limits    historyLimits
	cluster   bool   // a Redis Cluster: hash tags and sharded pub/sub (redis_cluster.go)
	script    string // publishScript, or clusterPublishScript
	scriptSHA string

	client   redis.UniversalClient // PUBLISH and PING
	psClient redis.UniversalClient // owns the pubsub connections; its own client so that OnConnect counts only pubsub dials
	// shards are the pubsub connections: one on a single Redis, one per bucket on a
	// cluster (redis_cluster.go).
	shards []*psShard

	// subMu keeps SUBSCRIBE/UNSUBSCRIBE writes in the same order as the
	// local membership changes that caused them; otherwise an UNSUBSCRIBE
	// could overtake the SUBSCRIBE of a channel that was just re-joined.
	subMu sync.Mutex

	waitMu  sync.Mutex
	waiters map[string]chan struct{}
	seq     atomic.Uint64

	pres *redisPresence

	// values are the typed values of the events this process published lately, for its
	// own subscribers (redis_values.go).
	values *localValues

	// Events whose publish failed: resync goes to their channels once Redis answers
	// (redis_repair.go). repairSem (a one-slot semaphore) makes one repair at a time.
	lost       *lostChannels
	repairSem  chan struct{}
	repairWake chan struct{}

	done      chan struct{}
	bg        context.Context // of background Redis calls, cancelled by Close
	bgCancel  context.CancelFunc
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup

	timings redisTimings
}

type redisTimings struct {
	ping      time.Duration // health-check PING period
	read      time.Duration // silence after which the connection is presumed dead
	op        time.Duration // bound on a single write or dial on the pubsub connection
	waitRetry time.Duration // re-send period of a subscription barrier PING
}

// defaultRedisTimings are the timings of every Redis engine but those tests make.
var defaultRedisTimings = redisTimings{
	ping:      5 * time.Second,
	read:      15 * time.Second,
	op:        3 * time.Second,
	waitRetry: time.Second,
}

var _ Engine = (*Redis)(nil)

var (
	publishScriptSHA        = redis.NewScript(publishScript).Hash()
	clusterPublishScriptSHA = redis.NewScript(clusterPublishScript).Hash()
)

// NewRedis connects to the Redis at url (redis://host:port/db, as parsed by
// go-redis) and returns an engine whose subscriptions queue up to queueSize
// events each; it fails if Redis is unreachable now. A nil logger means
// slog.Default().
func NewRedis(ctx context.Context, url string, queueSize int, logger *slog.Logger) (*Redis, error) {
	return newRedis(ctx, url, false, queueSize, logger, redisPrefix, defaultTuning())
}

// NewRedisWithPrefix is NewRedis with every pub/sub channel and key under prefix instead of
// "messenger:", so that several deployments (or test runs) can share one Redis: pub/sub
// ignores the database number.
func NewRedisWithPrefix(ctx context.Context, url string, queueSize int, logger *slog.Logger, prefix string) (*Redis, error) {
	return newRedis(ctx, url, false, queueSize, logger, prefix, defaultTuning())
}

// NewRedisCluster is NewRedisWithPrefix for a Redis Cluster (Redis >= 7: sharded pub/sub):
// url names one node or several, as go-redis's ParseClusterURL reads it
// (redis://host1:6379?addr=host2:6379&addr=host3:6379), and the engine finds the others.
// Keys and channels carry hash tags and events go by SPUBLISH and SSUBSCRIBE
// (redis_cluster.go). The prefix must not contain '{' or '}'.
func NewRedisCluster(ctx context.Context, url string, queueSize int, logger *slog.Logger, prefix string) (*Redis, error) {
	return newRedis(ctx, url, true, queueSize, logger, prefix, defaultTuning())
}

// newRedis is NewRedis with the prefix of every pubsub channel and key, so
// tests on a shared Redis can own their keys (the epoch especially), and
// the engine's timings and bounds.
func newRedis(ctx context.Context, url string, cluster bool, queueSize int, logger *slog.Logger, prefix string, tn tuning) (*Redis, error) {
	if cluster && strings.ContainsAny(prefix, "{}") {
		return nil, fmt.Errorf("realtime: redis prefix %q: no braces on a cluster (they would be its hash tag)", prefix)
	}
	if logger == nil {
		logger = slog.Default()
	}
	r := &Redis{
		log:        logger,
		queueSize:  queueSizeOrDefault(queueSize),
		hub:        newHub(),
		prefix:     prefix,
		limits:     tn.history,
		cluster:    cluster,
		script:     publishScript,
		scriptSHA:  publishScriptSHA,
		waiters:    make(map[string]chan struct{}),
		pres:       newRedisPresence(tn.presence),
		values:     newLocalValues(),
		lost:       newLostChannels(tn.maxLost),
		repairWake: make(chan struct{}, 1),
		repairSem:  make(chan struct{}, 1),
		done:       make(chan struct{}),
		timings:    tn.redis,
	}
	r.bg, r.bgCancel = context.WithCancel(context.Background())
	// go-redis redials and resubscribes on its own; counting dials is the one reliable
	// way to notice, whichever call hit the failure. Each shard's calls carry its
	// counter (on a cluster, psClient dials for every shard, and for its own upkeep).
	onConnect := func(ctx context.Context, _ *redis.Conn) error {
		if gen, ok := ctx.Value(shardGenKey{}).(*atomic.Uint64); ok {
			gen.Add(1)
		}
		return nil
	}
	addr := ""
	if cluster {
		opts, err := redis.ParseClusterURL(url)
		if err != nil {
			return nil, fmt.Errorf("realtime: redis cluster url: %w", err)
		}
		psOpts, _ := redis.ParseClusterURL(url)
		psOpts.OnConnect = onConnect
		addr = strings.Join(opts.Addrs, ",")
		cc := redis.NewClusterClient(opts)
		cc.AddHook(reloadOnFailure{cc})
		r.client = cc
		r.psClient = redis.NewClusterClient(psOpts)
		r.script, r.scriptSHA = clusterPublishScript, clusterPublishScriptSHA
		r.shards = make([]*psShard, clusterBuckets)
	} else {
		opts, err := redis.ParseURL(url)
		if err != nil {
			return nil, fmt.Errorf("realtime: redis url: %w", err)
		}
		psOpts, _ := redis.ParseURL(url)
		psOpts.OnConnect = onConnect
		addr = opts.Addr
		r.client = redis.NewClient(opts)
		r.psClient = redis.NewClient(psOpts)
		r.shards = make([]*psShard, 1)
	}
	for i := range r.shards {
		r.shards[i] = newShard(cluster)
	}
	fail := func(err error) (*Redis, error) {
		for _, sh := range r.shards {
			if sh.ps != nil {
				_ = sh.ps.Close()
			}
		}
		_ = r.psClient.Close()
		_ = r.client.Close()
		r.bgCancel()
		return nil, fmt.Errorf("realtime: redis %s: %w", addr, err)
	}
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fail(err)
	}
	for b, sh := range r.shards {
		// Every shard holds its bucket's resync-all channel, so that its connection
		// always goes to the node owning the bucket's slot (only the first is published
		// to, repairLocked), and its fan-out channel (redis_fanout.go).
		names := []string{r.resyncAllName(b), r.fanoutName(b)}
		dialCtx := context.WithValue(ctx, shardGenKey{}, &sh.gen)
		if cluster {
			sh.ps = r.psClient.SSubscribe(dialCtx)
		} else {
			sh.ps = r.psClient.Subscribe(dialCtx)
		}
		// Dial the pubsub connection now, so an unusable Redis fails here and
		// the reader starts from a known connection generation.
		if err := sh.subscribe(dialCtx, names...); err != nil {
			return fail(err)
		}
		if err := sh.ps.Ping(dialCtx); err != nil {
			return fail(err)
		}
	}
	r.wg.Add(4 + len(r.shards))
	go r.repairLoop()
	for _, sh := range r.shards {
		go r.readLoop(sh, sh.gen.Load())
	}
	go r.pingLoop()
	go r.refreshLoop()
	go r.sweepLoop()
	return r, nil
}

// Publish sends ev to channel's subscribers in all processes. It waits for
// Redis to accept the event, never for subscribers.
func (r *Redis) Publish(ctx context.Context, channel string, ev Event) error {
	if channel == "" {
		return ErrInvalidChannel
	}
	if err := r.PublishAll(ctx, []Publication{{Channels: []string{channel}, Event: ev}}); err != nil {
		return fmt.Errorf("realtime: publish to %s: %w", channel, err)
	}
	return nil
}

// PublishMany publishes ev to every distinct channel in one round trip: one
// pipeline holding the PUBLISHes and the history scripts.
func (r *Redis) PublishMany(ctx context.Context, channels []string, ev Event) error {
	if err := r.PublishAll(ctx, []Publication{{Channels: channels, Event: ev}}); err != nil {
		return fmt.Errorf("realtime: publish to %d channels: %w", len(channels), err)
	}
	return nil
}

// PublishAll publishes every publication in one round trip: one pipeline holding,
// in order, each one's history scripts and PUBLISHes. Redis runs a connection's
// commands in the order sent, so a channel's events keep theirs (on a cluster, each
// node gets its share of the pipeline on one connection, in order).
func (r *Redis) PublishAll(ctx context.Context, pubs []Publication) error {
	pubs, err := validPublications(pubs)
	if err != nil {
		return err
	}
	if r.closing() {
		return ErrClosed
	}
	if len(pubs) == 0 {
		return nil
	}
	return r.publish(ctx, pubs)
}

// scriptCall is one run of publishScript in a pipeline, for publication pub.
type scriptCall struct {
	pub    int
	bucket int // of its channels (redis_cluster.go); 0 on a single Redis
	keys   []string
	args   []any
	cmd    *redis.Cmd
}

// errScriptOrder: the publish script was missing from Redis (restarted, or SCRIPT
// FLUSH) for an event while a later event of the same pipeline found it; sending the
// first again would put it after the later one, so it counts as lost and its channels
// get a resync.
var errScriptOrder = errors.New("realtime: publish script missing, event not sent in order")

// send publishes pubs in one pipeline and answers each one's error; see publish.
func (r *Redis) send(ctx context.Context, pubs []Publication) []error {
	var (
		errs  = make([]error, len(pubs))
		calls []*scriptCall
		sent  = make([][]*redis.IntCmd, len(pubs))
		pipe  = r.client.Pipeline()
	)
	for i, p := range pubs {
		c, err := r.queue(ctx, pipe, i, p)
		if err != nil {
			errs[i] = err
			continue
		}
		calls = append(calls, c.calls...)
		sent[i] = c.pubs
	}
	_, _ = pipe.Exec(ctx) // errors are per command, below

	// By bucket: on a cluster, the order to keep is that of the calls on one node,
	// whose script cache is its own; a bucket is always on one node.
	retryOf := make(map[int][]*scriptCall)
	var retry []*scriptCall
	for _, call := range calls {
		err := call.cmd.Err()
		switch {
		case err == nil:
			if len(retryOf[call.bucket]) > 0 {
				// A later script ran: the missing ones cannot be sent again before it.
				for _, c := range retryOf[call.bucket] {
					errs[c.pub] = errScriptOrder
				}
				delete(retryOf, call.bucket)
			}
		case redis.HasErrorPrefix(err, "NOSCRIPT"):
			// The script did not run (first use, Redis restarted or SCRIPT FLUSH), so
			// sending it in full cannot publish twice.
			retryOf[call.bucket] = append(retryOf[call.bucket], call)
		default:
			errs[call.pub] = errors.Join(errs[call.pub], err)
		}
	}
	for _, call := range calls {
		if slices.Contains(retryOf[call.bucket], call) {
			retry = append(retry, call)
		}
	}
	for i, cmds := range sent {
		for _, cmd := range cmds {
			if err := cmd.Err(); err != nil {
				errs[i] = errors.Join(errs[i], err)
			}
		}
	}
	if len(retry) > 0 {
		pipe := r.client.Pipeline()
		for _, call := range retry {
			call.cmd = pipe.Eval(ctx, r.script, call.keys, call.args...)
		}
		_, _ = pipe.Exec(ctx)
		for _, call := range retry {
			if err := call.cmd.Err(); err != nil {
				errs[call.pub] = errors.Join(errs[call.pub], err)
			}
		}
	}
	return errs
}

// queued is what one publication put in a pipeline.
type queued struct {
	calls []*scriptCall
	pubs  []*redis.IntCmd
}

// queue puts publication p (the pub-th of its pipeline) in pipe: a run of the history
// script per chunk of its history channels, a PUBLISH per other channel.
func (r *Redis) queue(ctx context.Context, pipe redis.Pipeliner, pub int, p Publication) (queued, error) {
	var (
		q         queued
		ev        = p.Event
		history   []string // get an ID: one script per chunk
		withID    []string // PUBLISH ev as given
		withoutID []string // PUBLISH ev without ID: droppable on a history channel
	)
	for _, c := range p.Channels {
		switch {
		case !KeepsHistory(c):
			withID = append(withID, c)
		case ev.Droppable:
			withoutID = append(withoutID, c)
		default:
			history = append(history, c)
		}
	}

	origin := ""
	if ev.Value != nil {
		origin = r.values.keep(ev.Value)
	}
	if len(history) > 0 {
		head, body, err := encodeEventParts(ev, origin)
		if err != nil {
			return q, err
		}
		for _, group := range r.byBucket(history) {
			for chunk := range slices.Chunk(group, maxChannelsPerScript) {
				keys := make([]string, 0, 2+len(chunk))
				keys = append(keys, r.epochKey(chunk[0]), r.bodiesKey(chunk[0]))
				fanout, once := "", ""
				if len(chunk) >= fanoutMin {
					fanout = r.fanoutName(r.bucketOf(chunk[0]))
				}
				if len(chunk) >= bodyOnceMin {
					once = "1"
				}
				args := make([]any, 0, 7+len(chunk))
				args = append(args, newEpoch(), r.limits.maxLen, r.limits.ttl.Milliseconds(), head, body, fanout, once)
				for _, c := range chunk {
					keys = append(keys, r.historyKey(c))
					args = append(args, r.pubsubName(c))
				}
				call := &scriptCall{pub: pub, bucket: r.bucketOf(chunk[0]), keys: keys, args: args}
				call.cmd = pipe.EvalSha(ctx, r.scriptSHA, keys, args...)
				q.calls = append(q.calls, call)
			}
		}
	}
	for _, group := range []struct {
		channels []string
		ev       Event
	}{{withID, ev}, {withoutID, Event{Type: ev.Type, Data: ev.Data, Droppable: ev.Droppable, Value: ev.Value}}} {
		if len(group.channels) == 0 {
			continue
		}
		payload, err := encodeEvent(group.ev, origin)
		if err != nil {
			return q, err
		}
		var each []string // published on their own channels
		for _, same := range r.byBucket(group.channels) {
			if len(same) < fanoutMin {
				each = append(each, same...)
				continue
			}
			for chunk := range slices.Chunk(same, maxChannelsPerScript) {
				name, msg := r.fanoutName(r.bucketOf(chunk[0])), r.fanoutPayload(chunk, payload)
				if r.cluster {
					q.pubs = append(q.pubs, pipe.SPublish(ctx, name, msg))
				} else {
					q.pubs = append(q.pubs, pipe.Publish(ctx, name, msg))
				}
			}
		}
		for _, c := range each {
			if r.cluster {
				q.pubs = append(q.pubs, pipe.SPublish(ctx, r.pubsubName(c), payload))
			} else {
				q.pubs = append(q.pubs, pipe.Publish(ctx, r.pubsubName(c), payload))
			}
		}
	}
	return q, nil
}

// dedupErrors keeps one of each message, so that a connection failure seen
// by a hundred pipelined commands is reported once, and drops the nils.
func dedupErrors(errs []error) []error {
	seen := make(map[string]bool, len(errs))
	out := errs[:0]
	for _, err := range errs {
		if err == nil {
			continue
		}
		if msg := err.Error(); !seen[msg] {
			seen[msg] = true
			out = append(out, err)
		}
	}
	return out
}

// History reads channel's stream and the epoch in one transaction. The
// answer is exact only if afterID's own entry is still in the stream under
// the current epoch: streams are trimmed from the oldest end only, so then
// nothing after it is missing. A missing entry means it was trimmed, the
// stream expired, or the ID was never assigned; all are ErrHistoryGone.
func (r *Redis) History(ctx context.Context, channel, afterID string) ([]Event, error) {
	if channel == "" {
		return nil, ErrInvalidChannel
	}
	if r.closing() {
		return nil, ErrClosed
	}
	if !KeepsHistory(channel) {
		return nil, historyGoneNoHistory(channel)
	}
	id, ok := parseEventID(afterID)
	if !ok || id.parts != 2 {
		return nil, fmt.Errorf("%w: malformed event ID %q", ErrHistoryGone, afterID)
	}
	sid := strconv.FormatUint(id.pos[0], 10) + "-" + strconv.FormatUint(id.pos[1], 10)

	var (
		get *redis.StringCmd
		xr  *redis.XMessageSliceCmd
	)
	_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, r.epochKey(channel))
		xr = p.XRange(ctx, r.historyKey(channel), sid, "+")
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("realtime: history of %s: %w", channel, err)
	}
	epoch, err := get.Result()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, fmt.Errorf("%w: redis has no epoch (data lost)", ErrHistoryGone)
	case err != nil:
		return nil, fmt.Errorf("realtime: history of %s: %w", channel, err)
	case epoch != id.epoch:
		return nil, fmt.Errorf("%w: event ID %q is from another epoch", ErrHistoryGone, afterID)
	}
	msgs, err := xr.Result()
	if err != nil {
		return nil, fmt.Errorf("realtime: history of %s: %w", channel, err)
	}
	if len(msgs) == 0 && id.pos == [2]uint64{} {
		return []Event{}, nil // before anything, and nothing retained
	}
	if len(msgs) == 0 || msgs[0].ID != sid {
		return nil, fmt.Errorf("%w: events after %q are no longer retained", ErrHistoryGone, afterID)
	}
	bodies, err := r.bodies(ctx, channel, msgs[1:])
	if err != nil {
		return nil, err
	}
	events := make([]Event, 0, len(msgs)-1)
	for _, m := range msgs[1:] {
		e, _ := m.Values["e"].(string)
		v, isEvent := m.Values["v"].(string)
		if b, ok := m.Values["b"].(string); ok {
			v, isEvent = bodies[b], true
		}
		if e != epoch {
			// Only if the epoch key was lost while the stream survived.
			return nil, fmt.Errorf("%w: history of %s spans epochs", ErrHistoryGone, channel)
		}
		if !isEvent {
			continue // a mark of Head
		}
		ev, origin, err := decodeEvent(v)
		if err != nil {
			return nil, fmt.Errorf("realtime: history of %s: entry %s: %w", channel, m.ID, err)
		}
		ev.Value = r.values.get(origin)
		ev.ID = epoch + "-" + m.ID
		events = append(events, ev)
	}
	return events, nil
}

// bodies reads the bodies of the entries of msgs kept once for many channels (a 'b'
// field: the entry of the bodies stream, see publishScript), by entry id. A body trimmed
// meanwhile (older than the history's TTL) makes the history gone: the entry's event is
// no longer retained.
func (r *Redis) bodies(ctx context.Context, channel string, msgs []redis.XMessage) (map[string]string, error) {
	var (
		ids  []string
		seen = make(map[string]bool)
	)
	for _, m := range msgs {
		if b, ok := m.Values["b"].(string); ok && !seen[b] {
			seen[b] = true
			ids = append(ids, b)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	key := r.bodiesKey(channel)
	cmds := make([]*redis.XMessageSliceCmd, len(ids))
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.XRange(ctx, key, id, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("realtime: history of %s: bodies: %w", channel, err)
	}
	out := make(map[string]string, len(ids))
	for i, cmd := range cmds {
		got := cmd.Val()
		v, ok := "", false
		if len(got) == 1 {
			v, ok = got[0].Values["v"].(string)
		}
		if !ok {
			return nil, fmt.Errorf("%w: the event of %s's entry (body %s) is no longer retained", ErrHistoryGone, channel, ids[i])
		}
		out[ids[i]] = v
	}
	return out, nil
}

// Head marks channel's history stream and answers the mark's ID.
func (r *Redis) Head(ctx context.Context, channel string) (string, error) {
	if channel == "" {
		return "", ErrInvalidChannel
	}
	if r.closing() {
		return "", ErrClosed
	}
	if !KeepsHistory(channel) {
		return "", historyGoneNoHistory(channel)
	}
	res, err := headRedisScript.Run(ctx, r.client, []string{r.epochKey(channel), r.historyKey(channel)},
		newEpoch(), r.limits.maxLen, r.limits.ttl.Milliseconds()).StringSlice()
	if err != nil {
		return "", fmt.Errorf("realtime: head of %s: %w", channel, err)
	}
	if len(res) != 2 {
		return "", fmt.Errorf("realtime: head of %s: unexpected answer %q", channel, res)
	}
	return res[0] + "-" + res[1], nil
}

// epochKey is the key of the epoch of channel's IDs: one for all on a single Redis, one
// per bucket on a cluster.
func (r *Redis) epochKey(channel string) string { return r.prefix + r.tag(channel) + epochKeySuffix }

// bodiesKey is the stream of the fanned-out events' bodies (publishScript) of channel's
// bucket: one on a single Redis.
func (r *Redis) bodiesKey(channel string) string { return r.prefix + r.tag(channel) + bodiesKeySuffix }

func (r *Redis) historyKey(channel string) string {
	return r.prefix + r.tag(channel) + historyKeyPrefix + channel
}

// byBucket groups channels by bucket, keeping their order within each: all of them in
// one group on a single Redis.
func (r *Redis) byBucket(channels []string) [][]string {
	if !r.cluster {
		return [][]string{channels}
	}
	var (
		groups [][]string
		index  = make(map[int]int)
	)
	for _, c := range channels {
		b := bucket(c)
		i, ok := index[b]
		if !ok {
			i = len(groups)
			index[b] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], c)
	}
	return groups
}

// resyncAllName is the pub/sub channel of resyncAllChannel held by shard b.
func (r *Redis) resyncAllName(b int) string {
	if !r.cluster {
		return r.prefix + resyncAllChannel
	}
	return r.prefix + bucketTag(b) + resyncAllChannel
}

// Subscribe returns a subscription to channels once Redis has confirmed
// them, so events published afterwards by any process reach it.
func (r *Redis) Subscribe(ctx context.Context, channels ...string) (*Subscription, error) {
	s, err := r.hub.subscription(ctx, r, r.queueSize, channels)
	if err != nil {
		return nil, err
	}
	if len(channels) > 0 {
		if err := r.attach(ctx, s, channels); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// Ping checks that Redis answers, which Publish depends on.
func (r *Redis) Ping(ctx context.Context) error {
	if r.closing() {
		return ErrClosed
	}
	return r.client.Ping(ctx).Err()
}

// Close stops the background goroutines, closes every subscription's C
// channel, the PresenceExpired channel and the Redis connections; later
// calls return the first call's result. The presence entries of this
// process's connections are left to lapse, as after a crash: Disconnect
// them first for a clean shutdown.
func (r *Redis) Close() error {
	r.closeOnce.Do(func() {
		close(r.done)
		r.bgCancel()
		// Taking subMu waits out an in-flight SUBSCRIBE write, which must
		// not race with closing the connection underneath it.
		r.subMu.Lock()
		r.hub.close()
		r.subMu.Unlock()
		for _, sh := range r.shards {
			_ = sh.ps.Close() // unblocks the reader
		}
		r.wg.Wait()
		close(r.pres.expired.ch) // its only sender, the sweeper, has stopped
		r.closeErr = errors.Join(r.psClient.Close(), r.client.Close())
	})
	return r.closeErr
}

func (r *Redis) attach(ctx context.Context, s *Subscription, channels []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.subMu.Lock()
	added, fresh, err := r.hub.add(s, channels)
	if err == nil && len(fresh) > 0 {
		if err = r.subscribeUpstream(ctx, fresh); err != nil {
			r.unsubscribeUpstream(r.hub.remove(s, added))
		}
	}
	r.subMu.Unlock()
	if err != nil || len(added) == 0 {
		return err
	}
	// Wait even when another subscription already holds the channel: its
	// SUBSCRIBE may still be in flight.
	if err := r.awaitSubscribed(ctx, added); err != nil {
		r.detach(s, added)
		return err
	}
	return nil
}

func (r *Redis) detach(s *Subscription, channels []string) {
	r.subMu.Lock()
	defer r.subMu.Unlock()
	r.unsubscribeUpstream(r.hub.remove(s, channels))
}

func (r *Redis) release(s *Subscription, channels []string) {
	r.subMu.Lock()
	defer r.subMu.Unlock()
	r.unsubscribeUpstream(r.hub.release(s, channels))
}

// subscribeUpstream must be called with subMu held.
func (r *Redis) subscribeUpstream(ctx context.Context, channels []string) error {
	for _, group := range r.byBucket(channels) {
		if err := r.subscribeShard(ctx, r.shard(group[0]), r.prefixed(group)); err != nil {
			return err
		}
	}
	return nil
}

// subscribeShard subscribes shard sh to the pubsub channels names; subMu must be held.
func (r *Redis) subscribeShard(ctx context.Context, sh *psShard, names []string) error {
	var err error
	// A failed write makes go-redis redial and resubscribe before it
	// records the new channels, so the new connection lacks them until we
	// write the SUBSCRIBE again.
	for range 3 {
		if r.closing() {
			return ErrClosed
		}
		if cerr := ctx.Err(); cerr != nil {
			return errors.Join(cerr, err)
		}
		// Not the caller's context: a write cut short by one impatient
		// caller would make go-redis drop the connection shared by all.
		opCtx, cancel := context.WithTimeout(sh.base, r.timings.op)
		err = sh.subscribe(opCtx, names...)
		cancel()
		if err == nil {
			return nil
		}
		r.log.Error("realtime: redis SUBSCRIBE failed", "channels", len(names), "err", err)
	}
	return fmt.Errorf("realtime: redis subscribe: %w", err)
}

// unsubscribeUpstream must be called with subMu held.
func (r *Redis) unsubscribeUpstream(channels []string) {
	// An empty UNSUBSCRIBE would drop every channel.
	if len(channels) == 0 || r.closing() {
		return
	}
	for _, group := range r.byBucket(channels) {
		sh := r.shard(group[0])
		ctx, cancel := context.WithTimeout(sh.base, r.timings.op)
		// On failure go-redis has already forgotten the channels and redials
		// without them, so there is nothing to undo.
		if err := sh.unsubscribe(ctx, r.prefixed(group)...); err != nil {
			r.log.Debug("realtime: redis UNSUBSCRIBE failed", "err", err)
		}
		cancel()
	}
}

// awaitSubscribed returns once Redis has processed every SUBSCRIBE written
// so far on the connections of channels, proven by the pong of a PING written after
// them on each. The PING is re-sent periodically because a reconnect loses its pong; the
// new connection resubscribes everything before any later PING.
func (r *Redis) awaitSubscribed(ctx context.Context, channels []string) error {
	for _, group := range r.byBucket(channels) {
		if err := r.awaitShard(ctx, r.shard(group[0])); err != nil {
			return err
		}
	}
	return nil
}

// awaitShard is awaitSubscribed for the connection of shard sh.
func (r *Redis) awaitShard(ctx context.Context, sh *psShard) error {
	token := waitPrefix + strconv.FormatUint(r.seq.Add(1), 10)
	ch := make(chan struct{})
	r.waitMu.Lock()
	r.waiters[token] = ch
	r.waitMu.Unlock()
	defer func() {
		r.waitMu.Lock()
		delete(r.waiters, token)
		r.waitMu.Unlock()
	}()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-r.done:
			return ErrClosed
		case <-t.C:
			r.ping(sh, token)
			t.Reset(r.timings.waitRetry)
		}
	}
}

func (r *Redis) wake(token string) {
	r.waitMu.Lock()
	defer r.waitMu.Unlock()
	if ch, ok := r.waiters[token]; ok {
		close(ch)
		delete(r.waiters, token)
	}
}

func (r *Redis) ping(sh *psShard, payload string) {
	ctx, cancel := context.WithTimeout(sh.base, r.timings.op)
	defer cancel()
	// A failed PING is not fatal: go-redis redials, which the reader notices.
	if err := sh.ps.Ping(ctx, payload); err != nil && !r.closing() {
		r.log.Debug("realtime: redis pubsub PING failed", "err", err)
	}
}

// pingLoop keeps traffic on the pubsub connection, so that the reader's read
// deadline only expires on a dead connection.
func (r *Redis) pingLoop() {
	defer r.wg.Done()
	tick.Every(r.timings.ping, r.done, nil, func() {
		for _, sh := range r.shards {
			r.ping(sh, healthToken)
		}
	})
}

// readLoop is the only reader of shard sh's pubsub connection. gen is the
// connection generation it started on. A reconnect of any shard makes every
// subscription of the process resync: simpler than tracking which hold a channel of it,
// and rare.
func (r *Redis) readLoop(sh *psShard, gen uint64) {
	defer r.wg.Done()
	var pending uint64 // generation whose resubscription is not yet confirmed, 0 if none
	failures := 0
	for {
		// The deadline turns a silently dead connection (no RST) into an
		// error, after which go-redis redials.
		ctx, cancel := context.WithTimeout(sh.base, r.timings.read)
		msg, err := sh.ps.Receive(ctx)
		cancel()
		if r.closing() {
			return
		}
		if err != nil {
			failures++
			if failures == 1 {
				r.log.Error("realtime: redis pubsub receive failed", "err", err)
			}
			if cc, ok := r.psClient.(*redis.ClusterClient); ok {
				// The pubsub client sends no command that a MOVED could correct: after a
				// failover its map of slots would name the dead master until its
				// periodic reload (a minute). Asked again now, at the reader's backoff.
				cc.ReloadState(ctx)
			}
		}
		if g := sh.gen.Load(); g != gen {
			gen, pending = g, g
			r.log.Warn("realtime: redis pubsub reconnected; events published meanwhile are lost", "generation", g)
			r.ping(sh, resyncPrefix+strconv.FormatUint(g, 10))
		}
		if err != nil {
			if !r.sleep(backoff(failures)) {
				return
			}
			continue
		}
		failures = 0
		switch m := msg.(type) {
		case *redis.Message:
			r.dispatch(m)
		case *redis.Pong:
			switch {
			case pending != 0 && m.Payload == resyncPrefix+strconv.FormatUint(pending, 10):
				// Signalled only now: a consumer re-fetching before the
				// channels are back would miss what is published in between.
				pending = 0
				n := r.hub.resyncAll()
				r.log.Warn("realtime: redis pubsub resubscribed; subscribers told to resync", "subscriptions", n)
			case m.Payload == healthToken:
				if pending != 0 {
					r.ping(sh, resyncPrefix+strconv.FormatUint(pending, 10))
				}
			default:
				r.wake(m.Payload)
			}
		}
	}
}

func (r *Redis) dispatch(m *redis.Message) {
	channel, ok := r.channelOf(m.Channel)
	if !ok {
		return
	}
	if channel == fanoutChannel {
		r.dispatchFanout(m.Payload)
		return
	}
	if channel == resyncAllChannel {
		n := r.hub.resyncAll()
		r.log.Warn("realtime: events were lost by a process; subscribers told to resync", "subscriptions", n)
		return
	}
	ev, origin, err := decodeEvent(m.Payload)
	if err != nil {
		r.log.Warn("realtime: dropping undecodable event", "channel", channel, "err", err)
		return
	}
	ev.Value = r.values.get(origin)
	_ = r.hub.publish(channel, ev)
}

func (r *Redis) closing() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// sleep waits d and reports false if the engine was closed meanwhile.
func (r *Redis) sleep(d time.Duration) bool {
	if d <= 0 {
		return !r.closing()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.done:
		return false
	}
}

// backoff spaces reconnect attempts while Redis is down; the first retry is
// immediate because go-redis usually has redialled already.
func backoff(failures int) time.Duration {
	if failures <= 1 {
		return 0
	}
	d := 50 * time.Millisecond << min(failures-2, 6)
	return min(d, 2*time.Second)
}

func (r *Redis) prefixed(channels []string) []string {
	names := make([]string, len(channels))
	for i, c := range channels {
		names[i] = r.pubsubName(c)
	}
	return names
}

// wireEvent is the compact JSON form of an Event on Redis, readable by
// processes written in other languages.
type wireEvent struct {
	Type      string          `json:"t"`
	ID        string          `json:"i,omitempty"`
	Data      json.RawMessage `json:"d,omitempty"`
	Droppable bool            `json:"x,omitempty"`
	// Origin names the event's typed value in the process that published it (see
	// localValues); other processes decode the data.
	Origin string `json:"o,omitempty"`
}

func encodeEvent(ev Event, origin string) ([]byte, error) {
	if err := validEvent(ev); err != nil {
		return nil, err
	}
	return json.Marshal(wireEvent{Type: ev.Type, ID: ev.ID, Data: ev.Data, Droppable: ev.Droppable, Origin: origin})
}

// encodeEventParts encodes ev without its ID, split where the ID goes so
// that the publish script can insert the ID it assigns without re-encoding
// the event (and possibly altering its data).
func encodeEventParts(ev Event, origin string) (head, body string, err error) {
	ev.ID = ""
	payload, err := encodeEvent(ev, origin)
	if err != nil {
		return "", "", err
	}
	t, err := json.Marshal(ev.Type)
	if err != nil {
		return "", "", err
	}
	head = `{"t":` + string(t)
	rest, ok := strings.CutPrefix(string(payload), head)
	if !ok {
		return "", "", fmt.Errorf("realtime: unexpected event encoding %s", payload)
	}
	return head, rest, nil
}

// decodeEvent reads a wireEvent with gjson: every process reads every event of its streams'
// users (ten a message in a class), and encoding/json's reflection over the whole payload,
// the message in it included, took a tenth of the server's CPU.
func decodeEvent(payload string) (ev Event, origin string, err error) {
	if !gjson.Valid(payload) || !strings.HasPrefix(payload, "{") {
		return Event{}, "", errors.New("realtime: event payload is not a JSON object")
	}
	f := gjson.GetMany(payload, "t", "i", "d", "x", "o")
	if f[0].Type != gjson.String {
		return Event{}, "", errors.New("realtime: event payload without a type")
	}
	if f[1].Exists() && f[1].Type != gjson.String || f[3].Exists() && !f[3].IsBool() || f[4].Exists() && f[4].Type != gjson.String {
		return Event{}, "", errors.New("realtime: event payload with a field of the wrong type")
	}
	ev = Event{Type: f[0].String(), ID: f[1].String(), Droppable: f[3].Bool()}
	if f[2].Exists() {
		ev.Data = json.RawMessage(f[2].Raw)
	}
	return ev, f[4].String(), nil
}
