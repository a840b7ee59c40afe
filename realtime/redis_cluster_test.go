package realtime_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/realtime/redistest"
)

// clusterContract names the cases of the behavioural suite that the Redis Cluster engine
// runs. The others check an order across channels (a marker on another channel proving
// that nothing more is coming, two channels' events in one order), which the Engine
// contract does not promise and a cluster does not give: channels of different buckets
// come from different nodes, on different connections.
var clusterContract = map[string]bool{
	"SharedChannelRefcount": true, "SubscriptionClose": true, "EngineClose": true,
	"Ordering": true, "SlowSubscriberIsolation": true,
	"HistoryResume": true, "HistoryGone": true, "HistoryTrimmed": true, "HistoryExpired": true,
	"HistoryHead": true, "HistoryDroppable": true, "HistoryConcurrentPublishers": true,
	"PublishManyLarge": true,
}

// TestRedisCluster runs the engine against a Redis Cluster of three masters that it
// starts: the behavioural and presence suites (two engines are two processes), and what
// is particular to a cluster.
func TestRedisCluster(t *testing.T) {
	start := time.Now()
	cl := redistest.StartCluster(t)
	t.Logf("cluster of %d nodes up in %v: %s", len(cl.Addrs), time.Since(start), cl.URL)
	opts, err := redis.ParseClusterURL(cl.URL)
	if err != nil {
		t.Fatal(err)
	}
	admin := redis.NewClusterClient(opts)
	t.Cleanup(func() { _ = admin.Close() })

	newEngine := func(t *testing.T, queueSize int, prefix string, tu realtime.Tuning) *realtime.Redis {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		r, err := realtime.NewRedisClusterTuned(ctx, cl.URL, queueSize, quietLogger(t), prefix, tu)
		if err != nil {
			t.Fatalf("NewRedisClusterTuned: %v", err)
		}
		t.Cleanup(func() { _ = r.Close() })
		return r
	}
	// The cluster is this test's own: a prefix per test keeps the tests apart, and
	// nothing needs deleting.
	prefix := func() string {
		var b [6]byte
		_, _ = rand.Read(b[:])
		return "rt-cluster-" + hex.EncodeToString(b[:]) + ":"
	}
	kind := engineKind{
		name: "redis-cluster",
		tuned: func(t *testing.T, queueSize int, tu realtime.Tuning) (realtime.Engine, realtime.Engine) {
			p := prefix()
			return newEngine(t, queueSize, p, tu), newEngine(t, queueSize, p, tu)
		},
		isolated: func(t *testing.T) realtime.Engine { return newEngine(t, 0, prefix(), realtime.Tuning{}) },
	}
	pair := func(t *testing.T, queueSize int) (a, b *realtime.Redis) {
		p := prefix()
		return newEngine(t, queueSize, p, realtime.Tuning{}), newEngine(t, queueSize, p, realtime.Tuning{})
	}

	t.Run("Contract", func(t *testing.T) {
		ran := 0
		for _, c := range contractCases() {
			if clusterContract[c.name] {
				ran++
				t.Run(c.name, func(t *testing.T) { c.fn(t, kind) })
			}
		}
		if ran != len(clusterContract) {
			t.Fatalf("ran %d cases of the suite, want %d", ran, len(clusterContract))
		}
	})

	t.Run("Presence", func(t *testing.T) {
		pk := presenceKind{
			name: "redis-cluster",
			new: func(t *testing.T, pt realtime.PresenceTimings) (realtime.Engine, realtime.Engine) {
				p := prefix()
				tu := realtime.Tuning{Presence: pt}
				return newEngine(t, 0, p, tu), newEngine(t, 0, p, tu)
			},
		}
		cases := append(presenceCases(), presenceCase{"AdmitStream", testAdmitStream}, presenceCase{"StreamEvicted", testStreamEvicted})
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				c.fn(t, pk)
			})
		}
	})

	// A group's message to 500 members goes out as a fan-out message a bucket
	// (redis_fanout.go): every member's stream on the other process gets it, with the ID
	// its own history gives it.
	t.Run("Fanout", func(t *testing.T) {
		a, b := pair(t, 1000)
		ctx := ctxT(t)
		var members []string
		for i := range 500 {
			members = append(members, fmt.Sprintf("%s%d", realtime.HistoryChannelPrefix, 90000+i))
		}
		heads := map[string]string{}
		for _, c := range members[:5] {
			h, err := a.Head(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			heads[c] = h
		}
		s := subscribe(t, b, members...)
		msg := realtime.Event{Type: "message.new", Data: json.RawMessage(`{"body":"전교생 공지"}`)}
		if err := a.PublishMany(ctx, members, msg); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for range members {
			d := recv(t, s)
			if string(d.Event.Data) != string(msg.Data) || d.Event.ID == "" || got[d.Channel] != "" {
				t.Fatalf("delivery %+v on %s (already %q)", d.Event, d.Channel, got[d.Channel])
			}
			got[d.Channel] = d.Event.ID
		}
		for c, head := range heads {
			stored, err := b.History(ctx, c, head)
			if err != nil {
				t.Fatal(err)
			}
			if len(stored) != 1 || stored[0].ID != got[c] {
				t.Errorf("%s: history after its head %+v, delivered with ID %q", c, stored, got[c])
			}
		}
	})

	// Channels spread over every node: each delivered from one process to the other,
	// in order, over SPUBLISH and SSUBSCRIBE (no classic pub/sub subscriber anywhere).
	t.Run("AcrossSlots", func(t *testing.T) {
		a, b := pair(t, 1000) // room for everything: this is about delivery and order
		ctx := ctxT(t)
		ch := uniq(t)
		var channels []string
		nodes := map[string]bool{}
		for i := range 60 {
			c := ch("conversation:" + strconv.Itoa(i))
			if i%2 == 0 {
				c = userChannel(t)
			}
			channels = append(channels, c)
			nodes[nodeOf(t, admin, b.PubSubName(c))] = true
		}
		if len(nodes) != len(cl.Addrs) {
			t.Fatalf("the channels fall on %d nodes of %d", len(nodes), len(cl.Addrs))
		}
		s := subscribe(t, b, channels...)
		const rounds = 5
		for i := range rounds {
			for _, c := range channels {
				if err := a.Publish(ctx, c, numbered(i)); err != nil {
					t.Fatalf("Publish(%s): %v", c, err)
				}
			}
		}
		next := map[string]int{}
		ids := map[string]string{}
		for k := range rounds * len(channels) {
			ctx2, cancel := context.WithTimeout(ctx, waitFor)
			d, err := s.Next(ctx2)
			cancel()
			if err != nil {
				t.Fatalf("after %d deliveries: %v; got %v", k, err, next)
			}
			if want := fmt.Sprintf(`{"n":%d}`, next[d.Channel]); string(d.Event.Data) != want {
				t.Fatalf("%s: got %s, want %s", d.Channel, d.Event.Data, want)
			}
			next[d.Channel]++
			if realtime.KeepsHistory(d.Channel) {
				if ids[d.Channel] == "" {
					ids[d.Channel] = d.Event.ID
				}
			}
		}
		for _, c := range channels {
			if next[c] != rounds {
				t.Fatalf("%s: %d deliveries, want %d", c, next[c], rounds)
			}
		}
		// History from the other process: the four events after the first.
		for c, first := range ids {
			if h := history(t, a, c, first); len(h) != rounds-1 || string(h[rounds-2].Data) != fmt.Sprintf(`{"n":%d}`, rounds-1) {
				t.Fatalf("history of %s after %s: %+v", c, first, h)
			}
		}
		// Sharded pub/sub: each channel is subscribed once, with SSUBSCRIBE on the node
		// owning its slot; no classic pub/sub channel of this test exists anywhere.
		owner := map[string]string{}
		for _, c := range channels {
			owner[b.PubSubName(c)] = nodeOf(t, admin, b.PubSubName(c))
		}
		var mu sync.Mutex
		shard, classic := map[string]int64{}, 0
		err := admin.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			for _, c := range channels {
				name := b.PubSubName(c)
				n, err := node.PubSubShardNumSub(ctx, name).Result()
				if err != nil {
					return err
				}
				if n[name] > 0 && node.Options().Addr != owner[name] {
					return fmt.Errorf("%s subscribed on %s, not its node", name, node.Options().Addr)
				}
				mu.Lock()
				shard[name] += n[name]
				mu.Unlock()
			}
			names, err := node.PubSubChannels(ctx, a.Prefix()+"*").Result()
			mu.Lock()
			classic += len(names)
			mu.Unlock()
			return err
		})
		if err != nil || classic != 0 {
			t.Fatalf("classic pub/sub channels on the masters: %d, %v", classic, err)
		}
		for _, c := range channels {
			if n := shard[b.PubSubName(c)]; n != 1 {
				t.Fatalf("PUBSUB SHARDNUMSUB %s = %d over the masters, want 1", b.PubSubName(c), n)
			}
		}
	})

	// PublishAll over many channels of every bucket: each channel gets its events in the
	// order of the publications, live and in history.
	t.Run("PublishAllOrder", func(t *testing.T) {
		const users, pubs = 300, 20
		a, b := pair(t, users*pubs*2) // room for everything: this is about order
		channels := make([]string, users)
		for i := range channels {
			channels[i] = userChannel(t)
		}
		conv := uniq(t)("conversation:1")
		s, err := b.Subscribe(ctxT(t), append(channels, conv)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		var batch []realtime.Publication
		for i := range pubs {
			// Each publication to a different subset, so the scripts of a bucket differ.
			var to []string
			for j, c := range channels {
				if (i+j)%3 != 0 {
					to = append(to, c)
				}
			}
			batch = append(batch, realtime.Publication{Channels: append(to, conv), Event: numbered(i)})
		}
		if err := a.PublishAll(ctxT(t), batch); err != nil {
			t.Fatalf("PublishAll: %v", err)
		}
		want := map[string][]int{}
		for i, p := range batch {
			for _, c := range p.Channels {
				want[c] = append(want[c], i)
			}
		}
		total := 0
		for _, w := range want {
			total += len(w)
		}
		got := map[string][]int{}
		firstID := map[string]string{}
		lastID := map[string]string{}
		for range total {
			d := recvFrom(t, s)
			var n struct{ N int }
			if err := json.Unmarshal(d.Event.Data, &n); err != nil {
				t.Fatal(err)
			}
			got[d.Channel] = append(got[d.Channel], n.N)
			if realtime.KeepsHistory(d.Channel) {
				if prev := lastID[d.Channel]; prev != "" {
					if c, ok := realtime.CompareEventIDs(prev, d.Event.ID); !ok || c >= 0 {
						t.Fatalf("%s: IDs %q then %q", d.Channel, prev, d.Event.ID)
					}
				} else {
					firstID[d.Channel] = d.Event.ID
				}
				lastID[d.Channel] = d.Event.ID
			}
		}
		for c, w := range want {
			if fmt.Sprint(got[c]) != fmt.Sprint(w) {
				t.Fatalf("%s: got %v, want %v", c, got[c], w)
			}
		}
		for _, c := range channels[:10] {
			h := history(t, a, c, firstID[c])
			var ns []int
			for _, e := range h {
				var n struct{ N int }
				_ = json.Unmarshal(e.Data, &n)
				ns = append(ns, n.N)
			}
			if fmt.Sprint(ns) != fmt.Sprint(want[c][1:]) {
				t.Fatalf("history of %s: %v, want %v", c, ns, want[c][1:])
			}
		}
	})

	// A pub/sub connection of one bucket lost (killed on its node): the subscriptions are
	// told to resync once it is back, and its channels deliver again; the process holds
	// as many pub/sub connections (one a bucket) as before.
	t.Run("Reconnect", func(t *testing.T) {
		p := prefix()
		a := newEngine(t, 0, p, realtime.Tuning{})
		subURL, name := withClientName(t, cl.URL)
		bCtx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		b, err := realtime.NewRedisClusterTuned(bCtx, subURL, 0, quietLogger(t), p, realtime.Tuning{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		c := uniq(t)("conversation:1")
		s := subscribe(t, b, c)
		publish(t, a, c, ev("message.new", 1))
		expect(t, s, c, ev("message.new", 1))
		expectNoResync(t, s)

		node := redis.NewClient(&redis.Options{Addr: nodeOf(t, admin, b.PubSubName(c))})
		t.Cleanup(func() { _ = node.Close() })
		before := pubsubClients(t, admin, name)
		killed := 0
		list, err := node.Do(ctxT(t), "CLIENT", "LIST", "TYPE", "pubsub").Text()
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(list) {
			// Only the connection holding c: it holds three channels (c, its bucket's
			// resync-all and fan-out), the others two.
			if strings.Contains(line, " name="+name+" ") && strings.Contains(line, " ssub=3 ") {
				id := strings.TrimPrefix(strings.Fields(line)[0], "id=")
				if err := node.Do(ctxT(t), "CLIENT", "KILL", "ID", id).Err(); err != nil {
					t.Fatal(err)
				}
				killed++
			}
		}
		if killed != 1 {
			t.Fatalf("killed %d connections holding %s, want 1", killed, c)
		}
		expectResync(t, s, 5*time.Second)
		publish(t, a, c, ev("message.new", 2))
		expect(t, s, c, ev("message.new", 2))
		if after := pubsubClients(t, admin, name); after != before {
			t.Fatalf("%d pub/sub connections after the reconnect, %d before", after, before)
		}
	})

	// Past the bound on remembered lost channels, the repair gives every bucket a new
	// epoch and tells every process, through the first bucket's node, to resync all.
	t.Run("RepairAll", func(t *testing.T) {
		p := prefix()
		tu := realtime.Tuning{MaxLostChannels: 2}
		pub, sub := newEngine(t, 0, p, tu), newEngine(t, 0, p, tu)
		user, other := userChannel(t), userChannel(t)
		s := subscribe(t, sub, user)
		bystander := subscribe(t, sub, other)
		publish(t, pub, user, numbered(1))
		before := recv(t, s).Event.ID
		publish(t, pub, other, numbered(1))
		beforeOther := recv(t, bystander).Event.ID

		gone, cancel := context.WithCancel(context.Background())
		cancel() // every publish with it fails: its events count as lost
		for i := range 3 {
			if err := pub.Publish(gone, userChannel(t), numbered(10+i)); err == nil {
				t.Fatal("a publish with a cancelled context succeeded")
			}
		}
		expectResync(t, s, 5*time.Second)
		expectResync(t, bystander, time.Second)
		for c, id := range map[string]string{user: before, other: beforeOther} {
			if _, err := sub.History(ctxT(t), c, id); !errors.Is(err, realtime.ErrHistoryGone) {
				t.Fatalf("history of %s after an id from before the repair: %v, want ErrHistoryGone", c, err)
			}
		}
		publish(t, pub, user, numbered(2))
		if d := recv(t, s); string(d.Event.Data) != string(numbered(2).Data) {
			t.Fatalf("after the repair: %s %s, want event 2", d.Event.Type, d.Event.Data)
		}
	})

	// The keys of a channel and of a user share a slot, and the prefix comes first.
	t.Run("Keys", func(t *testing.T) {
		a, _ := pair(t, 0)
		ctx := ctxT(t)
		c := userChannel(t)
		publish(t, a, c, numbered(0))
		slot := func(key string) int64 {
			n, err := admin.ClusterKeySlot(ctx, key).Result()
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		keys := []string{a.HistoryKey(c), a.EpochKeyOf(c), a.PubSubName(c)}
		for _, k := range keys {
			if !strings.HasPrefix(k, a.Prefix()) || slot(k) != slot(keys[0]) {
				t.Fatalf("keys %v: not all under the prefix %s in one slot", keys, a.Prefix())
			}
		}
		if n, err := admin.Exists(ctx, a.HistoryKey(c), a.EpochKeyOf(c)).Result(); err != nil || n != 2 {
			t.Fatalf("history and epoch keys exist: %d, %v", n, err)
		}
		for _, k := range []string{a.PresenceIndexKey(42), a.StreamsKey(42), a.EvictedKey(42)} {
			if slot(k) != slot(a.PresenceKey(42)) {
				t.Fatalf("a user's keys %s and %s in different slots", a.PresenceKey(42), k)
			}
		}
		if _, err := realtime.NewRedisCluster(ctx, cl.URL, 0, quietLogger(t), "bad{prefix}:"); err == nil {
			t.Fatal("a prefix with braces accepted on a cluster")
		}
	})
}

// recvFrom is recv with a longer wait, for a large batch on a loaded machine.
func recvFrom(t *testing.T, s *realtime.Subscription) realtime.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*waitFor)
	defer cancel()
	d, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("waiting for a delivery: %v", err)
	}
	return d
}

// nodeOf answers the address of the master owning key's slot.
func nodeOf(t *testing.T, admin *redis.ClusterClient, key string) string {
	t.Helper()
	ctx := ctxT(t)
	slot, err := admin.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	slots, err := admin.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		if int64(s.Start) <= slot && slot <= int64(s.End) {
			return s.Nodes[0].Addr
		}
	}
	t.Fatalf("no node owns slot %d", slot)
	return ""
}

// pubsubClients counts the pub/sub connections named name over the cluster's masters.
func pubsubClients(t *testing.T, admin *redis.ClusterClient, name string) int {
	t.Helper()
	var mu sync.Mutex
	n := 0
	err := admin.ForEachMaster(ctxT(t), func(ctx context.Context, node *redis.Client) error {
		list, err := node.Do(ctx, "CLIENT", "LIST", "TYPE", "pubsub").Text()
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for line := range strings.Lines(list) {
			if strings.Contains(line, " name="+name+" ") {
				n++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRedisClusterFailover: a cluster of three masters with a replica each loses the
// master of a subscribed channel (killed); once its replica has taken over, the
// subscription is told to resync and the channel delivers again, from the other process.
func TestRedisClusterFailover(t *testing.T) {
	start := time.Now()
	cl := redistest.StartClusterWith(t, redistest.ClusterOptions{Replicas: 1, Timeout: time.Second})
	t.Logf("cluster of %d nodes up in %v", len(cl.Addrs), time.Since(start))
	opts, err := redis.ParseClusterURL(cl.URL)
	if err != nil {
		t.Fatal(err)
	}
	admin := redis.NewClusterClient(opts)
	t.Cleanup(func() { _ = admin.Close() })
	var b6 [6]byte
	_, _ = rand.Read(b6[:])
	prefix := "rt-failover-" + hex.EncodeToString(b6[:]) + ":"
	newEngine := func() *realtime.Redis {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		r, err := realtime.NewRedisClusterTuned(ctx, cl.URL, 0, quietLogger(t), prefix, realtime.Tuning{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		return r
	}
	a, b := newEngine(), newEngine()
	c := userChannel(t)
	s := subscribe(t, b, c)
	publish(t, a, c, numbered(0))
	recv(t, s)

	owner := nodeOf(t, admin, b.PubSubName(c))
	cl.Kill(owner)
	killed := time.Now()
	var rest []string
	for _, addr := range cl.Addrs {
		if addr != owner {
			rest = append(rest, addr)
		}
	}
	survivor := redis.NewClient(&redis.Options{Addr: rest[0]})
	t.Cleanup(func() { _ = survivor.Close() })
	slot, err := admin.ClusterKeySlot(ctxT(t), b.PubSubName(c)).Result()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if time.Since(killed) > 30*time.Second {
			t.Fatal("no replica took over within 30 s")
		}
		slots, _ := survivor.ClusterSlots(ctxT(t)).Result()
		moved := false
		for _, sr := range slots {
			if int64(sr.Start) <= slot && slot <= int64(sr.End) && sr.Nodes[0].Addr != owner {
				moved = true
			}
		}
		if moved && cl.WaitOK(rest, time.Second) == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("failed over %v after the kill", time.Since(killed))
	expectResync(t, s, 30*time.Second)
	t.Logf("resync %v after the kill", time.Since(killed))
	// Publishes may fail until the publisher's client learns the new master; then one
	// arrives.
	deadline := time.Now().Add(30 * time.Second)
	for i := 1; ; i++ {
		if time.Now().After(deadline) {
			t.Fatal("no delivery after the failover")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := a.Publish(ctx, c, numbered(i))
		cancel()
		if err != nil {
			t.Logf("publish %d: %v", i, err)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
		d, err := s.Next(ctx)
		cancel()
		if err == nil && d.Event.Type == "message.new" {
			t.Logf("delivered again %v after the kill (publish %d)", time.Since(killed), i)
			return
		}
	}
}
