package storetest

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/dreamseed/messenger/store/pgserver"
)

// PrivateServer starts a PostgreSQL of the test's own, which the test may pause or stop
// (the machine's shared one must never be), and answers it with its postmaster's pid. It
// skips without PostgreSQL's server binaries, except under CI. At the end of the test the
// server is resumed (a failed test may have left it paused) and stopped.
func PrivateServer(t testing.TB) (*pgserver.Server, int) {
	t.Helper()
	dir, err := os.MkdirTemp("", "messenger-private-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // the server's own user must traverse it
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	pg, err := pgserver.Start(t.Context(), data, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		if os.Getenv("CI") == "" && strings.Contains(err.Error(), "no PostgreSQL server binaries") {
			t.Skip(err)
		}
		t.Fatalf("start PostgreSQL: %v", err)
	}
	pidFile := filepath.Join(data, "postmaster.pid")
	t.Cleanup(func() {
		if pid := ReadPID(pidFile); pid > 0 {
			syscall.Kill(pid, syscall.SIGCONT)
		}
		pg.Stop()
	})
	return pg, ReadPID(pidFile)
}

// ReadPID answers the pid on the first line of a pid file (0 if it has none).
func ReadPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}
