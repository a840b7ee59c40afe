package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

// TestStalledDatabaseFailsFast: with PostgreSQL paused (SIGSTOP to the postmaster and every
// backend, as a stalled server or a lost network looks), transactions on pooled and on new
// connections fail with EUNAVAILABLE within the pool's timeout (plus a second), not retried;
// once PostgreSQL runs again, the same pool works. The server is the test's own: the
// machine's is never paused.
func TestStalledDatabaseFailsFast(t *testing.T) {
	const timeout = time.Second
	pg, pid := storetest.PrivateServer(t)
	ctx := context.Background()
	db, err := store.Open(ctx, pg.DSN("postgres"), store.Timeout(timeout))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	query := func(ctx context.Context) error {
		return db.InTx(ctx, messenger.Identity{}, func(tx *store.Tx) error {
			return store.ExecIn(ctx, tx, "SELECT 1")
		})
	}
	// Two connections in the pool, idle, before the pause.
	var warm sync.WaitGroup
	for range 2 {
		warm.Go(func() {
			if err := db.InTx(ctx, messenger.Identity{}, func(tx *store.Tx) error {
				time.Sleep(100 * time.Millisecond) // hold the connection so that the other opens one
				return store.ExecIn(ctx, tx, "SELECT 1")
			}); err != nil {
				t.Error(err)
			}
		})
	}
	warm.Wait()

	pids := append([]int{pid}, childrenOf(t, pid)...)
	signal := func(sig syscall.Signal) {
		for _, p := range pids {
			syscall.Kill(p, sig)
		}
	}
	t.Cleanup(func() { signal(syscall.SIGCONT) }) // a failed test must not leave it paused
	signal(syscall.SIGSTOP)

	// Four at once: two on the idle connections, two that must open new ones.
	reqCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			start := time.Now()
			err := query(reqCtx)
			took := time.Since(start)
			if code := messenger.ErrorCode(err); code != messenger.EUNAVAILABLE {
				t.Errorf("transaction %d with PostgreSQL paused: %v (code %q), want %q", i, err, code, messenger.EUNAVAILABLE)
			}
			if took > timeout+time.Second {
				t.Errorf("transaction %d with PostgreSQL paused failed after %s, want within %s", i, took, timeout+time.Second)
			}
			t.Logf("transaction %d with PostgreSQL paused: %s after %s", i, messenger.ErrorCode(err), took.Round(time.Millisecond))
		})
	}
	wg.Wait()

	signal(syscall.SIGCONT)
	resumed := time.Now()
	var last error
	for time.Since(resumed) < 10*time.Second {
		if last = query(reqCtx); last == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if last != nil {
		t.Fatalf("the pool does not work again within 10 s of PostgreSQL's resuming: %v", last)
	}
	t.Logf("the pool works again %s after PostgreSQL resumed", time.Since(resumed).Round(time.Millisecond))
	if err := query(reqCtx); err != nil {
		t.Errorf("a second transaction after the pause: %v", err)
	}
}

// childrenOf answers the pids of parent's children (the postmaster's backends and helpers).
func childrenOf(t *testing.T, parent int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after its last ')'.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(parent) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestSilentStatementTimesOut: a statement PostgreSQL stays silent on for longer than the
// pool's timeout fails with EUNAVAILABLE within it, and the pool goes on working; a long
// result whose rows keep arriving is not cut, though it takes longer than the timeout.
func TestSilentStatementTimesOut(t *testing.T) {
	t.Parallel()
	const timeout = 500 * time.Millisecond
	d := storetest.NewDatabase(t)
	ctx := context.Background()
	db, err := store.Open(ctx, d.AppDSN, store.Timeout(timeout))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(query string) (time.Duration, error) {
		start := time.Now()
		err := db.InTx(ctx, messenger.Identity{}, func(tx *store.Tx) error { return store.ExecIn(ctx, tx, query) })
		return time.Since(start), err
	}

	took, err := exec("SELECT pg_sleep(3)")
	if code := messenger.ErrorCode(err); code != messenger.EUNAVAILABLE || took > timeout+time.Second {
		t.Errorf("a statement silent for 3 s: %v (code %q) after %s, want %q within %s", err, code, took, messenger.EUNAVAILABLE, timeout+time.Second)
	}
	// Ten rows of 100 kB, one every 200 ms: 2 s in all, never 500 ms without a byte.
	took, err = exec("SELECT pg_sleep(0.2), repeat('x', 100000) FROM generate_series(1, 10)")
	if err != nil {
		t.Errorf("a result arriving for %s: %v", took, err)
	}
	if took < 2*time.Second {
		t.Errorf("the slow result took %s: it no longer proves anything", took)
	}
	if _, err := exec("SELECT 1"); err != nil {
		t.Errorf("the pool after a timeout: %v", err)
	}
}
