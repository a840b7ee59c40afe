package realtime

import (
	"context"
	"errors"
	"hash/fnv"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// Redis Cluster (NewRedisCluster).
//
// A cluster runs a script or a MULTI only on keys of one hash slot, and a sharded
// pub/sub channel (SSUBSCRIBE, SPUBLISH) lives on the node owning its slot. So on a
// cluster every channel falls in one of clusterBuckets buckets (a hash of its name), and
// everything of a bucket carries the hash tag "{h<bucket>}": the channel's history
// stream, the pub/sub channel its events go to, the bucket's epoch (one per bucket, so
// that a node losing its data gives its own channels a new epoch), and for user u (whose
// channel is "user:<u>") their presence set and the bucket's index of online users. A
// publish script therefore touches one slot, and History reads a stream and its epoch in
// one MULTI.
//
// Each bucket has its own pub/sub connection (a go-redis PubSub of the ClusterClient),
// which dials the node owning the bucket's slot and, after a reconnect, sends the
// bucket's channels again in one SSUBSCRIBE: one slot, as the cluster requires. A
// process thus holds clusterBuckets pub/sub connections, spread over the masters.
//
// Ordering: a channel's events go to one node, in one pipeline's order (go-redis sends a
// node's share of a pipeline on one connection, in order). While a slot migrates, the
// cluster redirects (MOVED, ASK) and go-redis retries; an event then may arrive out of
// order or be lost, which resharding makes an operator's event like a Redis restart.
//
// On a single Redis (NewRedis) nothing of this applies: no tags, one epoch, one index,
// one pub/sub connection, PUBLISH and SUBSCRIBE, exactly as before clusters.
const clusterBuckets = 64

// shardGenKey is the context key under which a pub/sub shard's calls carry its dial
// counter, so that the cluster client's OnConnect (shared by every shard) counts a dial
// for the shard that made it.
type shardGenKey struct{}

// psShard is one pub/sub connection of the engine: the only one on a single Redis, that
// of one bucket on a cluster.
type psShard struct {
	ps      *redis.PubSub
	sharded bool          // SSUBSCRIBE instead of SUBSCRIBE
	gen     atomic.Uint64 // connections dialled so far
	base    context.Context
}

func newShard(sharded bool) *psShard {
	sh := &psShard{sharded: sharded}
	sh.base = context.WithValue(context.Background(), shardGenKey{}, &sh.gen)
	return sh
}

func (sh *psShard) subscribe(ctx context.Context, names ...string) error {
	if sh.sharded {
		return sh.ps.SSubscribe(ctx, names...)
	}
	return sh.ps.Subscribe(ctx, names...)
}

func (sh *psShard) unsubscribe(ctx context.Context, names ...string) error {
	if sh.sharded {
		return sh.ps.SUnsubscribe(ctx, names...)
	}
	return sh.ps.Unsubscribe(ctx, names...)
}

// bucket answers the cluster bucket of channel.
func bucket(channel string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(channel))
	return int(h.Sum32() % clusterBuckets)
}

// bucketTag is the hash tag of bucket b.
func bucketTag(b int) string { return "{h" + strconv.Itoa(b) + "}" }

// bucketOf answers channel's bucket on a cluster, 0 on a single Redis.
func (r *Redis) bucketOf(channel string) int {
	if !r.cluster {
		return 0
	}
	return bucket(channel)
}

// tag is the hash tag that keys and pub/sub channels of channel carry: none on a single
// Redis.
func (r *Redis) tag(channel string) string {
	if !r.cluster {
		return ""
	}
	return bucketTag(bucket(channel))
}

// shard answers the pub/sub connection that channel's events come on.
func (r *Redis) shard(channel string) *psShard { return r.shards[r.bucketOf(channel)] }

// pubsubName is the Redis pub/sub channel of channel.
func (r *Redis) pubsubName(channel string) string { return r.prefix + r.tag(channel) + channel }

// channelOf is the inverse of pubsubName.
func (r *Redis) channelOf(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, r.prefix)
	if !ok || !r.cluster {
		return rest, ok
	}
	if !strings.HasPrefix(rest, "{") {
		return "", false
	}
	i := strings.IndexByte(rest, '}')
	if i < 0 {
		return "", false
	}
	return rest[i+1:], true
}

// epochKeys are the keys of every epoch: one per bucket on a cluster.
func (r *Redis) epochKeys() []string {
	if !r.cluster {
		return []string{r.epochKey("")}
	}
	keys := make([]string, clusterBuckets)
	for b := range keys {
		keys[b] = r.prefix + bucketTag(b) + epochKeySuffix
	}
	return keys
}

// presenceIndexKeys are the keys of every index of online users: one per bucket on a
// cluster.
func (r *Redis) presenceIndexKeys() []string {
	if !r.cluster {
		return []string{r.presenceIndexKey(0)}
	}
	keys := make([]string, clusterBuckets)
	for b := range keys {
		keys[b] = r.prefix + bucketTag(b) + presenceUsersKey
	}
	return keys
}

// userChannel is the history channel of userID, whose bucket their presence keys share.
func userChannel(userID int64) string {
	return HistoryChannelPrefix + strconv.FormatInt(userID, 10)
}

// reloadOnFailure is a hook of the cluster's command client: a command that failed
// without Redis answering (a node down, a dial refused) makes the client ask the
// cluster for its map of slots again. go-redis corrects the map on MOVED, and otherwise
// only once a minute: after a failover it would send a dead master's slots to it, and
// every publish to them would fail, for that long.
type reloadOnFailure struct{ c *redis.ClusterClient }

func (h reloadOnFailure) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h reloadOnFailure) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if unanswered(err) {
			h.c.ReloadState(ctx)
		}
		return err
	}
}

func (h reloadOnFailure) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			if unanswered(cmd.Err()) {
				h.c.ReloadState(ctx)
				break
			}
		}
		return err
	}
}

// unanswered reports whether err is a failure other than Redis's answer (an error reply,
// or nil).
func unanswered(err error) bool {
	var reply redis.Error
	return err != nil && !errors.As(err, &reply)
}
