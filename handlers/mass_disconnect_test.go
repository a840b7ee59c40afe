package handlers_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/handlers"
	"github.com/dreamseed/messenger/internal/syncbuf"
	"github.com/dreamseed/messenger/internal/trace"
	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/realtime/redistest"
	"github.com/dreamseed/messenger/store/storetest"
)

const (
	// massStreamsEnv sizes TestMassDisconnect: the streams (of as many users) that close at
	// once; 10000 unless set.
	massStreamsEnv = "MESSENGER_TEST_MASS_STREAMS"
	// massClientEnv tells the test binary it runs as TestMassDisconnect's client process,
	// and where the server is.
	massClientEnv = "MESSENGER_TEST_MASS_CLIENT"
	massObservers = 20 // observers: each shares a group with many of the users
	massGroup     = 5  // users per group, with one observer
)

func massStreams(t *testing.T) int {
	n := 10000
	if v := os.Getenv(massStreamsEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < massGroup || n%massGroup != 0 {
			t.Fatalf("%s=%q: want a multiple of %d", massStreamsEnv, v, massGroup)
		}
	}
	return n
}

// raiseFileLimit raises this process's open-file limit to its hard limit and answers it.
func raiseFileLimit(t *testing.T) uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
	}
	return lim.Cur
}

func massSub(i int) string     { return "mu-" + strconv.Itoa(i) }
func observerSub(i int) string { return "mo-" + strconv.Itoa(i) }

// TestMassDisconnect: N streams of N users (10000; MESSENGER_TEST_MASS_STREAMS), each
// user in a group with four others and an observer, close at once — a school's network
// going down. Every user's last_seen_at is stored, every observer's stream (kept open)
// hears every one of its contacts go offline, and the process logs no error: on the
// memory engine and on Redis.
//
// The streams are real HTTP streams from a client process of their own (the test binary
// again, TestMassDisconnectClient): N sockets on each side would not fit in one process's
// file limit. Killing it closes them all at the same instant.
func TestMassDisconnect(t *testing.T) {
	if testing.Short() {
		t.Skip("heavy: opens thousands of streams")
	}
	n := massStreams(t)
	if limit := raiseFileLimit(t); limit < uint64(n)+1000 {
		t.Skipf("the open-file limit is %d: %d streams need at least %d (raise `ulimit -n`, or set %s lower)", limit, n, n+1000, massStreamsEnv)
	}
	t.Run("memory", func(t *testing.T) {
		engine := realtime.NewMemory(0)
		t.Cleanup(func() { engine.Close() })
		massDisconnect(t, n, func(*slog.Logger) realtime.Engine { return engine })
	})
	t.Run("redis", func(t *testing.T) {
		url := redistest.URL(t)
		prefix := fmt.Sprintf("test-mass-%d:", time.Now().UnixNano())
		massDisconnect(t, n, func(logger *slog.Logger) realtime.Engine {
			engine, err := realtime.NewRedisWithPrefix(context.Background(), url, 0, logger, prefix)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { engine.Close() })
			return engine
		})
	})
}

func massDisconnect(t *testing.T, n int, newEngine func(*slog.Logger) realtime.Engine) {
	b := newBase(t, nil)
	logs := &syncbuf.Buffer{}
	logger := slog.New(trace.NewJSON(logs, slog.LevelInfo))
	engine := newEngine(logger)
	svc := chat.NewService(b.db, engine, logger, prometheus.NewRegistry(), nil)
	e, _ := handlers.New(b.cfg, b.db, svc, b.verifier, engine, logger)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	ctx, stop := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); svc.StorePresence(ctx) }()
	t.Cleanup(func() { stop(); <-stopped })

	// The users, their groups and the observers, written at once as the owner.
	start := time.Now()
	first := storetest.MustSignIn(t, b.db, observerSub(0), "관찰0", "org-m", "org-m-zone", messenger.RoleTeacher)
	write := func(q string, args ...any) {
		t.Helper()
		if _, err := b.owner.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	write(`INSERT INTO users (issuer, sub, org_id, zone_id, name, role, locale)
	      SELECT $1, 'mo-' || g, $2, $3, '관찰' || g, 'teacher', '' FROM generate_series(1, $4 - 1) g`, testIssuer, first.OrgID, first.ZoneID, massObservers)
	write(`INSERT INTO users (issuer, sub, org_id, zone_id, name, role, locale)
	      SELECT $1, 'mu-' || g, $2, $3, '회원' || g, 'teacher', '' FROM generate_series(0, $4 - 1) g`, testIssuer, first.OrgID, first.ZoneID, n)
	write(`INSERT INTO conversations (org_id, kind, title, created_by)
	      SELECT $1, 'group', 'mass ' || g, (SELECT id FROM users WHERE sub = 'mo-' || (g % $3))
	        FROM generate_series(0, $2 - 1) g`, first.OrgID, n/massGroup, massObservers)
	write(`INSERT INTO conversation_participants (conversation_id, user_id, org_id, role)
	      SELECT c.id, u.id, c.org_id, CASE WHEN u.sub LIKE 'mo-%' THEN 'admin' ELSE 'member' END
	        FROM conversations c
	        CROSS JOIN LATERAL (SELECT 'mu-' || (split_part(c.title, ' ', 2)::int * $1 + k) AS sub FROM generate_series(0, $1 - 1) k
	                            UNION ALL SELECT 'mo-' || (split_part(c.title, ' ', 2)::int % $2)) s
	        JOIN users u ON u.sub = s.sub
	       WHERE c.title LIKE 'mass %'`, massGroup, massObservers)
	t.Logf("%d users in %d groups with %d observers, written in %s", n, n/massGroup, massObservers, time.Since(start).Round(time.Millisecond))

	// The observers' streams stay open; each collects the users it heard go offline.
	var mu sync.Mutex
	offline := make([]map[string]bool, massObservers)
	for o := range massObservers {
		offline[o] = map[string]bool{}
		token := sign(t, validClaims(observerSub(o), "관찰"+strconv.Itoa(o), "org-m"))
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/events", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("observer %d: %v %v", o, err, resp)
		}
		go func() {
			for ev := range streamEvents(resp.Body) {
				var p chat.PresenceChange
				if ev.typ != chat.EventPresence || json.Unmarshal([]byte(ev.data), &p) != nil || p.Online {
					continue
				}
				mu.Lock()
				offline[o][p.UserID] = true
				mu.Unlock()
			}
		}()
	}

	// The client process opens the n streams, and holds them until it is killed.
	client := exec.Command(os.Args[0], "-test.run=^TestMassDisconnectClient$", "-test.v")
	client.Env = append(os.Environ(), massClientEnv+"="+srv.URL, massStreamsEnv+"="+strconv.Itoa(n))
	out, err := client.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	client.Stderr = &stderr
	start = time.Now()
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			client.Process.Kill()
			client.Wait()
		}
	})
	opened := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "opened ") || strings.HasPrefix(line, "failed ") {
				opened <- line
			}
		}
		close(opened)
	}()
	select {
	case line, ok := <-opened:
		if !ok || !strings.HasPrefix(line, "opened ") {
			t.Fatalf("the client did not open its streams: %q\n%s", line, stderr.String())
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("the client did not open %d streams within 3 minutes\n%s", n, stderr.String())
	}
	t.Logf("%d streams open in %s", n, time.Since(start).Round(time.Millisecond))
	online := func() int {
		var c int
		b.owner.QueryRow(`SELECT count(*) FROM users WHERE sub LIKE 'mu-%' AND last_seen_at IS NOT NULL`).Scan(&c)
		return c
	}
	if c := online(); c != 0 {
		t.Fatalf("%d users have last_seen_at before any stream closed", c)
	}

	// All at once.
	closed := time.Now()
	client.Process.Kill()
	client.Wait()
	killed = true

	var stored, heard time.Duration
	deadline := closed.Add(60 * time.Second)
	for stored == 0 || heard == 0 {
		if time.Now().After(deadline) {
			break
		}
		if stored == 0 && online() == n {
			stored = time.Since(closed)
		}
		if heard == 0 {
			mu.Lock()
			all := true
			for o := range massObservers {
				if len(offline[o]) < n/massObservers {
					all = false
				}
			}
			mu.Unlock()
			if all {
				heard = time.Since(closed)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if stored == 0 {
		t.Errorf("60 s after %d streams closed, %d users have last_seen_at", n, online())
	}
	mu.Lock()
	for o := range massObservers {
		missing := 0
		for g := o; g < n/massGroup; g += massObservers {
			for k := range massGroup {
				if !offline[o][massSub(g*massGroup+k)] {
					missing++
				}
			}
		}
		if missing > 0 {
			t.Errorf("observer %d did not hear %d of its %d contacts go offline", o, missing, n/massObservers)
		}
	}
	mu.Unlock()
	var errorLines []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"level":"ERROR"`) || strings.Contains(line, "presence batch failed") {
			errorLines = append(errorLines, line)
		}
	}
	if len(errorLines) > 0 {
		t.Errorf("%d error lines logged, the first: %s", len(errorLines), errorLines[0])
	}
	t.Logf("%d streams closed at once: every last_seen_at stored after %s, every offline heard after %s, %d error lines",
		n, stored.Round(time.Millisecond), heard.Round(time.Millisecond), len(errorLines))
}

// TestMassDisconnectClient is TestMassDisconnect's client process: it opens the streams of
// the users mu-0 … mu-(n-1), prints "opened n" once every one has started, and holds them
// (reading what comes) until it is killed.
func TestMassDisconnectClient(t *testing.T) {
	url := os.Getenv(massClientEnv)
	if url == "" {
		t.Skip("the client process of TestMassDisconnect")
	}
	n := massStreams(t)
	raiseFileLimit(t)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: -1, DisableCompression: true}}
	var opened atomic.Int64
	failed := make(chan error, 1)
	slots := make(chan struct{}, 64)
	for i := range n {
		slots <- struct{}{}
		go func() {
			token := sign(t, validClaims(massSub(i), "회원"+strconv.Itoa(i), "org-m"))
			req, _ := http.NewRequest("GET", url+"/api/v1/events", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(req)
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			if err == nil {
				// The stream has started once its first frame (retry:) arrives.
				_, err = bufio.NewReader(resp.Body).ReadString('\n')
			}
			<-slots
			if err != nil {
				select {
				case failed <- fmt.Errorf("stream %d: %w", i, err):
				default:
				}
				return
			}
			if opened.Add(1) == int64(n) {
				fmt.Println("opened", n)
			}
			io.Copy(io.Discard, resp.Body)
		}()
	}
	err := <-failed
	fmt.Println("failed", err)
}
