package realtime_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/realtime/redistest"
)

// waitFor bounds every wait in the suite: generous for a loaded -race run,
// yet a hang fails quickly.
const waitFor = 5 * time.Second

// engineKind builds a publishing and a subscribing engine, tuned as a test asks. For
// Redis they are two instances, i.e. two processes as far as the engines can tell.
//
// isolated builds an engine that shares neither channels nor history with
// them: another epoch (Memory: another process; Redis: another key prefix,
// as another Redis would be).
type engineKind struct {
	name     string
	tuned    func(t *testing.T, queueSize int, tu realtime.Tuning) (pub, sub realtime.Engine)
	isolated func(t *testing.T) realtime.Engine
}

// new builds the kind's engines with the production values.
func (k engineKind) new(t *testing.T, queueSize int) (pub, sub realtime.Engine) {
	return k.tuned(t, queueSize, realtime.Tuning{})
}

func engineKinds() []engineKind {
	newMemory := func(t *testing.T, queueSize int, tu realtime.Tuning) *realtime.Memory {
		m := realtime.NewMemoryTuned(queueSize, tu)
		t.Cleanup(func() { _ = m.Close() })
		return m
	}
	return []engineKind{
		{
			name: "memory",
			tuned: func(t *testing.T, queueSize int, tu realtime.Tuning) (realtime.Engine, realtime.Engine) {
				m := newMemory(t, queueSize, tu)
				return m, m
			},
			isolated: func(t *testing.T) realtime.Engine { return newMemory(t, 0, realtime.Tuning{}) },
		},
		{
			name: "redis",
			tuned: func(t *testing.T, queueSize int, tu realtime.Tuning) (realtime.Engine, realtime.Engine) {
				url := redistest.URL(t)
				prefix := testPrefix(t, url)
				return newRedisTuned(t, url, queueSize, prefix, tu), newRedisTuned(t, url, queueSize, prefix, tu)
			},
			isolated: func(t *testing.T) realtime.Engine {
				url := redistest.URL(t)
				return newRedisPrefixed(t, url, 0, testPrefix(t, url))
			},
		},
	}
}

func newRedis(t *testing.T, url string, queueSize int) *realtime.Redis {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	r, err := realtime.NewRedis(ctx, url, queueSize, quietLogger(t))
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// newRedisPrefixed is newRedis with channels and keys under prefix.
func newRedisPrefixed(t *testing.T, url string, queueSize int, prefix string) *realtime.Redis {
	t.Helper()
	return newRedisTuned(t, url, queueSize, prefix, realtime.Tuning{})
}

// newRedisTuned is newRedisPrefixed tuned by tu.
func newRedisTuned(t *testing.T, url string, queueSize int, prefix string, tu realtime.Tuning) *realtime.Redis {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	r, err := realtime.NewRedisTuned(ctx, url, queueSize, quietLogger(t), prefix, tu)
	if err != nil {
		t.Fatalf("NewRedisTuned: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// testPrefix returns a key prefix private to t, whose keys (epoch, history
// streams) are deleted when t ends: the Redis may be shared, so tests never
// flush it, they only delete their own keys.
func testPrefix(t *testing.T, url string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "rt-test-" + hex.EncodeToString(b[:]) + ":"
	admin := adminClient(t, url) // closed after the cleanup below runs
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		iter := admin.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("scanning test keys: %v", err)
			return
		}
		if len(keys) > 0 {
			if err := admin.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("deleting test keys: %v", err)
			}
		}
	})
	return prefix
}

func quietLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// contractCase is one test of the behavioural suite every engine passes.
type contractCase struct {
	name string
	fn   func(t *testing.T, k engineKind)
}

// TestContract runs the same behavioural suite against every engine.
func TestContract(t *testing.T) {
	for _, k := range engineKinds() {
		t.Run(k.name, func(t *testing.T) {
			for _, c := range contractCases() {
				t.Run(c.name, func(t *testing.T) { c.fn(t, k) })
			}
		})
	}
}

func contractCases() []contractCase {
	return []contractCase{
		{"DeliversToSubscribersOfChannelOnly", testDeliversToSubscribersOnly},
		{"AddRemove", testAddRemove},
		{"SharedChannelRefcount", testSharedChannelRefcount},
		{"SubscriptionClose", testSubscriptionClose},
		{"EngineClose", testEngineClose},
		{"Validation", testValidation},
		{"Ordering", testOrdering},
		{"SlowSubscriberIsolation", testSlowSubscriberIsolation},
		{"OverflowSemantics", testOverflowSemantics},
		{"Concurrency", testConcurrency},
		{"HistoryResume", testHistoryResume},
		{"HistoryGone", testHistoryGone},
		{"HistoryTrimmed", testHistoryTrimmed},
		{"HistoryExpired", testHistoryExpired},
		{"HistoryHead", testHistoryHead},
		{"HistoryDroppable", testHistoryDroppable},
		{"HistoryConcurrentPublishers", testHistoryConcurrentPublishers},
		{"PublishMany", testPublishMany},
		{"PublishManyLarge", testPublishManyLarge},
		{"PublishAll", testPublishAll},
	}
}

// uniq returns channel names private to one test, because a Redis given by
// TEST_REDIS_URL is shared with other test runs.
func uniq(t *testing.T) func(name string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "test-" + hex.EncodeToString(b[:]) + ":"
	return func(name string) string { return prefix + name }
}

func ev(typ string, n int) realtime.Event {
	return realtime.Event{Type: typ, ID: strconv.Itoa(n), Data: json.RawMessage(`{"n":` + strconv.Itoa(n) + `}`)}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func subscribe(t *testing.T, e realtime.Engine, channels ...string) *realtime.Subscription {
	t.Helper()
	s, err := e.Subscribe(ctxT(t), channels...)
	if err != nil {
		t.Fatalf("Subscribe(%v): %v", channels, err)
	}
	t.Cleanup(s.Close)
	return s
}

func publish(t *testing.T, e realtime.Engine, channel string, ev realtime.Event) {
	t.Helper()
	if err := e.Publish(ctxT(t), channel, ev); err != nil {
		t.Fatalf("Publish(%s): %v", channel, err)
	}
}

func recv(t *testing.T, s *realtime.Subscription) realtime.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	d, err := s.Next(ctx)
	switch {
	case errors.Is(err, realtime.ErrClosed):
		t.Fatal("subscription closed while waiting for a delivery")
	case err != nil:
		t.Fatal("timed out waiting for a delivery")
	}
	return d
}

// expect receives one delivery and checks it is ev on channel.
func expect(t *testing.T, s *realtime.Subscription, channel string, want realtime.Event) {
	t.Helper()
	d := recv(t, s)
	if d.Channel != channel || d.Event.Type != want.Type || d.Event.ID != want.ID ||
		string(d.Event.Data) != string(want.Data) || d.Event.Droppable != want.Droppable {
		t.Fatalf("got %s %+v (data %s), want %s %+v (data %s)",
			d.Channel, d.Event, d.Event.Data, channel, want, want.Data)
	}
}

// expectNext proves that nothing else was queued before a marker: it
// publishes a marker on channel (which s must be subscribed to) and requires
// it to be the next delivery. Publish order is delivery order, also across
// channels of one publishing engine, so no sleep is needed.
func expectNext(t *testing.T, pub realtime.Engine, s *realtime.Subscription, channel string) {
	t.Helper()
	marker := realtime.Event{Type: "marker", ID: fmt.Sprint(mrand.Int64())}
	if realtime.KeepsHistory(channel) {
		// The engine assigns the ID there, so the marker is told by its data.
		marker = realtime.Event{Type: "marker", Data: json.RawMessage(fmt.Sprint(mrand.Int64()))}
		publish(t, pub, channel, marker)
		d := recv(t, s)
		if d.Channel != channel || d.Event.Type != marker.Type || string(d.Event.Data) != string(marker.Data) || d.Event.ID == "" {
			t.Fatalf("got %s %+v (data %s), want marker %s on %s", d.Channel, d.Event, d.Event.Data, marker.Data, channel)
		}
		return
	}
	publish(t, pub, channel, marker)
	expect(t, s, channel, marker)
}

// settle waits until every event published by pub before the call has been
// fanned out by sub, using a probe subscription on a channel of its own.
func settle(t *testing.T, pub realtime.Engine, probe *realtime.Subscription, probeChannel string) {
	t.Helper()
	expectNext(t, pub, probe, probeChannel)
}

func testDeliversToSubscribersOnly(t *testing.T, k engineKind) {
	pub, sub := k.new(t, 0)
	ch := uniq(t)
	a := subscribe(t, sub, ch("conversation:1"))
	b := subscribe(t, sub, ch("conversation:2"))
	both := subscribe(t, sub, ch("conversation:1"), ch("conversation:2"))

	e1 := ev("message.new", 1)
	e2 := realtime.Event{Type: "message.typing", Data: json.RawMessage(`{"user":7}`), Droppable: true}
	e3 := realtime.Event{Type: "presence"} // no ID, no data
	publish(t, pub, ch("conversation:1"), e1)
	publish(t, pub, ch("conversation:2"), e2)
	publish(t, pub, ch("nobody"), ev("lost", 0))
	publish(t, pub, ch("conversation:1"), e3)

	expect(t, a, ch("conversation:1"), e1)
	expect(t, a, ch("conversation:1"), e3)
	expect(t, b, ch("conversation:2"), e2)
	expect(t, both, ch("conversation:1"), e1)
	expect(t, both, ch("conversation:2"), e2)
	expect(t, both, ch("conversation:1"), e3)
	// Nothing else was queued: the next deliveries are these markers.
	m1, m2 := realtime.Event{Type: "marker", ID: "m1"}, realtime.Event{Type: "marker", ID: "m2"}
	publish(t, pub, ch("conversation:1"), m1)
	publish(t, pub, ch("conversation:2"), m2)
	expect(t, a, ch("conversation:1"), m1)
	expect(t, b, ch("conversation:2"), m2)
	expect(t, both, ch("conversation:1"), m1)
	expect(t, both, ch("conversation:2"), m2)
}

func testAddRemove(t *testing.T, k engineKind) {
	pub, sub := k.new(t, 0)
	ch := uniq(t)
	ctx := ctxT(t)
	s := subscribe(t, sub, ch("user:7"))

	if err := s.Add(ctx, ch("conversation:1"), ch("conversation:1"), ch("user:7")); err != nil {
		t.Fatalf("Add: %v", err)
	}
	// Added channels are live as soon as Add returns; duplicates count once.
	publish(t, pub, ch("conversation:1"), ev("message.new", 1))
	expect(t, s, ch("conversation:1"), ev("message.new", 1))
	expectNext(t, pub, s, ch("user:7"))

	if err := s.Remove(ctx, ch("conversation:1"), ch("never-subscribed")); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	publish(t, pub, ch("conversation:1"), ev("message.new", 2))
	expectNext(t, pub, s, ch("user:7"))

	// Re-adding after a removal works, also when it unsubscribed upstream.
	if err := s.Add(ctx, ch("conversation:1")); err != nil {
		t.Fatalf("re-Add: %v", err)
	}
	publish(t, pub, ch("conversation:1"), ev("message.new", 3))
	expect(t, s, ch("conversation:1"), ev("message.new", 3))

	// A subscription may start with no channel at all.
	empty := subscribe(t, sub)
	if err := empty.Add(ctx, ch("zone:3")); err != nil {
		t.Fatalf("Add to empty subscription: %v", err)
	}
	publish(t, pub, ch("zone:3"), ev("conversation.updated", 4))
	expect(t, empty, ch("zone:3"), ev("conversation.updated", 4))
}

// testSharedChannelRefcount checks that one subscription leaving a channel
// does not unsubscribe the others (Redis: UNSUBSCRIBE only at refcount 0).
func testSharedChannelRefcount(t *testing.T, k engineKind) {
	pub, sub := k.new(t, 0)
	ch := uniq(t)
	ctx := ctxT(t)
	c := ch("conversation:9")
	a := subscribe(t, sub, c)
	b := subscribe(t, sub, c)
	if err := a.Remove(ctx, c); err != nil {
		t.Fatal(err)
	}
	publish(t, pub, c, ev("message.new", 1))
	expect(t, b, c, ev("message.new", 1))
	b.Close()
	d := subscribe(t, sub, c)
	publish(t, pub, c, ev("message.new", 2))
	expect(t, d, c, ev("message.new", 2))
	if err := a.Add(ctx, c); err != nil {
		t.Fatal(err)
	}
	publish(t, pub, c, ev("message.new", 3))
	expect(t, a, c, ev("message.new", 3))
	expect(t, d, c, ev("message.new", 3))
}

func testSubscriptionClose(t *testing.T, k engineKind) {
	pub, sub := k.new(t, 0)
	ch := uniq(t)
	ctx := ctxT(t)
	s := subscribe(t, sub, ch("c"))
	other := subscribe(t, sub, ch("c"))
	publish(t, pub, ch("c"), ev("message.new", 1))
	expect(t, other, ch("c"), ev("message.new", 1))

	s.Close()
	s.Close() // idempotent
	// Already queued events may still be taken, then nothing is left.
	if _, ok := s.Take(nil); !ok {
		t.Fatal("Take after Close: not ok with an event still queued")
	}
	publish(t, pub, ch("c"), ev("message.new", 2))
	expect(t, other, ch("c"), ev("message.new", 2))
	if ds, ok := s.Take(nil); ok || len(ds) > 0 {
		t.Fatalf("closed subscription delivered %v", ds)
	}
	if err := s.Add(ctx, ch("d")); err == nil {
		t.Fatal("Add on a closed subscription succeeded")
	}
	if err := s.Remove(ctx, ch("c")); err != nil {
		t.Fatalf("Remove on a closed subscription: %v", err)
	}
}

func testEngineClose(t *testing.T, k engineKind) {
	pub, sub := k.new(t, 0)
	ch := uniq(t)
	ctx := ctxT(t)
	withChannels := subscribe(t, sub, ch("a"), ch("b"))
	noChannels := subscribe(t, sub)
	if err := sub.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, s := range []*realtime.Subscription{withChannels, noChannels} {
		select {
		case _, open := <-s.Ready():
			if open {
				t.Fatal("Ready signalled a delivery instead of being closed")
			}
		case <-time.After(waitFor):
			t.Fatal("engine Close did not close the subscription's Ready")
		}
		if ds, ok := s.Take(nil); ok || len(ds) > 0 {
			t.Fatalf("unexpected delivery %v", ds)
		}
		s.Close() // still safe
	}
	if _, err := sub.Subscribe(ctx, ch("a")); err == nil {
		t.Fatal("Subscribe after Close succeeded")
	}
	if err := sub.Publish(ctx, ch("a"), ev("x", 1)); err == nil {
		t.Fatal("Publish after Close succeeded")
	}
	if err := sub.Ping(ctx); err == nil {
		t.Fatal("Ping after Close succeeded")
	}
	if pub != sub {
		if err := pub.Ping(ctx); err != nil {
			t.Fatalf("other process affected by Close: %v", err)
		}
	}
}

func testValidation(t *testing.T, k engineKind) {
	pub, sub := k.new(t, 0)
	ctx := ctxT(t)
	if err := pub.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := pub.Publish(ctx, "", ev("x", 1)); err == nil {
		t.Fatal("Publish to empty channel succeeded")
	}
	if err := pub.Publish(ctx, "c", realtime.Event{Type: "x", Data: json.RawMessage(`{bad`)}); err == nil {
		t.Fatal("Publish of invalid JSON succeeded")
	}
	if _, err := sub.Subscribe(ctx, "ok", ""); err == nil {
		t.Fatal("Subscribe to empty channel succeeded")
	}
	s := subscribe(t, sub)
	if err := s.Add(ctx, ""); err == nil {
		t.Fatal("Add of empty channel succeeded")
	}
	// The default queue holds DefaultQueueSize events; one more overflows it.
	ch := uniq(t)
	c := ch("queue")
	if err := s.Add(ctx, c); err != nil {
		t.Fatal(err)
	}
	probe := subscribe(t, sub, ch("probe"))
	for i := range realtime.DefaultQueueSize {
		publish(t, pub, c, ev("message.new", i))
	}
	settle(t, pub, probe, ch("probe"))
	if got := s.Len(); got != realtime.DefaultQueueSize {
		t.Fatalf("default queue holds %d events, want %d", got, realtime.DefaultQueueSize)
	}
	select {
	case <-s.Overflowed():
		t.Fatal("a full default queue overflowed before one more event")
	default:
	}
	publish(t, pub, c, ev("message.new", realtime.DefaultQueueSize))
	select {
	case <-s.Overflowed():
	case <-time.After(waitFor):
		t.Fatal("one more event than the default queue holds did not overflow it")
	}
}

func testOrdering(t *testing.T, k engineKind) {
	const n = 1000
	// The queue holds everything: this test is about order, not overflow.
	pub, sub := k.new(t, 2*n)
	ch := uniq(t)
	s := subscribe(t, sub, ch("conversation:1"))
	done := make(chan error, 1)
	go func() {
		for i := range n {
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			d, err := s.Next(ctx)
			cancel()
			if err != nil {
				done <- fmt.Errorf("after %d events: %w", i, err)
				return
			}
			if d.Event.ID != strconv.Itoa(i) {
				done <- fmt.Errorf("event %d: got id %q", i, d.Event.ID)
				return
			}
		}
		done <- nil
	}()
	for i := range n {
		publish(t, pub, ch("conversation:1"), ev("message.new", i))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	expectNext(t, pub, s, ch("conversation:1")) // each event exactly once
}

func testSlowSubscriberIsolation(t *testing.T, k engineKind) {
	const n, queue = 10_000, 256
	pub, sub := k.new(t, queue)
	ch := uniq(t)
	c := ch("conversation:1")
	stalled := subscribe(t, sub, c) // never read
	live := subscribe(t, sub, c)

	var got atomic.Int64
	errc := make(chan error, 1)
	go func() {
		for i := range n {
			select {
			case <-live.Overflowed():
				errc <- fmt.Errorf("live subscriber overflowed after %d events", i)
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			d, err := live.Next(ctx)
			cancel()
			if err != nil {
				errc <- fmt.Errorf("live: after %d events: %w", i, err)
				return
			}
			if d.Event.ID != strconv.Itoa(i) {
				errc <- fmt.Errorf("live: event %d has id %q", i, d.Event.ID)
				return
			}
			got.Add(1)
		}
		errc <- nil
	}()

	start := time.Now()
	for i := range n {
		publish(t, pub, c, ev("message.new", i))
		// Let the live reader catch up now and then so only the stalled
		// subscriber can overflow; a Publish blocked on the stalled one
		// would hang right here.
		if i%(queue/2) == queue/2-1 {
			deadline := time.Now().Add(waitFor)
			for got.Load() < int64(i+1) {
				select {
				case err := <-errc:
					t.Fatal(err)
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("live subscriber stuck at %d of %d", got.Load(), i+1)
				}
				time.Sleep(50 * time.Microsecond)
			}
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if elapsed > 15*time.Second {
		t.Fatalf("10k events took %v", elapsed)
	}
	t.Logf("%d events to the live subscriber in %v", n, elapsed)
	select {
	case <-stalled.Overflowed():
	case <-time.After(waitFor):
		t.Fatal("stalled subscriber did not overflow")
	}
	if l := stalled.Len(); l != queue {
		t.Fatalf("stalled queue holds %d events, want %d", l, queue)
	}
}

func testOverflowSemantics(t *testing.T, k engineKind) {
	const queue = 4
	pub, sub := k.new(t, queue)
	ch := uniq(t)
	c := ch("conversation:1")
	s := subscribe(t, sub, c)
	probe := subscribe(t, sub, ch("probe"))

	for i := range queue {
		publish(t, pub, c, ev("message.new", i))
	}
	for i := range 3 {
		typing := realtime.Event{Type: "message.typing", Data: json.RawMessage(`{"user":` + strconv.Itoa(i) + `}`), Droppable: true}
		publish(t, pub, c, typing)
	}
	settle(t, pub, probe, ch("probe"))
	if got := s.Dropped(); got != 3 {
		t.Fatalf("Dropped() = %d, want 3", got)
	}
	select {
	case <-s.Overflowed():
		t.Fatal("droppable events overflowed the subscription")
	default:
	}

	publish(t, pub, c, ev("message.new", queue))
	select {
	case <-s.Overflowed():
	case <-time.After(waitFor):
		t.Fatal("non-droppable event on a full queue did not overflow")
	}
	// What was queued before the overflow is intact and in order...
	for i := range queue {
		expect(t, s, c, ev("message.new", i))
	}
	// ...and nothing is delivered afterwards, droppable or not.
	publish(t, pub, c, ev("message.new", queue+1))
	publish(t, pub, c, realtime.Event{Type: "presence", Droppable: true})
	settle(t, pub, probe, ch("probe"))
	if l := s.Len(); l != 0 {
		t.Fatalf("overflowed subscription delivered %d events", l)
	}
	s.Close()
	if ds, ok := s.Take(nil); ok || len(ds) > 0 {
		t.Fatalf("Take after Close: %v, %v", ds, ok)
	}
}

// testConcurrency churns subscriptions while publishers run, under -race. A
// steady subscriber must still see every event exactly once and in
// per-publisher order, which also catches an UNSUBSCRIBE issued while a
// channel still has local subscribers.
func testConcurrency(t *testing.T, k engineKind) {
	const (
		publishers   = 4
		perPublisher = 200
		churners     = 6
		channels     = 4
	)
	pub, sub := k.new(t, 4096)
	ch := uniq(t)
	names := make([]string, channels)
	for i := range names {
		names[i] = ch("c" + strconv.Itoa(i))
	}
	steady := subscribe(t, sub, names...)
	ctx := ctxT(t)

	stop := make(chan struct{})
	var churn sync.WaitGroup
	churnErr := make(chan error, churners)
	for w := range churners {
		churn.Go(func() {
			r := mrand.New(mrand.NewPCG(uint64(w), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				s, err := sub.Subscribe(ctx, names[r.IntN(channels)])
				if err != nil {
					churnErr <- err
					return
				}
				for range 3 {
					if err := s.Add(ctx, names[r.IntN(channels)]); err != nil {
						churnErr <- err
						s.Close()
						return
					}
					_ = s.Remove(ctx, names[r.IntN(channels)])
				}
				// Drain a little, then leave.
				s.Take(nil)
				s.Close()
			}
		})
	}

	var pubs sync.WaitGroup
	pubErr := make(chan error, publishers)
	for p := range publishers {
		pubs.Go(func() {
			r := mrand.New(mrand.NewPCG(uint64(p), 2))
			for i := range perPublisher {
				e := realtime.Event{Type: "message.new", ID: fmt.Sprintf("%d/%d", p, i)}
				if err := pub.Publish(ctx, names[r.IntN(channels)], e); err != nil {
					pubErr <- err
					return
				}
			}
		})
	}

	last := make([]int, publishers)
	for i := range last {
		last[i] = -1
	}
	for range publishers * perPublisher {
		d := recv(t, steady)
		var p, i int
		if _, err := fmt.Sscanf(d.Event.ID, "%d/%d", &p, &i); err != nil {
			t.Fatalf("bad id %q", d.Event.ID)
		}
		if i != last[p]+1 {
			t.Fatalf("publisher %d: event %d after %d", p, i, last[p])
		}
		last[p] = i
	}
	pubs.Wait()
	close(stop)
	churn.Wait()
	close(pubErr)
	close(churnErr)
	for err := range pubErr {
		t.Fatal(err)
	}
	for err := range churnErr {
		t.Fatal(err)
	}
	for p, l := range last {
		if l != perPublisher-1 {
			t.Fatalf("publisher %d: last event %d", p, l)
		}
	}
	expectNext(t, pub, steady, names[0])
}
