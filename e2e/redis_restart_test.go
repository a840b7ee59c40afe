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
// members of a group keep sending through both. After each restart every member's stream
// (with the catch-up its resyncs ask for) has every message committed so far within
// seconds, none twice: a message whose publish failed while Redis was coming back is
// repaired by a resync, not lost until the next restart.
func TestRedisRestart(t *testing.T) {
	const restarts = 20
	rs := redistest.Start(t) // private: restarting the shared Redis would break other tests
	// Small client pools: after as many failed dials as the pool holds, go-redis answers
	// its last dial error without dialling, and tries again only once a second, so the
	// processes keep failing to publish for a while after their subscribers have
	// reconnected and resynced. With the default pools (10 per core) a restart takes a
	// few seconds of steady traffic to get there; here one second does.
	redisURL := rs.URL + "?pool_size=4&pipeline_pool_size=4"
	a := startServer(t, "REDIS_URL="+redisURL)
	b := startServerOn(t, a, "REDIS_URL="+redisURL)
	org := "org-restart-" + deliveryNonce()
	users := make([]testUser, 4)
	for i := range users {
		users[i] = newUser(t, fmt.Sprintf("restart-u%d", i+1), fmt.Sprintf("회원 %d", i+1), org, []string{"teacher", "student"}[min(i, 1)])
		a.api(users[i]).me()
	}
	conv := a.api(users[0]).createConversation("group", "재시작 반", users[1].Sub, users[2].Sub, users[3].Sub)

	// Members 1 and 3 on process A, 2 and 4 on B; each sends through the process it is on.
	procs := []*server{a, b, a, b}
	clients := make([]*sseClient, len(users))
	senders := make([]*apiClient, len(users))
	for i, u := range users {
		clients[i] = procs[i].newSSEClient(u)
		clients[i].keepEvents = false
		clients[i].Track(conv.ID)
		senders[i] = procs[i].api(u)
	}
	startClients(t, clients, 10*time.Second)

	// Steady sends by every member at once until the restarts are over: while Redis is
	// down their publishes fail and the client pool stops dialling for a while, as in
	// production. committed is the highest seq the server has answered: every member
	// must end up with 1..committed.
	var committed atomic.Int64
	var stopping atomic.Bool
	var wg sync.WaitGroup
	var sendErrs []string
	var errMu sync.Mutex
	for _, api := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stopping.Load(); i++ {
				_, m, err := api.send(context.Background(), conv.ID, fmt.Sprintf("%d번 (%s)", i+1, api.user.Sub), uuid.NewString())
				if err != nil {
					errMu.Lock()
					sendErrs = append(sendErrs, err.Error())
					errMu.Unlock()
				}
				for err == nil {
					c := committed.Load()
					if m.Seq <= c || committed.CompareAndSwap(c, m.Seq) {
						break
					}
				}
				time.Sleep(40 * time.Millisecond)
			}
		}()
	}
	stop := func() {
		stopping.Store(true)
		wg.Wait()
	}
	defer stop()

	waitAll := func(round int, n int64) {
		t.Helper()
		start := time.Now()
		for i, c := range clients {
			if !c.WaitSeqs(conv.ID, n, 10*time.Second) {
				snap := c.Conv(conv.ID)
				var missing []int64
				for seq := int64(1); seq <= n; seq++ {
					if _, ok := snap.Messages[seq]; !ok {
						missing = append(missing, seq)
					}
				}
				t.Fatalf("restart %d: member %d (on %s) lacks %d of seqs 1..%d after %s: %v",
					round, i+1, []string{"A", "B"}[i%2], len(missing), n, time.Since(start).Round(time.Millisecond), firstN(missing, 20))
			}
		}
	}

	var worst time.Duration
	for round := 1; round <= restarts; round++ {
		before := committed.Load()
		down := rs.Restart(time.Second)
		// Let the sends run into the moment the processes find Redis back.
		time.Sleep(500 * time.Millisecond)
		n := committed.Load()
		start := time.Now()
		waitAll(round, n)
		took := time.Since(start)
		worst = max(worst, took)
		t.Logf("restart %d: Redis down %s; seqs %d..%d; every member has them %s later",
			round, down.Round(time.Millisecond), before+1, n, took.Round(time.Millisecond))
	}
	stop()
	n := committed.Load()
	waitAll(restarts+1, n)
	if last := a.api(users[0]).conversation(conv.ID).LastSeq; last != n {
		t.Errorf("last_seq %d, but the highest seq answered to a sender is %d", last, n)
	}
	errMu.Lock()
	if len(sendErrs) > 0 {
		t.Errorf("%d sends failed while Redis restarted (they should not depend on it): %v", len(sendErrs), firstN(sendErrs, 3))
	}
	errMu.Unlock()

	time.Sleep(300 * time.Millisecond) // anything sent twice would be in by now
	for i, c := range clients {
		s := c.Conv(conv.ID)
		if len(s.StreamDups) > 0 {
			t.Errorf("member %d: the stream carried %d messages more than once: %v", i+1, len(s.StreamDups), firstN(s.StreamDups, 20))
		}
		if p := c.Problems(); len(p) > 0 {
			t.Errorf("member %d: protocol problems: %v", i+1, firstN(p, 5))
		}
		_, resyncs, _ := c.Stats()
		t.Logf("member %d: %d messages, %d by catch-up, %d resyncs, %d first arrivals out of order",
			i+1, len(s.Messages), s.Fetched, resyncs, len(s.OutOfOrder))
	}
	logs := a.Logs() + b.Logs()
	t.Logf("worst time to complete after a restart: %s; publish failures logged: %d, repairs logged: %d",
		worst.Round(time.Millisecond), strings.Count(logs, `"publish event"`), strings.Count(logs, "published resync for events lost"))
}
