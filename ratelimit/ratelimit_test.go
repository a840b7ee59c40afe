package ratelimit_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/ratelimit"
	"github.com/dreamseed/messenger/realtime/redistest"
)

// limiters answers each Limiter to run the contract against: memory, and Redis (its keys
// under a prefix of this test's own).
func limiters(t *testing.T) map[string]ratelimit.Limiter {
	t.Helper()
	out := map[string]ratelimit.Limiter{"memory": ratelimit.NewMemory()}
	url := redistest.URL(t)
	r, err := ratelimit.NewRedis(url, "rltest-"+uuid.NewString()+":")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	out["redis"] = r
	// A cluster of three: the buckets' keys fall on different nodes.
	cl, err := ratelimit.NewRedisCluster(redistest.StartCluster(t).URL, "rltest-"+uuid.NewString()+":")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	out["redis-cluster"] = cl
	return out
}

// TestLimiterContract is what every Limiter does: a burst, then refusals with an honest
// wait, refills, separate keys, and no more than the burst under concurrency.
func TestLimiterContract(t *testing.T) {
	ctx := context.Background()
	for name, l := range limiters(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("burst then wait", func(t *testing.T) {
				r := ratelimit.Rate{PerSecond: 10, Burst: 3}
				for i := range 3 {
					if ok, _, err := l.Take(ctx, "burst", r); !ok || err != nil {
						t.Fatalf("take %d of the burst: %v %v", i+1, ok, err)
					}
				}
				ok, wait, err := l.Take(ctx, "burst", r)
				if ok || err != nil {
					t.Fatalf("take past the burst: %v %v, want refused", ok, err)
				}
				if wait <= 0 || wait > 110*time.Millisecond {
					t.Fatalf("retry after %s, want (0, 100ms]", wait)
				}
				// Another key has its own bucket.
				if ok, _, err := l.Take(ctx, "other", r); !ok || err != nil {
					t.Fatalf("another key: %v %v", ok, err)
				}
				// After the wait it answered, a token is back, and only one.
				time.Sleep(wait + 5*time.Millisecond)
				if ok, _, err := l.Take(ctx, "burst", r); !ok || err != nil {
					t.Fatalf("take after the wait: %v %v", ok, err)
				}
				if ok, _, _ := l.Take(ctx, "burst", r); ok {
					t.Fatal("two tokens came back in one refill time")
				}
			})
			t.Run("concurrent takes get the burst exactly", func(t *testing.T) {
				r := ratelimit.Rate{PerSecond: 0.01, Burst: 20}
				var passed atomic.Int64
				var wg sync.WaitGroup
				for range 10 {
					wg.Go(func() {
						for range 10 {
							ok, _, err := l.Take(ctx, "crowd", r)
							if err != nil {
								t.Error(err)
							}
							if ok {
								passed.Add(1)
							}
						}
					})
				}
				wg.Wait()
				if passed.Load() != 20 {
					t.Fatalf("%d of 100 concurrent takes passed, want the burst of 20", passed.Load())
				}
			})
		})
	}
}

// TestRedisKeys checks that the Redis limiter keeps its buckets under the deployment's
// prefix and lets them lapse once they would be full again.
func TestRedisKeys(t *testing.T) {
	url := redistest.URL(t)
	prefix := "rltest-" + uuid.NewString() + ":"
	l, err := ratelimit.NewRedis(url, prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	if _, _, err := l.Take(ctx, "send:42", ratelimit.Rate{PerSecond: 2, Burst: 10}); err != nil {
		t.Fatal(err)
	}
	opts, _ := redis.ParseURL(url)
	c := redis.NewClient(opts)
	defer c.Close()
	keys, err := c.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != prefix+"ratelimit:send:42" {
		t.Fatalf("keys %v, want [%sratelimit:send:42]", keys, prefix)
	}
	// One token of ten spent at two a second: full again in 0.5 s, the key lapses a
	// second after that.
	ttl, err := c.PTTL(ctx, keys[0]).Result()
	if err != nil || ttl <= 0 || ttl > 1500*time.Millisecond {
		t.Fatalf("TTL %s (%v), want (0, 1.5s]", ttl, err)
	}
}

// TestMemoryForgetsIdleBuckets checks that the memory limiter's buckets go once they
// have refilled.
func TestMemoryForgetsIdleBuckets(t *testing.T) {
	m := ratelimit.NewMemory()
	now := time.Now()
	ratelimit.SetClock(m, func() time.Time { return now })
	r := ratelimit.Rate{PerSecond: 1, Burst: 5}
	for i := range 1000 {
		m.Take(context.Background(), "user:"+strings.Repeat("x", i%50)+string(rune('a'+i%26)), r)
	}
	before := m.Len()
	if before == 0 {
		t.Fatal("no buckets")
	}
	// A minute later every bucket (one token spent, one second to refill) is full again.
	now = now.Add(time.Minute)
	m.Take(context.Background(), "fresh", r)
	if m.Len() != 1 {
		t.Fatalf("%d buckets after a minute idle (had %d), want only the fresh one", m.Len(), before)
	}
	// A bucket still refilling is kept.
	for range 5 {
		m.Take(context.Background(), "busy", r)
	}
	now = now.Add(time.Minute)
	m.Take(context.Background(), "busy", ratelimit.Rate{PerSecond: 0.001, Burst: 5})
	if m.Len() != 1 {
		t.Fatalf("%d buckets, want the busy one", m.Len())
	}
}

// TestMemoryBounded checks that a flood of keys never grows the memory limiter past its
// bound.
func TestMemoryBounded(t *testing.T) {
	m := ratelimit.NewMemory()
	r := ratelimit.Rate{PerSecond: 0.001, Burst: 5} // nothing refills during the test
	for i := range ratelimit.MemoryMaxBuckets + 1000 {
		m.Take(context.Background(), uuid.NewString()[:8]+string(rune(i)), r)
		if m.Len() > ratelimit.MemoryMaxBuckets {
			t.Fatalf("%d buckets after %d keys, bound %d", m.Len(), i+1, ratelimit.MemoryMaxBuckets)
		}
	}
}

// TestLimitsFailOpen checks that an unreachable Redis lets every request through, soon,
// counts the failure, and is asked again only after a rest.
func TestLimitsFailOpen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	r, err := ratelimit.NewRedis("redis://"+addr+"/0", "x:")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	limits := ratelimit.New(r, ratelimit.Rates{ratelimit.Send: {PerSecond: 1, Burst: 1}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	start := time.Now()
	for range 5 {
		if err := limits.Allow(context.Background(), ratelimit.Send, "1"); err != nil {
			t.Fatalf("with Redis down: %v, want the request let through", err)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("5 checks with Redis down took %s", d)
	}
	if n := testutil.ToFloat64(limits.Failures()); n != 1 {
		t.Errorf("%v failures counted, want 1 (then the limiter rests)", n)
	}
	time.Sleep(time.Second) // the rest
	if err := limits.Allow(context.Background(), ratelimit.Send, "1"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(limits.Failures()); n != 2 {
		t.Errorf("%v failures counted after the rest, want 2", n)
	}
}

// TestLimitsAllow checks the domain error of a request past its limit, and that a nil
// Limits and an action that is off limit nothing.
func TestLimitsAllow(t *testing.T) {
	ctx := context.Background()
	var none *ratelimit.Limits
	if err := none.Allow(ctx, ratelimit.Send, "1"); err != nil {
		t.Fatalf("nil limits: %v", err)
	}
	limits := ratelimit.New(ratelimit.NewMemory(), ratelimit.Rates{
		ratelimit.Send:   {PerSecond: 0.5, Burst: 2},
		ratelimit.Typing: {},
	}, slog.Default())
	for range 100 {
		if err := limits.Allow(ctx, ratelimit.Typing, "1"); err != nil {
			t.Fatalf("typing is off: %v", err)
		}
	}
	for range 2 {
		if err := limits.Allow(ctx, ratelimit.Send, "1"); err != nil {
			t.Fatal(err)
		}
	}
	if err := limits.Allow(ctx, ratelimit.Send, "2"); err != nil {
		t.Fatalf("another user: %v", err)
	}
	err := limits.Allow(ctx, ratelimit.Send, "1")
	var le *ratelimit.Error
	if !errors.As(err, &le) || messenger.ErrorCode(err) != messenger.ERATELIMITED {
		t.Fatalf("past the limit: %v (code %q), want a rate_limited *ratelimit.Error", err, messenger.ErrorCode(err))
	}
	if le.Seconds() != 2 || le.Action != ratelimit.Send {
		t.Errorf("retry after %d s for %s, want 2 s for send", le.Seconds(), le.Action)
	}
	if msg := messenger.ErrorMessage(err); !strings.Contains(msg, "2 s") {
		t.Errorf("message %q does not say how long to wait", msg)
	}
}

// TestParseRate reads the configuration's rates.
func TestParseRate(t *testing.T) {
	for in, want := range map[string]ratelimit.Rate{
		"30:60": {PerSecond: 30, Burst: 60}, "0.5:10": {PerSecond: 0.5, Burst: 10}, " 1:1 ": {PerSecond: 1, Burst: 1}, "off": {},
	} {
		got, err := ratelimit.ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "30", "30:", ":60", "0:60", "-1:60", "30:0", "30:-5", "NaN:5", "Inf:5", "x:y", "30:60:1", "30:2000000"} {
		if r, err := ratelimit.ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) = %v, want an error", in, r)
		}
	}
}
