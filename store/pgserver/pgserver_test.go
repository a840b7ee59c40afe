package pgserver

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// needBinaries skips only when PostgreSQL is genuinely not installed; any
// other failure should surface as a test failure.
func needBinaries(t *testing.T) {
	t.Helper()
	if _, err := findBinaries(exec.LookPath, pgConfigBindir, defaultBinGlobs); errors.Is(err, ErrNoBinaries) {
		t.Skipf("no PostgreSQL server binaries on this machine: %v", err)
	}
}

// baseDir returns a fresh directory the unprivileged server user can
// traverse. t.TempDir() is not usable as is: its parent is created 0700,
// which blocks the postgres user when the tests run as root.
func baseDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "pgserver-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

func mustStart(t *testing.T, ctx context.Context, dir string) *Server {
	t.Helper()
	s, err := Start(ctx, dir, testLogger(t))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

func openDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func readNote(t *testing.T, ctx context.Context, s *Server) string {
	t.Helper()
	var note string
	if err := openDB(t, s.DSN("postgres")).QueryRowContext(ctx, `SELECT note FROM notes WHERE id = 1`).Scan(&note); err != nil {
		t.Fatalf("read row back: %v", err)
	}
	return note
}

// One test walks the whole lifecycle on a single cluster because initdb is
// the expensive part; each step depends on the state the previous one left.
func TestLifecycle(t *testing.T) {
	needBinaries(t)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Second)
	defer cancel()
	base := baseDir(t)
	dir := filepath.Join(base, "data")
	pwPath := filepath.Join(base, "postgres.password")

	// Fresh directory: initdb, start, use.
	s1 := mustStart(t, ctx, dir)
	pw1, err := os.ReadFile(pwPath)
	if err != nil {
		t.Fatalf("password file: %v", err)
	}
	fi, err := os.Stat(pwPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("password file mode = %v, want 0600", fi.Mode().Perm())
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != os.Geteuid() {
		t.Errorf("password file owner = %d, want invoking user %d", st.Uid, os.Geteuid())
	}
	if os.Geteuid() == 0 {
		di, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if st := di.Sys().(*syscall.Stat_t); st.Uid == 0 || di.Mode().Perm() != 0o700 {
			t.Errorf("data dir owner uid %d mode %v, want unprivileged owner and 0700", st.Uid, di.Mode().Perm())
		}
	}
	if !strings.Contains(s1.DSN("x"), "sslmode=disable") {
		t.Errorf("DSN %q lacks sslmode=disable", s1.DSN("x"))
	}

	db := openDB(t, s1.DSN("postgres"))
	if _, err := db.ExecContext(ctx, `CREATE TABLE notes (id int PRIMARY KEY, note text)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO notes VALUES (1, 'survives restarts')`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	for range 2 { // the second call must find the database and do nothing
		if err := s1.EnsureDatabase(ctx, "app_test"); err != nil {
			t.Fatalf("EnsureDatabase: %v", err)
		}
	}
	if err := openDB(t, s1.DSN("app_test")).PingContext(ctx); err != nil {
		t.Fatalf("connect to created database: %v", err)
	}
	for _, bad := range []string{"", "App", "1db", "x;drop", `a"b`, strings.Repeat("a", 64)} {
		if err := s1.EnsureDatabase(ctx, bad); err == nil {
			t.Errorf("EnsureDatabase(%q) succeeded, want validation error", bad)
		}
	}

	if err := s1.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := s1.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	// Restart on the same directory: same cluster, same password.
	s2 := mustStart(t, ctx, dir)
	if got := readNote(t, ctx, s2); got != "survives restarts" {
		t.Fatalf("row after restart = %q", got)
	}
	if pw2, _ := os.ReadFile(pwPath); string(pw2) != string(pw1) {
		t.Fatal("password file was rewritten on restart")
	}

	// A postmaster still running on the directory stands in for one left
	// behind by a killed earlier run: the new Start must shut it down.
	s3 := mustStart(t, ctx, dir)
	select {
	case <-s2.done:
	default:
		t.Fatal("Start left the previous postmaster running")
	}
	if got := readNote(t, ctx, s3); got != "survives restarts" {
		t.Fatalf("row after taking over = %q", got)
	}
	if err := s2.Stop(); err != nil {
		t.Errorf("Stop of the displaced server: %v", err)
	}
	if err := s3.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}

	// A server that dies during startup must explain itself with its log.
	conf, err := os.OpenFile(filepath.Join(dir, "postgresql.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conf.WriteString("\nshared_buffers = 'lots'\n"); err != nil {
		t.Fatal(err)
	}
	conf.Close()
	if s, err := Start(ctx, dir, testLogger(t)); err == nil {
		s.Stop()
		t.Fatal("Start with a broken config succeeded")
	} else if !strings.Contains(err.Error(), "shared_buffers") {
		t.Fatalf("Start error does not quote the log: %v", err)
	}
}

func TestUntraversableParent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root hands the server to another user")
	}
	needBinaries(t)
	locked := t.TempDir() // 0700 and root-owned: the server user cannot enter
	if err := os.Chmod(locked, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Start(t.Context(), filepath.Join(locked, "app", "data"), testLogger(t))
	if err == nil {
		t.Fatal("Start succeeded under a 0700 root directory")
	}
	for _, want := range []string{locked, "chmod o+x", "DATABASE_URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestFindBinaries(t *testing.T) {
	notFound := func(string) (string, error) { return "", exec.ErrNotFound }
	noBindir := func() string { return "" }

	_, err := findBinaries(notFound, noBindir, []string{filepath.Join(t.TempDir(), "none", "*", "bin")})
	if !errors.Is(err, ErrNoBinaries) {
		t.Fatalf("err = %v, want ErrNoBinaries", err)
	}
	for _, want := range []string{"apt-get install postgresql", "dnf install postgresql-server", "brew install postgresql@16", "DATABASE_URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}

	// Several versions installed: the newest wins, compared numerically.
	root := t.TempDir()
	for _, v := range []string{"9.6", "16", "13"} {
		bin := filepath.Join(root, v, "bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"postgres", "initdb"} {
			if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	b, err := findBinaries(notFound, noBindir, []string{filepath.Join(root, "*", "bin")})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "16", "bin", "postgres"); b.postgres != want {
		t.Errorf("postgres = %s, want %s", b.postgres, want)
	}
}
