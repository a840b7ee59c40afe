package realtime_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/realtime/redistest"
)

// Shortened presence timings: the refresh runs five times per TTL, so a
// live connection survives a loaded -race run, and a lapse is seen within
// about presTTL+presSweep. The tests run in parallel: they mostly wait.
const (
	presRefresh = 200 * time.Millisecond
	presTTL     = time.Second
	presSweep   = presTTL / 12
	presTyping  = 800 * time.Millisecond
)

var fastPresence = realtime.PresenceTimings{
	Refresh: presRefresh, TTL: presTTL, Sweep: presSweep, Typing: presTyping, Buffer: 64,
}

// presenceKind builds two engines with the given timings: one Memory twice,
// or two Redis engines (processes) sharing a key prefix private to t.
type presenceKind struct {
	name string
	new  func(t *testing.T, pt realtime.PresenceTimings) (a, b realtime.Engine)
}

func presenceKinds() []presenceKind {
	return []presenceKind{
		{
			name: "memory",
			new: func(t *testing.T, pt realtime.PresenceTimings) (realtime.Engine, realtime.Engine) {
				m := realtime.NewMemoryTimed(0, pt)
				t.Cleanup(func() { _ = m.Close() })
				return m, m
			},
		},
		{
			name: "redis",
			new: func(t *testing.T, pt realtime.PresenceTimings) (realtime.Engine, realtime.Engine) {
				a, b, _ := redisTimedPair(t, pt)
				return a, b
			},
		},
	}
}

// redisTimedPair returns two Redis engines sharing a private key prefix.
func redisTimedPair(t *testing.T, pt realtime.PresenceTimings) (a, b *realtime.Redis, url string) {
	t.Helper()
	url = redistest.URL(t)
	prefix := testPrefix(t, url)
	return newRedisTimed(t, url, prefix, pt), newRedisTimed(t, url, prefix, pt), url
}

func newRedisTimed(t *testing.T, url, prefix string, pt realtime.PresenceTimings) *realtime.Redis {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	r, err := realtime.NewRedisTimed(ctx, url, 0, quietLogger(t), prefix, pt)
	if err != nil {
		t.Fatalf("NewRedisTimed: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// TestPresenceContract runs the presence and typing suite against every
// engine; for Redis, a and b are two processes sharing one Redis.
func TestPresenceContract(t *testing.T) {
	t.Parallel()
	for _, k := range presenceKinds() {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			for _, c := range presenceCases() {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					c.fn(t, k)
				})
			}
		})
	}
}

// presenceCase is one test of the presence and typing suite.
type presenceCase struct {
	name string
	fn   func(t *testing.T, k presenceKind)
}

func presenceCases() []presenceCase {
	return []presenceCase{
		{"TwoTabs", testPresenceTwoTabs},
		{"OnlineMany", testPresenceOnlineMany},
		{"Lapse", testPresenceLapse},
		{"LapseThenDisconnect", testPresenceLapseThenDisconnect},
		{"LapseThenConnect", testPresenceLapseThenConnect},
		{"LiveNeverLapses", testPresenceLiveNeverLapses},
		{"ExpiredBackpressure", testPresenceExpiredBackpressure},
		{"Concurrency", testPresenceConcurrency},
		{"Validation", testPresenceValidation},
		{"Closed", testPresenceClosed},
		{"Typing", testTyping},
		{"TypingExpiry", testTypingExpiry},
	}
}

func connect(t *testing.T, e realtime.Engine, user int64, conn string, wantOnline bool) {
	t.Helper()
	got, err := e.Connect(ctxT(t), user, conn)
	if err != nil {
		t.Fatalf("Connect(%d, %s): %v", user, conn, err)
	}
	if got != wantOnline {
		t.Fatalf("Connect(%d, %s) becameOnline = %v, want %v", user, conn, got, wantOnline)
	}
}

func disconnect(t *testing.T, e realtime.Engine, user int64, conn string, wantOffline bool) {
	t.Helper()
	got, err := e.Disconnect(ctxT(t), user, conn)
	if err != nil {
		t.Fatalf("Disconnect(%d, %s): %v", user, conn, err)
	}
	if got != wantOffline {
		t.Fatalf("Disconnect(%d, %s) becameOffline = %v, want %v", user, conn, got, wantOffline)
	}
}

// expectOnline checks Online for want's users, through every engine.
func expectOnline(t *testing.T, want map[int64]bool, engines ...realtime.Engine) {
	t.Helper()
	ids := make([]int64, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	for _, e := range engines {
		got, err := e.Online(ctxT(t), ids)
		if err != nil {
			t.Fatalf("Online(%v): %v", ids, err)
		}
		if len(got) != len(want) {
			t.Fatalf("Online(%v) = %v, want %v", ids, got, want)
		}
		for id, w := range want {
			if got[id] != w {
				t.Fatalf("Online(%v) = %v, want %v", ids, got, want)
			}
		}
	}
}

// distinct returns the engines without repeats (Memory's a and b are one).
func distinct(engines ...realtime.Engine) []realtime.Engine {
	var out []realtime.Engine
	for _, e := range engines {
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

// expiredWatcher counts every user delivered on the PresenceExpired
// channels of some engines.
type expiredWatcher struct {
	mu     sync.Mutex
	counts map[int64]int
	order  []int64
	wake   chan struct{}
}

func watchExpired(t *testing.T, engines ...realtime.Engine) *expiredWatcher {
	w := &expiredWatcher{counts: make(map[int64]int), wake: make(chan struct{}, 1)}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, e := range distinct(engines...) {
		ch := e.PresenceExpired()
		wg.Go(func() {
			for {
				select {
				case id, ok := <-ch:
					if !ok {
						return
					}
					w.mu.Lock()
					w.counts[id]++
					w.order = append(w.order, id)
					w.mu.Unlock()
					select {
					case w.wake <- struct{}{}:
					default:
					}
				case <-stop:
					return
				}
			}
		})
	}
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
	return w
}

func (w *expiredWatcher) count(id int64) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.counts[id]
}

func (w *expiredWatcher) snapshot() map[int64]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[int64]int, len(w.counts))
	for id, n := range w.counts {
		out[id] = n
	}
	return out
}

// await waits until every one of ids has been delivered.
func (w *expiredWatcher) await(t *testing.T, within time.Duration, ids ...int64) {
	t.Helper()
	deadline := time.After(within)
	for {
		done := true
		for _, id := range ids {
			if w.count(id) == 0 {
				done = false
			}
		}
		if done {
			return
		}
		select {
		case <-w.wake:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("users %v not all delivered on PresenceExpired within %v; got %v", ids, within, w.snapshot())
		}
	}
}

// expectExactly checks the deliveries so far are exactly want.
func (w *expiredWatcher) expectExactly(t *testing.T, want map[int64]int) {
	t.Helper()
	got := w.snapshot()
	if len(got) != len(want) {
		t.Fatalf("PresenceExpired delivered %v, want %v", got, want)
	}
	for id, n := range want {
		if got[id] != n {
			t.Fatalf("PresenceExpired delivered %v, want %v", got, want)
		}
	}
}

// lapseWithin bounds the wait for a lapse: TTL, a sweep, and slack for a
// loaded -race run.
const lapseWithin = presTTL + presSweep + 4*time.Second

func testPresenceTwoTabs(t *testing.T, k presenceKind) {
	a, b := k.new(t, fastPresence)
	const u = 1
	expectOnline(t, map[int64]bool{u: false}, a, b)
	connect(t, a, u, "c1", true)
	expectOnline(t, map[int64]bool{u: true}, a, b)
	connect(t, b, u, "c2", false) // another tab, on the other process for Redis
	expectOnline(t, map[int64]bool{u: true}, a, b)
	disconnect(t, a, u, "c1", false)
	expectOnline(t, map[int64]bool{u: true}, a, b)
	disconnect(t, b, u, "c2", true)
	expectOnline(t, map[int64]bool{u: false}, a, b)
	disconnect(t, b, u, "c2", false) // twice
	disconnect(t, a, u, "never", false)

	// Both tabs on one process, closed in the order they opened.
	connect(t, a, 2, "x", true)
	connect(t, a, 2, "y", false)
	disconnect(t, a, 2, "x", false)
	disconnect(t, a, 2, "y", true)

	// A repeated Connect of the same stream is one connection.
	connect(t, b, 3, "z", true)
	connect(t, b, 3, "z", false)
	disconnect(t, a, 3, "z", true)

	// Back online after going offline.
	connect(t, b, u, "c3", true)
	expectOnline(t, map[int64]bool{u: true, 2: false, 3: false}, a, b)
	disconnect(t, b, u, "c3", true)
}

func testPresenceOnlineMany(t *testing.T, k presenceKind) {
	a, b := k.new(t, fastPresence)
	ctx := ctxT(t)
	const n = 1200 // more than one Redis script's worth
	ids := make([]int64, 0, n+2)
	for i := range int64(n) {
		ids = append(ids, i+100)
		if i%3 == 0 {
			connect(t, a, i+100, "c", true)
		}
	}
	ids = append(ids, 100, 101) // repeats
	for _, e := range []realtime.Engine{a, b} {
		got, err := e.Online(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("Online returned %d entries, want %d", len(got), n)
		}
		for i := range int64(n) {
			if got[i+100] != (i%3 == 0) {
				t.Fatalf("Online[%d] = %v", i+100, got[i+100])
			}
		}
		empty, err := e.Online(ctx, nil)
		if err != nil || len(empty) != 0 {
			t.Fatalf("Online(nil) = %v, %v", empty, err)
		}
	}
}

// testPresenceLapse: a's refresher stops as if its process hung; its users
// lapse and are delivered once, on exactly one engine, while users with a
// connection on the live process b are never reported.
func testPresenceLapse(t *testing.T, k presenceKind) {
	a, b := k.new(t, fastPresence)
	w := watchExpired(t, a, b)
	connect(t, a, 10, "dead", true)
	connect(t, a, 11, "dead-1", true)
	connect(t, a, 11, "dead-2", false)
	split := a != b // Memory has a single refresher
	if split {
		connect(t, b, 12, "live", true)
		connect(t, a, 13, "dead", true)
		connect(t, b, 13, "live", false)
	}
	realtime.StopPresenceRefresh(a)
	start := time.Now()
	w.await(t, lapseWithin, 10, 11)
	t.Logf("lapse delivered after %v (TTL %v)", time.Since(start), presTTL)
	time.Sleep(presTTL / 2) // six sweeps: long enough for a duplicate to show up
	w.expectExactly(t, map[int64]int{10: 1, 11: 1})
	expectOnline(t, map[int64]bool{10: false, 11: false}, a, b)
	if split {
		expectOnline(t, map[int64]bool{12: true, 13: true}, a, b)
	}
	// Already reported: a late Disconnect reports nothing more.
	disconnect(t, a, 10, "dead", false)
	disconnect(t, b, 11, "dead-2", false)
	// Coming back is a new online period.
	connect(t, b, 10, "again", true)
	disconnect(t, b, 10, "again", true)
	w.expectExactly(t, map[int64]int{10: 1, 11: 1})
}

// testPresenceLapseThenDisconnect: a lapsed user nobody swept yet is
// reported offline by the Disconnect that finds them, and only there.
func testPresenceLapseThenDisconnect(t *testing.T, k presenceKind) {
	a, b := k.new(t, fastPresence)
	// Nobody asked for PresenceExpired yet, so nobody sweeps.
	connect(t, a, 20, "c", true)
	realtime.StopPresenceRefresh(a)
	waitOffline(t, b, 20)
	disconnect(t, b, 20, "c", true)
	w := watchExpired(t, a, b)
	time.Sleep(presTTL / 2)
	w.expectExactly(t, map[int64]int{})
}

// testPresenceLapseThenConnect: a lapsed user who connects again before a
// sweep is online again, and the lapse is never reported.
func testPresenceLapseThenConnect(t *testing.T, k presenceKind) {
	a, b := k.new(t, fastPresence)
	connect(t, a, 21, "c1", true)
	realtime.StopPresenceRefresh(a)
	waitOffline(t, b, 21)
	connect(t, b, 21, "c2", true) // no live connection before
	w := watchExpired(t, a, b)
	// Memory's only refresher is stopped, so c2 lapses after a TTL too.
	time.Sleep(presTTL / 2)
	w.expectExactly(t, map[int64]int{})
	expectOnline(t, map[int64]bool{21: true}, a, b)
	disconnect(t, b, 21, "c2", true)
}

func waitOffline(t *testing.T, e realtime.Engine, user int64) {
	t.Helper()
	deadline := time.Now().Add(lapseWithin)
	for {
		got, err := e.Online(ctxT(t), []int64{user})
		if err != nil {
			t.Fatal(err)
		}
		if !got[user] {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("user %d still online after %v", user, lapseWithin)
		}
		time.Sleep(presSweep)
	}
}

// testPresenceLiveNeverLapses: the refresher keeps connections alive well
// past the TTL.
func testPresenceLiveNeverLapses(t *testing.T, k presenceKind) {
	a, b := k.new(t, fastPresence)
	w := watchExpired(t, a, b)
	connect(t, a, 30, "c", true)
	connect(t, b, 31, "c", true)
	time.Sleep(2 * presTTL)
	w.expectExactly(t, map[int64]int{})
	expectOnline(t, map[int64]bool{30: true, 31: true}, a, b)
	disconnect(t, a, 30, "c", true)
	disconnect(t, b, 31, "c", true)
}

// testPresenceExpiredBackpressure: nobody reads PresenceExpired for a while;
// the sweeper neither blocks nor loses users, it delivers them as room
// frees up.
func testPresenceExpiredBackpressure(t *testing.T, k presenceKind) {
	const buffer = 2
	pt := fastPresence
	pt.Buffer = buffer
	a, b := k.new(t, pt)
	users := []int64{40, 41, 42, 43, 44}
	for _, u := range users {
		connect(t, a, u, "c", true)
	}
	realtime.StopPresenceRefresh(a)
	ch := b.PresenceExpired() // the only engine that sweeps
	waitOffline(t, b, 44)
	deadline := time.Now().Add(lapseWithin)
	for len(ch) < buffer {
		if time.Now().After(deadline) {
			t.Fatalf("PresenceExpired holds %d users, want %d", len(ch), buffer)
		}
		time.Sleep(presSweep)
	}
	time.Sleep(3 * presSweep)
	if len(ch) != buffer {
		t.Fatalf("PresenceExpired holds %d users, want %d", len(ch), buffer)
	}
	// The engine is not stuck.
	connect(t, b, 45, "c", true)
	disconnect(t, b, 45, "c", true)

	got := map[int64]int{}
	for range users {
		select {
		case u := <-ch:
			got[u]++
		case <-time.After(lapseWithin):
			t.Fatalf("only %v delivered", got)
		}
	}
	for _, u := range users {
		if got[u] != 1 {
			t.Fatalf("delivered %v, want each of %v once", got, users)
		}
	}
	select {
	case u := <-ch:
		t.Fatalf("extra delivery of %d", u)
	case <-time.After(presTTL / 2):
	}
}

// testPresenceConcurrency churns the connections of a few users from both
// engines under -race: every online period opened is closed exactly once.
func testPresenceConcurrency(t *testing.T, k presenceKind) {
	a, b := k.new(t, fastPresence)
	ctx := ctxT(t)
	const (
		workers = 8
		rounds  = 50
		users   = 3
	)
	var online, offline [users]atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := range workers {
		e := []realtime.Engine{a, b}[w%2]
		wg.Go(func() {
			for i := range rounds {
				u := int64((w + i) % users)
				conn := fmt.Sprintf("w%d-%d", w, i)
				up, err := e.Connect(ctx, u, conn)
				if err != nil {
					errc <- err
					return
				}
				if up {
					online[u].Add(1)
				}
				down, err := e.Disconnect(ctx, u, conn)
				if err != nil {
					errc <- err
					return
				}
				if down {
					offline[u].Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	for u := range users {
		if on, off := online[u].Load(), offline[u].Load(); on != off || on == 0 {
			t.Fatalf("user %d: %d times online, %d times offline", u, on, off)
		}
	}
	expectOnline(t, map[int64]bool{0: false, 1: false, 2: false}, a, b)
}

func testPresenceValidation(t *testing.T, k presenceKind) {
	a, _ := k.new(t, fastPresence)
	ctx := ctxT(t)
	if _, err := a.Connect(ctx, 1, ""); !errors.Is(err, realtime.ErrInvalidConnID) {
		t.Fatalf("Connect with empty connID: %v", err)
	}
	if _, err := a.Disconnect(ctx, 1, ""); !errors.Is(err, realtime.ErrInvalidConnID) {
		t.Fatalf("Disconnect with empty connID: %v", err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Connect(cancelled, 1, "c"); err == nil {
		t.Fatal("Connect with a cancelled context succeeded")
	}
	if _, err := a.Disconnect(cancelled, 1, "c"); err == nil {
		t.Fatal("Disconnect with a cancelled context succeeded")
	}
	if _, err := a.Online(cancelled, []int64{1}); err == nil {
		t.Fatal("Online with a cancelled context succeeded")
	}
	if _, err := a.SetTyping(cancelled, 1, 1, true); err == nil {
		t.Fatal("SetTyping with a cancelled context succeeded")
	}
	if _, err := a.Typing(cancelled, 1); err == nil {
		t.Fatal("Typing with a cancelled context succeeded")
	}
	expectOnline(t, map[int64]bool{1: false}, a)
}

func testPresenceClosed(t *testing.T, k presenceKind) {
	a, b := k.new(t, fastPresence)
	ctx := ctxT(t)
	ch := b.PresenceExpired()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("unexpected delivery")
		}
	case <-time.After(waitFor):
		t.Fatal("Close did not close PresenceExpired")
	}
	if _, err := b.Connect(ctx, 1, "c"); err == nil {
		t.Fatal("Connect after Close succeeded")
	}
	if _, err := b.Disconnect(ctx, 1, "c"); err == nil {
		t.Fatal("Disconnect after Close succeeded")
	}
	if _, err := b.Online(ctx, []int64{1}); err == nil {
		t.Fatal("Online after Close succeeded")
	}
	if _, err := b.SetTyping(ctx, 1, 1, true); err == nil {
		t.Fatal("SetTyping after Close succeeded")
	}
	if _, err := b.Typing(ctx, 1); err == nil {
		t.Fatal("Typing after Close succeeded")
	}
	if a != b {
		connect(t, a, 1, "c", true)
		disconnect(t, a, 1, "c", true)
	}
}

func setTyping(t *testing.T, e realtime.Engine, conv, user int64, on, wantChanged bool) {
	t.Helper()
	got, err := e.SetTyping(ctxT(t), conv, user, on)
	if err != nil {
		t.Fatalf("SetTyping(%d, %d, %v): %v", conv, user, on, err)
	}
	if got != wantChanged {
		t.Fatalf("SetTyping(%d, %d, %v) changed = %v, want %v", conv, user, on, got, wantChanged)
	}
}

func expectTyping(t *testing.T, conv int64, want []int64, engines ...realtime.Engine) {
	t.Helper()
	for _, e := range engines {
		got, err := e.Typing(ctxT(t), conv)
		if err != nil {
			t.Fatalf("Typing(%d): %v", conv, err)
		}
		if got == nil || !slices.Equal(got, want) {
			t.Fatalf("Typing(%d) = %#v, want %v", conv, got, want)
		}
	}
}

func testTyping(t *testing.T, k presenceKind) {
	a, b := k.new(t, fastPresence)
	const conv, other = 7, 8
	expectTyping(t, conv, []int64{}, a, b)
	setTyping(t, a, conv, 3, true, true)
	setTyping(t, b, conv, 3, true, false) // still typing: no change
	setTyping(t, b, conv, 1, true, true)
	expectTyping(t, conv, []int64{1, 3}, a, b)
	expectTyping(t, other, []int64{}, a, b)
	setTyping(t, a, other, 3, true, true)
	setTyping(t, b, conv, 3, false, true)
	setTyping(t, a, conv, 3, false, false) // already stopped
	setTyping(t, a, conv, 9, false, false) // never typed
	expectTyping(t, conv, []int64{1}, a, b)
	expectTyping(t, other, []int64{3}, a, b)
	setTyping(t, a, conv, 1, false, true)
	expectTyping(t, conv, []int64{}, a, b)
}

func testTypingExpiry(t *testing.T, k presenceKind) {
	a, b := k.new(t, fastPresence)
	const conv = 5
	start := time.Now()
	setTyping(t, a, conv, 1, true, true)
	setTyping(t, a, conv, 2, true, true)
	time.Sleep(presTyping * 6 / 10)
	setTyping(t, b, conv, 2, true, false) // extends 2's TTL
	time.Sleep(presTyping*12/10 - time.Since(start))
	// 1 expired; 2 was extended and has about 0.4 TTL left.
	if time.Since(start) < presTyping*16/10 {
		expectTyping(t, conv, []int64{2}, a, b)
	}
	setTyping(t, a, conv, 1, false, false) // expired: stopping is no change
	setTyping(t, b, conv, 1, true, true)   // starting again is
	time.Sleep(presTyping + 100*time.Millisecond)
	expectTyping(t, conv, []int64{}, a, b)
	setTyping(t, a, conv, 2, false, false)
}

// TestRedisPresenceCrash: process A is closed without disconnecting its
// users (a crash as far as Redis can tell). Of the live processes B and C,
// exactly one reports each of A's users, once; users with a connection on
// B are never reported.
func TestRedisPresenceCrash(t *testing.T) {
	t.Parallel()
	a, b, url := redisTimedPair(t, fastPresence)
	c := newRedisTimed(t, url, prefixOf(t, a), fastPresence)
	admin := adminClient(t, url)
	w := watchExpired(t, b, c)
	connect(t, a, 50, "a", true)
	connect(t, a, 51, "a1", true)
	connect(t, a, 51, "a2", false)
	connect(t, a, 52, "a", true)
	connect(t, b, 52, "b", false) // also on a live process
	connect(t, b, 53, "b", true)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	w.await(t, lapseWithin, 50, 51)
	t.Logf("crashed process's users delivered after %v (TTL %v)", time.Since(start), presTTL)
	time.Sleep(presTTL / 2)
	w.expectExactly(t, map[int64]int{50: 1, 51: 1})
	expectOnline(t, map[int64]bool{50: false, 51: false, 52: true, 53: true}, b, c)

	ctx := ctxT(t)
	for _, u := range []int64{50, 51} {
		if err := admin.ZScore(ctx, b.PresenceUsersKey(), fmt.Sprint(u)).Err(); !errors.Is(err, redis.Nil) {
			t.Fatalf("user %d still indexed: %v", u, err)
		}
		if n, err := admin.Exists(ctx, b.PresenceKey(u)).Result(); err != nil || n != 0 {
			t.Fatalf("presence key of user %d left behind: %d, %v", u, n, err)
		}
	}
	disconnect(t, b, 52, "b", true)
	disconnect(t, c, 53, "b", true)
	if n, err := admin.ZCard(ctx, b.PresenceUsersKey()).Result(); err != nil || n != 0 {
		t.Fatalf("presence index holds %d users after everyone left: %v", n, err)
	}
}

// TestRedisPresenceRestored: a Redis that lost the presence entries (here:
// only our test keys are deleted) gets them back from the refreshers of the
// processes holding the connections.
func TestRedisPresenceRestored(t *testing.T) {
	t.Parallel()
	a, b, url := redisTimedPair(t, fastPresence)
	admin := adminClient(t, url)
	ctx := ctxT(t)
	connect(t, a, 60, "c1", true)
	connect(t, b, 60, "c2", false)
	connect(t, a, 61, "c", true)
	disconnect(t, a, 61, "c", true)
	if err := admin.Del(ctx, a.PresenceKey(60), a.PresenceUsersKey()).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(lapseWithin)
	for {
		n, err := admin.ZCard(ctx, a.PresenceKey(60)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("presence of user 60 restored to %d connections", n)
		}
		time.Sleep(presRefresh / 3)
	}
	expectOnline(t, map[int64]bool{60: true, 61: false}, a, b)
	if err := admin.ZScore(ctx, a.PresenceUsersKey(), "60").Err(); err != nil {
		t.Fatalf("user 60 not indexed again: %v", err)
	}
	disconnect(t, a, 60, "c1", false)
	disconnect(t, b, 60, "c2", true)
	// A disconnected connection is not restored.
	time.Sleep(2 * presRefresh)
	expectOnline(t, map[int64]bool{60: false}, a, b)
}

// TestRedisPresenceLayout pins the keys other tools may read.
func TestRedisPresenceLayout(t *testing.T) {
	t.Parallel()
	a, _, url := redisPair(t, 0) // production timings
	admin := adminClient(t, url)
	ctx := ctxT(t)
	p := prefixOf(t, a)
	if a.PresenceKey(42) != p+"presence:42" || a.PresenceUsersKey() != p+"presence:users" || a.TypingKey(9) != p+"typing:9" {
		t.Fatalf("keys %s %s %s", a.PresenceKey(42), a.PresenceUsersKey(), a.TypingKey(9))
	}
	before := time.Now().UnixMilli()
	connect(t, a, 42, "tab-1", true)
	setTyping(t, a, 9, 42, true, true)
	after := time.Now().UnixMilli()
	check := func(key, member string, ttl time.Duration) {
		t.Helper()
		score, err := admin.ZScore(ctx, key, member).Result()
		if err != nil {
			t.Fatalf("ZSCORE %s %s: %v", key, member, err)
		}
		// Redis's clock, which may differ from ours a little.
		if lo, hi := before+ttl.Milliseconds()-1000, after+ttl.Milliseconds()+1000; int64(score) < lo || int64(score) > hi {
			t.Fatalf("ZSCORE %s %s = %v, want within [%d, %d]", key, member, score, lo, hi)
		}
		if pttl, err := admin.PTTL(ctx, key).Result(); err != nil || pttl <= 0 || pttl > ttl {
			t.Fatalf("PTTL %s = %v, %v", key, pttl, err)
		}
	}
	check(a.PresenceKey(42), "tab-1", realtime.PresenceTTL)
	check(a.TypingKey(9), "42", realtime.TypingTTL)
	if _, err := admin.ZScore(ctx, a.PresenceUsersKey(), "42").Result(); err != nil {
		t.Fatalf("index: %v", err)
	}
	disconnect(t, a, 42, "tab-1", true)
}

// prefixOf recovers the key prefix of a test engine.
func prefixOf(t *testing.T, r *realtime.Redis) string {
	t.Helper()
	const suffix = "presence:users"
	k := r.PresenceUsersKey()
	if len(k) < len(suffix) || k[len(k)-len(suffix):] != suffix {
		t.Fatalf("unexpected index key %q", k)
	}
	return k[:len(k)-len(suffix)]
}

// TestRedisPresenceRefreshSliced: a refresh period of several seconds is worked a slice
// of the users a second, and every slice comes round: twenty users stay online through
// two lifetimes of their entries, and within one second only part of them was refreshed.
func TestRedisPresenceRefreshSliced(t *testing.T) {
	t.Parallel()
	url := redistest.URL(t)
	prefix := testPrefix(t, url)
	e := newRedisTimed(t, url, prefix, realtime.PresenceTimings{Refresh: 3 * time.Second, TTL: 4 * time.Second, Sweep: 200 * time.Millisecond, Typing: time.Second})
	admin := adminClient(t, url)
	ctx := ctxT(t)
	var ids []int64
	for i := range int64(20) {
		id := 7000 + i
		ids = append(ids, id)
		if _, err := e.Connect(ctx, id, fmt.Sprintf("c%d", id)); err != nil {
			t.Fatal(err)
		}
	}
	scores := func() map[int64]float64 {
		out := map[int64]float64{}
		for _, id := range ids {
			s, err := admin.ZScore(ctx, e.PresenceKey(id), fmt.Sprintf("c%d", id)).Result()
			if err != nil {
				t.Fatalf("user %d's entry: %v", id, err)
			}
			out[id] = s
		}
		return out
	}
	before := scores()
	time.Sleep(1500 * time.Millisecond)
	moved := 0
	for id, s := range scores() {
		if s > before[id] {
			moved++
		}
	}
	if moved == 0 || moved == len(ids) {
		t.Errorf("%d of %d entries refreshed within 1.5 s of a 3 s period cut in three; want some, not all", moved, len(ids))
	}
	time.Sleep(7 * time.Second) // past the 4 s lifetime, twice over from the connect
	online, err := e.Online(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if !online[id] {
			t.Errorf("user %d lapsed although connected: their slice was not refreshed", id)
		}
	}
}
