package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dreamseed/messenger/internal/freeport"
	"github.com/dreamseed/messenger/store/storetest"
)

// drillTimeout bounds one drill script.
const drillTimeout = 2 * time.Minute

// TestDrills runs each rehearsal script of deploy/drills (docs/runbook.md) the way an
// operator does, against messenger processes started for it: the Redis it stops or pauses
// and the PostgreSQL it pauses are the test's own, never the machine's. A script that exits
// non-zero fails its subtest.
func TestDrills(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "openssl", "psql", "redis-server", "redis-cli"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("the drills need %s: %v", tool, err)
			}
			t.Skipf("the drills need %s: %v", tool, err)
		}
	}

	// One PostgreSQL of the test's own, a database per drill: the drill that pauses it must
	// not pause the machine's, and the others do not depend on the shared server's load.
	pg, pgPID := storetest.PrivateServer(t)
	database := func(t *testing.T) []string {
		name := "drill_" + strings.ReplaceAll(strings.TrimPrefix(t.Name(), "TestDrills/"), "-", "_")
		if err := pg.EnsureDatabase(t.Context(), name); err != nil {
			t.Fatal(err)
		}
		return []string{"DATABASE_URL=" + pg.DSN(name), "MESSENGER_APP_DB_PASSWORD=drill-app-password"}
	}
	server := func(t *testing.T, env ...string) *server {
		return startServer(t, append(database(t), env...)...)
	}

	t.Run("redis-down", func(t *testing.T) {
		r := startDrillRedis(t)
		srv := server(t, "REDIS_URL="+r.URL)
		runDrill(t, "redis-down", "MESSENGER_URL="+srv.URL, "METRICS_URL="+srv.MetricsURL,
			"DRILL_REDIS_STOP="+r.stopCmd, "DRILL_REDIS_START="+r.startCmd)
	})

	t.Run("slow-delivery", func(t *testing.T) {
		r := startDrillRedis(t)
		srv := server(t, "REDIS_URL="+r.URL)
		runDrill(t, "slow-delivery", "MESSENGER_URL="+srv.URL, "METRICS_URL="+srv.MetricsURL,
			"DRILL_REDIS_PID="+strconv.Itoa(r.pid()))
	})

	t.Run("database-slow", func(t *testing.T) {
		srv := server(t, "MESSENGER_DB_TIMEOUT=2s")
		runDrill(t, "database-slow", "MESSENGER_URL="+srv.URL, "DRILL_PG_PID="+strconv.Itoa(pgPID),
			"DRILL_DB_TIMEOUT=2", "DATABASE_URL="+srv.env("DATABASE_URL"), "METRICS_URL="+srv.MetricsURL)
	})

	t.Run("server-down", func(t *testing.T) {
		r := startDrillRedis(t)
		a := server(t, "REDIS_URL="+r.URL)
		b := startServerOn(t, a, "REDIS_URL="+r.URL)
		runDrill(t, "server-down", "MESSENGER_URLS="+a.URL+" "+b.URL,
			"DRILL_KILL_PID="+strconv.Itoa(a.cmd.Process.Pid), "DRILL_RESTART="+backgroundCommand(t, "restart", a.Env))
	})

	t.Run("disk-full", func(t *testing.T) {
		dir := smallFilesystem(t, "4m")
		srv := server(t, "MESSENGER_DATA_DIR="+dir)
		runDrill(t, "disk-full", "MESSENGER_URL="+srv.URL, "DRILL_FILES_DIR="+filepath.Join(dir, "files"))
	})

	t.Run("bad-deploy", func(t *testing.T) {
		r := startDrillRedis(t)
		srv := server(t, "REDIS_URL="+r.URL)
		// The new release is misconfigured: its Redis is a port nobody listens on, so it
		// never becomes ready (it refuses to start).
		port := freePort(t)
		env := withEnv(srv.Env,
			"MESSENGER_ADDR=127.0.0.1:"+strconv.Itoa(port),
			"MESSENGER_METRICS_ADDR=127.0.0.1:"+strconv.Itoa(freePort(t)),
			"REDIS_URL=redis://127.0.0.1:"+strconv.Itoa(freePort(t))+"/0")
		// It migrates before it fails, as a release does; the row stands for its migration.
		start := fmt.Sprintf(`psql %s -qc "INSERT INTO schema_migrations (version, name) VALUES (9999, 'drill_new_release')" && %s`,
			shellQuote(srv.env("DATABASE_URL")), backgroundCommand(t, "new-release", env))
		// The previous release restarted: the running process stopped and started again.
		restart := fmt.Sprintf("kill -TERM %d; while kill -0 %[1]d 2>/dev/null; do sleep 0.1; done; %s",
			srv.cmd.Process.Pid, backgroundCommand(t, "previous-release", srv.Env))
		runDrill(t, "bad-deploy", "MESSENGER_URL="+srv.URL, "DATABASE_URL="+srv.env("DATABASE_URL"),
			"DRILL_NEW_URL=http://127.0.0.1:"+strconv.Itoa(port), "DRILL_NEW_START="+start,
			"DRILL_NEW_STOP="+stopBackground(t, "new-release"), "DRILL_READY_WAIT=5",
			"DRILL_PREVIOUS_RESTART="+restart)
	})
}

// runDrill runs deploy/drills/NAME.sh with env added to the test's and fails t unless it
// exits 0 within drillTimeout; its output goes to the test log.
func runDrill(t *testing.T, name string, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), drillTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join("..", "deploy", "drills", name+".sh"))
	cmd.Env = append(os.Environ(), "DRILL_TMP="+t.TempDir())
	cmd.Env = append(cmd.Env, env...)
	cmd.WaitDelay = 5 * time.Second // a stream's curl left behind must not hold the test
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("%s (%s):\n%s", name, time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("drill %s: %v", name, err)
	}
}

// drillRedis is a redis-server the drill stops and starts with shell commands, as an
// operator's service manager would.
type drillRedis struct {
	URL, startCmd, stopCmd string
	pidFile                string
}

func startDrillRedis(t *testing.T) *drillRedis {
	t.Helper()
	port, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := &drillRedis{
		URL:     fmt.Sprintf("redis://127.0.0.1:%d/0", port),
		pidFile: filepath.Join(dir, "redis.pid"),
	}
	r.startCmd = fmt.Sprintf("redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no --daemonize yes --pidfile %s --logfile %s",
		port, r.pidFile, filepath.Join(dir, "redis.log"))
	r.stopCmd = fmt.Sprintf("redis-cli -p %d shutdown nosave", port)
	t.Cleanup(func() {
		if pid := r.pid(); pid > 0 {
			syscall.Kill(pid, syscall.SIGCONT)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if out, err := exec.Command("bash", "-c", r.startCmd).CombinedOutput(); err != nil {
		t.Fatalf("start redis-server: %v\n%s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for exec.Command("redis-cli", "-p", strconv.Itoa(port), "ping").Run() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %d does not answer", port)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return r
}

// pid answers the running redis-server's pid (0 when none).
func (r *drillRedis) pid() int { return storetest.ReadPID(r.pidFile) }

// backgroundCommand writes a script that starts the messenger binary with env in the
// background (its pid in a file named after name) and answers the shell command that runs
// it; the process is killed when t ends.
func backgroundCommand(t *testing.T, name string, env []string) string {
	t.Helper()
	dir := drillDir(t)
	var b strings.Builder
	b.WriteString("cd " + shellQuote(t.TempDir()) + "\n")
	b.WriteString("env -i")
	for _, kv := range env {
		b.WriteString(" " + shellQuote(kv))
	}
	fmt.Fprintf(&b, " setsid %s >%s 2>&1 </dev/null &\necho $! >%s\n", shellQuote(binary),
		shellQuote(filepath.Join(dir, name+".log")), shellQuote(filepath.Join(dir, name+".pid")))
	script := filepath.Join(dir, name+".sh")
	if err := os.WriteFile(script, []byte(b.String()), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if pid := storetest.ReadPID(filepath.Join(dir, name+".pid")); pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, name+".log"))
			t.Logf("%s output:\n%s", name, log)
		}
	})
	return "bash " + shellQuote(script)
}

// stopBackground answers the shell command that stops what backgroundCommand(name) started.
func stopBackground(t *testing.T, name string) string {
	pidFile := filepath.Join(drillDir(t), name+".pid")
	return fmt.Sprintf("kill -TERM $(cat %s) 2>/dev/null || true", shellQuote(pidFile))
}

// drillDir is one directory per test for the scripts and pid files of backgroundCommand.
func drillDir(t *testing.T) string {
	dir := filepath.Join(os.TempDir(), "messenger-drill-"+strings.NewReplacer("/", "-").Replace(t.Name())+"-"+strconv.Itoa(os.Getpid()))
	if _, err := os.Stat(dir); err == nil {
		return dir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) }) // registered first, so it runs after the kills
	return dir
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// withEnv answers env with each "KEY=value" of set replacing the entry of its key.
func withEnv(env []string, set ...string) []string {
	out := append([]string(nil), env...)
	for _, kv := range set {
		key, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, old := range out {
			if strings.HasPrefix(old, key+"=") {
				out[i], replaced = kv, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

// smallFilesystem mounts a tmpfs of size at a new directory for the test (unmounted when it
// ends), so that filling it fills nothing else. Mounting needs root (CAP_SYS_ADMIN): without
// it the test is skipped, or fails under CI.
func smallFilesystem(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0755", "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mount a %s tmpfs: %v\n%s", size, err, out)
		}
		t.Skipf("cannot mount a %s tmpfs here: %v\n%s", size, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	})
	return dir
}
