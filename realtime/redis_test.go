package realtime_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/realtime/redistest"
)

func adminClient(t *testing.T, rawURL string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// withClientName names the engine's connections so a test can kill exactly
// its own, even on a Redis shared with other test runs.
func withClientName(t *testing.T, rawURL string) (string, string) {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "realtime-test-" + hex.EncodeToString(b[:])
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("client_name", name)
	u.RawQuery = q.Encode()
	return u.String(), name
}

// killPubSub is `CLIENT KILL TYPE pubsub` restricted to the connections named
// name; it returns how many it killed.
func killPubSub(t *testing.T, admin *redis.Client, name string) int {
	t.Helper()
	ctx := ctxT(t)
	list, err := admin.Do(ctx, "CLIENT", "LIST", "TYPE", "pubsub").Text()
	if err != nil {
		t.Fatalf("CLIENT LIST: %v", err)
	}
	killed := 0
	for line := range strings.Lines(list) {
		fields := map[string]string{}
		for f := range strings.FieldsSeq(line) {
			if k, v, ok := strings.Cut(f, "="); ok {
				fields[k] = v
			}
		}
		if fields["name"] != name {
			continue
		}
		if err := admin.Do(ctx, "CLIENT", "KILL", "ID", fields["id"]).Err(); err != nil {
			t.Fatalf("CLIENT KILL ID %s: %v", fields["id"], err)
		}
		killed++
	}
	return killed
}

func expectResync(t *testing.T, s *realtime.Subscription, within time.Duration) {
	t.Helper()
	select {
	case <-s.Resync():
	case <-time.After(within):
		t.Fatalf("no Resync within %v", within)
	}
}

func expectNoResync(t *testing.T, s *realtime.Subscription) {
	t.Helper()
	select {
	case <-s.Resync():
		t.Fatal("unexpected Resync")
	default:
	}
}

func TestRedisResyncAfterReconnect(t *testing.T) {
	base := redistest.URL(t)
	subURL, name := withClientName(t, base)
	pub := newRedis(t, base, 0)
	sub := newRedis(t, subURL, 0)
	admin := adminClient(t, base)
	ch := uniq(t)
	c := ch("conversation:1")

	s := subscribe(t, sub, c)
	idle := subscribe(t, sub) // no channel yet: still told to resync
	publish(t, pub, c, ev("message.new", 1))
	expect(t, s, c, ev("message.new", 1))
	expectNoResync(t, s)

	for round := 1; round <= 2; round++ {
		if n := killPubSub(t, admin, name); n != 1 {
			t.Fatalf("round %d: killed %d pubsub connections named %s, want 1", round, n, name)
		}
		expectResync(t, s, 5*time.Second)
		expectResync(t, idle, time.Second)
		// Resync means "channels are back": one publish must now arrive,
		// without retries.
		publish(t, pub, c, ev("message.new", 10+round))
		expect(t, s, c, ev("message.new", 10+round))
	}

	// Subscriptions keep working across the reconnect.
	if err := idle.Add(ctxT(t), ch("zone:3")); err != nil {
		t.Fatalf("Add after reconnect: %v", err)
	}
	publish(t, pub, ch("zone:3"), ev("presence", 2))
	expect(t, idle, ch("zone:3"), ev("presence", 2))
	expectNoResync(t, s)
}

// TestRedisSameProcessDelivery checks that the publisher's own process gets
// its events too (through Redis, in the same order as everyone else).
func TestRedisSameProcessDelivery(t *testing.T) {
	u := redistest.URL(t)
	a, b := newRedis(t, u, 0), newRedis(t, u, 0)
	ch := uniq(t)
	sa := subscribe(t, a, ch("c"))
	sb := subscribe(t, b, ch("c"))
	publish(t, a, ch("c"), ev("message.new", 1))
	expect(t, sa, ch("c"), ev("message.new", 1))
	expect(t, sb, ch("c"), ev("message.new", 1))
}

// TestRedisWireFormat pins the JSON on Redis, which other processes (and
// other languages) read and write.
func TestRedisWireFormat(t *testing.T) {
	u := redistest.URL(t)
	e := newRedis(t, u, 0)
	admin := adminClient(t, u)
	ctx := ctxT(t)
	ch := uniq(t)

	raw := admin.Subscribe(ctx, "messenger:"+ch("c"))
	defer raw.Close()
	if _, err := raw.Receive(ctx); err != nil { // subscribe confirmation
		t.Fatal(err)
	}
	publish(t, e, ch("c"), realtime.Event{Type: "message.typing", ID: "7", Data: json.RawMessage(`{ "user": 7 }`), Droppable: true})
	publish(t, e, ch("c"), realtime.Event{Type: "resync"})
	for _, want := range []string{
		`{"t":"message.typing","i":"7","d":{"user":7},"x":true}`,
		`{"t":"resync"}`,
	} {
		msg, err := raw.ReceiveMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if msg.Payload != want {
			t.Fatalf("payload %s, want %s", msg.Payload, want)
		}
	}

	s := subscribe(t, e, ch("d"))
	for _, payload := range []string{`not json`, `{"t":"presence","d":{"u":1},"x":true}`} {
		if err := admin.Publish(ctx, "messenger:"+ch("d"), payload).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// The undecodable message is skipped, the next one still arrives.
	expect(t, s, ch("d"), realtime.Event{Type: "presence", Data: json.RawMessage(`{"u":1}`), Droppable: true})
}

func TestNewRedisErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := realtime.NewRedis(ctx, "redis://127.0.0.1:1/0", 0, nil); err == nil {
		t.Fatal("NewRedis succeeded against a closed port")
	}
	if _, err := realtime.NewRedis(ctx, "http://nope", 0, nil); err == nil {
		t.Fatal("NewRedis accepted a non-redis URL")
	}
}

// faultProxy is a TCP proxy in front of Redis that can simulate a silently
// dead connection (freeze) and an outage (cut and refuse).
type faultProxy struct {
	ln     net.Listener
	target string
	refuse atomic.Bool
	mu     sync.Mutex
	pairs  []*proxyPair
	wg     sync.WaitGroup
}

type proxyPair struct {
	client, server net.Conn
	frozen         atomic.Bool
}

func newFaultProxy(t *testing.T, redisURL string) (*faultProxy, string) {
	t.Helper()
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, target: opts.Addr}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.cut()
		p.wg.Wait()
	})
	u, _ := url.Parse(redisURL)
	u.Host = ln.Addr().String()
	return p, u.String()
}

func (p *faultProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.refuse.Load() {
			_ = c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		pair := &proxyPair{client: c, server: s}
		p.mu.Lock()
		p.pairs = append(p.pairs, pair)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(pair, c, s)
		go p.pipe(pair, s, c)
	}
}

func (p *faultProxy) pipe(pair *proxyPair, from, to net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		if err != nil {
			_ = pair.client.Close()
			_ = pair.server.Close()
			return
		}
		if pair.frozen.Load() {
			continue // a black hole: nothing arrives, nothing is closed
		}
		if _, err := to.Write(buf[:n]); err != nil {
			_ = pair.client.Close()
			_ = pair.server.Close()
			return
		}
	}
}

// freeze turns every current connection into a black hole; new ones work.
func (p *faultProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pair := range p.pairs {
		pair.frozen.Store(true)
	}
}

// cut closes every current connection.
func (p *faultProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pair := range p.pairs {
		_ = pair.client.Close()
		_ = pair.server.Close()
	}
	p.pairs = nil
}

// fastChecks are health-check timings short enough for the fault tests: a PING every
// 100 ms, a connection presumed dead after 500 ms of silence.
var fastChecks = realtime.Tuning{RedisPing: 100 * time.Millisecond, RedisRead: 500 * time.Millisecond,
	RedisWaitRetry: 200 * time.Millisecond}

// cutSubscriber is a publisher that reaches Redis directly and a subscriber that reaches it
// through a proxy the test can cut, sharing a private key prefix, both with fastChecks: the
// mirror of lostPair.
func cutSubscriber(t *testing.T) (pub, sub *realtime.Redis, proxy *faultProxy) {
	t.Helper()
	base := redistest.URL(t)
	proxy, proxied := newFaultProxy(t, base)
	prefix := testPrefix(t, base)
	return newRedisTuned(t, base, 0, prefix, fastChecks), newRedisTuned(t, proxied, 0, prefix, fastChecks), proxy
}

// TestRedisDeadConnectionDetected: a pubsub connection that silently stops
// answering (no RST) is replaced after the read deadline, then Resync fires.
func TestRedisDeadConnectionDetected(t *testing.T) {
	t.Parallel()
	pub, sub, proxy := cutSubscriber(t)
	ch := uniq(t)
	c := ch("conversation:1")
	s := subscribe(t, sub, c)
	publish(t, pub, c, ev("message.new", 1))
	expect(t, s, c, ev("message.new", 1))

	proxy.freeze()
	expectResync(t, s, 5*time.Second)
	publish(t, pub, c, ev("message.new", 2))
	expect(t, s, c, ev("message.new", 2))
}

// TestRedisOutage: while Redis is unreachable subscribing fails and nothing
// claims to be in sync; once it is back, Resync fires and delivery resumes.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	pub, sub, proxy := cutSubscriber(t)
	ch := uniq(t)
	c := ch("conversation:1")
	s := subscribe(t, sub, c)

	proxy.refuse.Store(true)
	proxy.cut()
	publish(t, pub, c, ev("message.new", 1)) // lost: nobody is subscribed upstream
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := sub.Subscribe(ctx, ch("other")); err == nil {
		t.Fatal("Subscribe succeeded while Redis was unreachable")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("failing Subscribe took %v", d)
	}
	time.Sleep(300 * time.Millisecond)
	expectNoResync(t, s)

	proxy.refuse.Store(false)
	expectResync(t, s, 5*time.Second)
	publish(t, pub, c, ev("message.new", 2))
	expect(t, s, c, ev("message.new", 2)) // and not the lost one
	s2 := subscribe(t, sub, ch("other"))
	publish(t, pub, ch("other"), ev("message.new", 3))
	expect(t, s2, ch("other"), ev("message.new", 3))
}
