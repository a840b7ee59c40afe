package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dreamseed/messenger/realtime/redistest"
)

// TestRedisRestart: two processes share a Redis that restarts twenty times while four
// members of eight groups keep sending through both. After each restart every member's
// stream (with the catch-up its resyncs ask for) has every message committed so far
// within seconds, none twice.
//
// Process A reaches Redis a moment later than B after each restart, as a process whose
// client keeps answering its last dial error does: B's subscriber has reconnected and its
// streams have resynced while A still fails to publish what its senders commit. Those
// messages reach B's members only because A publishes resync for them once it can.
func TestRedisRestart(t *testing.T) {
	const (
		restarts = 20
		groups   = 8
		down     = 300 * time.Millisecond // nothing listens on Redis's port
		lag      = 700 * time.Millisecond // A still cannot reach it
	)
	rs := redistest.Start(t) // private: restarting the shared Redis would break other tests
	proxy := newCutProxy(t, strings.TrimSuffix(strings.TrimPrefix(rs.URL, "redis://"), "/0"))
	// A's client does not retry a failed command: it fails at once, as go-redis does when
	// its pool answers its last dial error.
	// Each member sends about 20 messages a second, near the default send limit: the
	// limit is not what this test is about.
	const rate = "MESSENGER_RATE_SEND=200:400"
	a := startServer(t, "REDIS_URL="+strings.Replace(proxy.URL, "http://localhost:", "redis://127.0.0.1:", 1)+"/0?max_retries=-1", rate)
	b := startServerOn(t, a, "REDIS_URL="+rs.URL, rate)
	org := "org-restart-" + deliveryNonce()
	users := make([]testUser, 4)
	for i := range users {
		users[i] = newUser(t, fmt.Sprintf("restart-u%d", i+1), fmt.Sprintf("회원 %d", i+1), org, []string{"teacher", "student"}[min(i, 1)])
		a.api(users[i]).me()
	}
	// Sends to one conversation are published one after the other (in seq order); several
	// conversations make each process publish several at once, as a busy one does.
	convs := make([]int64, groups)
	for g := range convs {
		convs[g] = a.api(users[0]).createConversation("group", fmt.Sprintf("재시작 반 %d", g+1), users[1].Sub, users[2].Sub, users[3].Sub).ID
	}

	// Members 1 and 3 on process A, 2 and 4 on B; each sends through the process it is on.
	procs := []*server{a, b, a, b}
	clients := make([]*sseClient, len(users))
	for i, u := range users {
		clients[i] = procs[i].newSSEClient(u)
		clients[i].keepEvents = false
		for _, id := range convs {
			clients[i].Track(id)
		}
	}
	startClients(t, clients, 10*time.Second)

	// Steady sends until the restarts are over: group g gets a message from member g%4
	// every 100 ms. committed[g] is the highest seq the server has answered in group g:
	// every member must end up with 1..committed[g].
	committed := make([]atomic.Int64, groups)
	var stopping atomic.Bool
	var wg sync.WaitGroup
	var sendErrs []string
	var errMu sync.Mutex
	for g, conv := range convs {
		api := procs[g%len(users)].api(users[g%len(users)])
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stopping.Load(); i++ {
				_, m, err := api.send(context.Background(), conv, fmt.Sprintf("%d번 (%s)", i+1, api.user.Sub), uuid.NewString())
				if err != nil {
					errMu.Lock()
					sendErrs = append(sendErrs, err.Error())
					errMu.Unlock()
				} else {
					committed[g].Store(m.Seq) // one sender per group: seqs answered in order
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	stop := func() {
		stopping.Store(true)
		wg.Wait()
	}
	defer stop()

	waitAll := func(round int) int64 {
		t.Helper()
		start := time.Now()
		var total int64
		for g, conv := range convs {
			n := committed[g].Load()
			total += n
			for i, c := range clients {
				if !c.WaitSeqs(conv, n, 10*time.Second) {
					snap := c.Conv(conv)
					var missing []int64
					for seq := int64(1); seq <= n; seq++ {
						if _, ok := snap.Messages[seq]; !ok {
							missing = append(missing, seq)
						}
					}
					t.Fatalf("restart %d: member %d (on %s) lacks %d of seqs 1..%d of group %d after %s: %v",
						round, i+1, []string{"A", "B"}[i%2], len(missing), n, g+1, time.Since(start).Round(time.Millisecond), firstN(missing, 20))
				}
			}
		}
		return total
	}

	var worst time.Duration
	for round := 1; round <= restarts; round++ {
		proxy.setDown(true)
		was := rs.Restart(down)
		time.Sleep(lag)
		proxy.setDown(false)
		time.Sleep(200 * time.Millisecond) // sends on their way when A got Redis back
		start := time.Now()
		total := waitAll(round)
		took := time.Since(start)
		worst = max(worst, took)
		t.Logf("restart %d: Redis down %s (for A %s more); every member has all %d messages %s later",
			round, was.Round(time.Millisecond), lag, total, took.Round(time.Millisecond))
	}
	stop()
	total := waitAll(restarts + 1)
	for g, conv := range convs {
		if last, n := a.api(users[0]).conversation(conv).LastSeq, committed[g].Load(); last != n {
			t.Errorf("group %d: last_seq %d, but the highest seq answered to its sender is %d", g+1, last, n)
		}
	}
	errMu.Lock()
	if len(sendErrs) > 0 {
		t.Errorf("%d sends failed while Redis restarted (they should not depend on it): %v", len(sendErrs), firstN(sendErrs, 3))
	}
	errMu.Unlock()

	time.Sleep(300 * time.Millisecond) // anything sent twice would be in by now
	for i, c := range clients {
		dups, fetched, outOfOrder := 0, 0, 0
		for g, conv := range convs {
			s := c.Conv(conv)
			if len(s.StreamDups) > 0 {
				dups += len(s.StreamDups)
				t.Errorf("member %d: the stream carried %d messages of group %d more than once: %v", i+1, len(s.StreamDups), g+1, firstN(s.StreamDups, 20))
			}
			fetched += s.Fetched
			outOfOrder += len(s.OutOfOrder)
		}
		if p := c.Problems(); len(p) > 0 {
			t.Errorf("member %d: protocol problems: %v", i+1, firstN(p, 5))
		}
		_, resyncs, _ := c.Stats()
		t.Logf("member %d: %d messages, %d by catch-up, %d resyncs, %d first arrivals out of order",
			i+1, total, fetched, resyncs, outOfOrder)
	}
	logs := a.Logs() + b.Logs()
	t.Logf("worst time to complete after a restart: %s; publishes failed: %d; resyncs published for them: %d",
		worst.Round(time.Millisecond), strings.Count(logs, `"msg":"publish events"`), strings.Count(logs, "published resync for events lost"))
}
