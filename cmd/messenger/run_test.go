package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/lib/pq"

	"github.com/dreamseed/messenger/internal/syncbuf"
	"github.com/dreamseed/messenger/realtime/redistest"
	"github.com/dreamseed/messenger/scan/clamdtest"
	"github.com/dreamseed/messenger/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// processEnv is the environment of a production-like process on a fresh database of its
// own (storetest's); extra entries override it.
func processEnv(t *testing.T, db storetest.Database, extra map[string]string) map[string]string {
	t.Helper()
	env := map[string]string{
		"DATABASE_URL":           db.OwnerDSN,
		"MESSENGER_JWT_SECRET":   strings.Repeat("w", 32),
		"MESSENGER_DATA_DIR":     t.TempDir(),
		"MESSENGER_ADDR":         freeAddr(t),
		"MESSENGER_METRICS_ADDR": freeAddr(t),
		"MESSENGER_LOG_LEVEL":    "debug",
	}
	if u, err := url.Parse(db.AppDSN); err == nil {
		if pw, ok := u.User.Password(); ok {
			env["MESSENGER_APP_DB_PASSWORD"] = pw
		}
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// started is a messenger command running in this test's process, as main runs it: ending
// its context is what SIGTERM does.
type started struct {
	out  *syncbuf.Buffer
	stop context.CancelFunc
	done chan error
}

func start(t *testing.T, cmd string, env map[string]string) *started {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &started{out: &syncbuf.Buffer{}, stop: cancel, done: make(chan error, 1)}
	go func() { p.done <- run(ctx, []string{cmd}, envOf(env), p.out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop within 30 s", cmd)
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", cmd, p.out.String())
		}
	})
	return p
}

// terminate ends p as SIGTERM does and fails unless it stops cleanly within 20 s.
func (p *started) terminate(t *testing.T, cmd string) {
	t.Helper()
	p.stop()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("%s stopped with %v", cmd, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not stop within 20 s of SIGTERM", cmd)
	}
}

// wait polls cond every 100 ms until it holds or timeout passes.
func wait(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("after %s: %s", timeout, what)
}

// `messenger worker` on a real database and Redis works the queue (the probe job completes,
// its metric moves), answers no HTTP, says loudly that files are not scanned when
// MESSENGER_SCAN=off, and stops cleanly on SIGTERM.
func TestWorkerRunsTheQueue(t *testing.T) {
	db := storetest.NewDatabase(t)
	env := processEnv(t, db, map[string]string{"REDIS_URL": redistest.URL(t), "MESSENGER_SCAN": "off", "MESSENGER_JOB_WORKERS": "2"})
	w := start(t, "worker", env)

	owner := storetest.Conn(t, db.OwnerDSN)
	wait(t, "no queue probe job completed", 30*time.Second, func() bool {
		var n int
		owner.QueryRow(`SELECT count(*) FROM river_job WHERE kind = 'queue_probe' AND state = 'completed'`).Scan(&n)
		return n > 0
	})
	metrics := "http://" + env["MESSENGER_METRICS_ADDR"] + "/metrics"
	wait(t, "the probe's metric did not move", 10*time.Second, func() bool {
		resp, err := http.Get(metrics)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "messenger_jobs_probe_last_run_timestamp_seconds "); ok {
				f, err := strconv.ParseFloat(v, 64)
				return err == nil && f > float64(time.Now().Add(-time.Minute).Unix())
			}
		}
		return false
	})
	if c, err := net.DialTimeout("tcp", env["MESSENGER_ADDR"], time.Second); err == nil {
		c.Close()
		t.Errorf("the worker listens on MESSENGER_ADDR %s", env["MESSENGER_ADDR"])
	}
	out := w.out.String()
	if !strings.Contains(out, `"level":"WARN"`) || !strings.Contains(out, "files are not virus-scanned") || !strings.Contains(out, "MESSENGER_SCAN=off") {
		t.Errorf("no warning that files are not scanned in:\n%s", out)
	}
	if strings.Contains(out, "demo data loaded") {
		t.Error("the worker loaded demo data")
	}

	w.terminate(t, "worker")
	if !strings.Contains(w.out.String(), "worker stopping") {
		t.Error("the worker did not say it was stopping")
	}
}

// A worker that could not do its work refuses to start, naming what is missing.
func TestWorkerRefusesWhatCannotWork(t *testing.T) {
	err := run(context.Background(), []string{"worker"}, envOf(map[string]string{"MESSENGER_JOB_WORKERS": "0"}), io.Discard)
	for _, want := range []string{"DATABASE_URL", "REDIS_URL", "MESSENGER_JOB_WORKERS=0"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to name %s", err, want)
		}
	}
}

// With a scanner configured, serve and worker check at start that clamd answers: a dead
// address stops the start with a message naming the variable; a real clamd is used (its
// version logged) and no warning is given.
func TestStartChecksTheScanner(t *testing.T) {
	db := storetest.NewDatabase(t)
	dead := "tcp://" + freeAddr(t)
	err := run(context.Background(), []string{"serve"}, envOf(processEnv(t, db, map[string]string{"MESSENGER_CLAMD_ADDR": dead})), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "MESSENGER_CLAMD_ADDR") || !strings.Contains(err.Error(), "does not answer") {
		t.Fatalf("serve with a dead scanner: %v", err)
	}
	t.Logf("refused: %v", err)

	clamd := clamdtest.Start(t, clamdtest.Config{})
	env := processEnv(t, db, map[string]string{"REDIS_URL": redistest.URL(t), "MESSENGER_CLAMD_ADDR": clamd.Unix})
	w := start(t, "worker", env)
	wait(t, "the worker did not start", 30*time.Second, func() bool { return strings.Contains(w.out.String(), "messenger worker running") })
	out := w.out.String()
	if !strings.Contains(out, `"msg":"virus scanner"`) || !strings.Contains(out, "ClamAV") {
		t.Errorf("the scanner's version is not logged:\n%s", out)
	}
	t.Logf("clamd started in %s; worker output:\n%s", clamd.StartedIn, out)
	if strings.Contains(out, "not virus-scanned") {
		t.Errorf("a warning about scanning with a scanner:\n%s", out)
	}
}

// A file store that cannot be used stops the start, without echoing the URL's secret.
func TestStartChecksTheStorage(t *testing.T) {
	db := storetest.NewDatabase(t)
	env := processEnv(t, db, map[string]string{"MESSENGER_SCAN": "off",
		"MESSENGER_STORAGE_URL": "s3://KEY:supersecret@" + freeAddr(t) + "/bucket?secure=false"})
	err := run(context.Background(), []string{"serve"}, envOf(env), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "MESSENGER_STORAGE_URL") || strings.Contains(err.Error(), "supersecret") {
		t.Fatalf("serve with a dead store: %v", err)
	}
	t.Logf("refused: %v", err)
}

// serve in dev mode without clamd warns at start that files are not scanned and serves;
// with MESSENGER_JOB_WORKERS=0 it works no job (a worker process does), not even the probe.
func TestServeDevWithoutScannerEnqueueOnly(t *testing.T) {
	db := storetest.NewDatabase(t)
	env := processEnv(t, db, map[string]string{"MESSENGER_DEV": "1", "MESSENGER_JOB_WORKERS": "0"})
	s := start(t, "serve", env)
	wait(t, "serve did not listen", 60*time.Second, func() bool { return strings.Contains(s.out.String(), "messenger listening") })
	out := s.out.String()
	if !strings.Contains(out, `"level":"WARN","msg":"files are not virus-scanned`) || !strings.Contains(out, "dev mode without MESSENGER_CLAMD_ADDR") {
		t.Errorf("no warning that files are not scanned in:\n%s", out)
	}
	resp, err := http.Get("http://" + env["MESSENGER_ADDR"] + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	owner := storetest.Conn(t, db.OwnerDSN)
	time.Sleep(2 * time.Second) // a working runner probes at once (RunOnStart)
	var n int
	if err := owner.QueryRow(`SELECT count(*) FROM river_job WHERE kind = 'queue_probe'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("serve with no workers: %d probe jobs, %v", n, err)
	}
}

// serve stops in order on SIGTERM: the listeners drain, the background loops (the
// presence watcher) end, the job workers finish, and only then do the realtime engine and
// the database close, which they all use.
func TestServeShutdownOrder(t *testing.T) {
	db := storetest.NewDatabase(t)
	env := processEnv(t, db, map[string]string{"MESSENGER_SCAN": "off", "MESSENGER_JOB_WORKERS": "1"})
	s := start(t, "serve", env)
	wait(t, "serve did not start its jobs and listen", 60*time.Second, func() bool {
		out := s.out.String()
		return strings.Contains(out, "messenger listening") && strings.Contains(out, "jobs started")
	})
	s.terminate(t, "serve")
	var order []string
	for _, line := range strings.Split(s.out.String(), "\n") {
		var entry struct{ Msg string }
		if json.Unmarshal([]byte(line), &entry) == nil {
			order = append(order, entry.Msg)
		}
	}
	last := -1
	for _, step := range []string{"shutting down", "background loops stopped", "jobs stopped", "realtime engine closed", "database closed"} {
		i := slices.Index(order, step)
		if i < 0 || i < last {
			t.Fatalf("shutdown went %q, want %q after the steps before it", order, step)
		}
		last = i
	}
}

// With MESSENGER_DRAIN_DELAY, SIGTERM turns /readyz red at once while the process keeps
// answering everything else for the delay; only then does the listener close, and the
// process still exits cleanly.
func TestServeShutdownDrainDelay(t *testing.T) {
	const delay = 3 * time.Second
	db := storetest.NewDatabase(t)
	env := processEnv(t, db, map[string]string{"MESSENGER_SCAN": "off", "MESSENGER_JOB_WORKERS": "0",
		"MESSENGER_DRAIN_DELAY": delay.String(), "MESSENGER_SHUTDOWN_TIMEOUT": "10s"})
	s := start(t, "serve", env)
	base := "http://" + env["MESSENGER_ADDR"]
	client := &http.Client{Timeout: 2 * time.Second}
	status := func(path string) int {
		resp, err := client.Get(base + path)
		if err != nil {
			return 0 // nothing listens
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	wait(t, "/readyz never answered 200", 60*time.Second, func() bool { return status("/readyz") == http.StatusOK })

	stopped := time.Now()
	s.stop()
	wait(t, "/readyz did not turn 503 after SIGTERM", time.Second, func() bool { return status("/readyz") == http.StatusServiceUnavailable })
	// Well inside the delay the process still serves what is not the health check.
	for time.Since(stopped) < delay-time.Second {
		if got := status("/healthz"); got != http.StatusOK {
			t.Fatalf("/healthz %s after SIGTERM: %d, want 200 for the drain delay of %s", time.Since(stopped).Round(time.Millisecond), got, delay)
		}
		time.Sleep(200 * time.Millisecond)
	}
	wait(t, "the listener did not close after the drain delay", 5*time.Second, func() bool { return status("/healthz") == 0 })
	if took := time.Since(stopped); took < delay {
		t.Errorf("the listener closed %s after SIGTERM, before the drain delay of %s", took.Round(time.Millisecond), delay)
	}
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("serve stopped with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not exit after the drain delay")
	}
	if !strings.Contains(s.out.String(), "draining: /readyz answers 503, still serving") {
		t.Error("the log does not say the process is draining")
	}
}
