// Package pgserver runs a private PostgreSQL server from the machine's
// installed server binaries, so that `make run` works on a fresh machine
// without anyone provisioning a database or setting DATABASE_URL.
package pgserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lib/pq"

	"github.com/dreamseed/messenger/internal/freeport"
)

// ErrNoBinaries is wrapped when no PostgreSQL server binaries are found, so
// callers can tell "nothing installed" apart from a broken installation and
// print installation advice instead of a stack of exec errors.
var ErrNoBinaries = errors.New("no PostgreSQL server binaries found")

const (
	superuser       = "postgres"
	readyTimeout    = 60 * time.Second
	stopTimeout     = 30 * time.Second
	pollInterval    = 100 * time.Millisecond
	logTailLines    = 20
	portAttempts    = 3
	passwordFile    = "postgres.password"
	serverLogFile   = "postgres.log"
	clusterSentinel = "PG_VERSION"
)

// Server is a private PostgreSQL server process owned by this program.
type Server struct {
	dir      string // absolute data directory
	port     int
	password string
	user     string // OS user the postmaster runs as
	logPath  string
	logger   *slog.Logger

	cmd     *exec.Cmd
	done    chan struct{} // closed once the postmaster has been reaped
	waitErr error         // valid after done is closed

	stopOnce sync.Once
	stopErr  error
}

// binaries locates the two programs we need; initdb finds its own helpers
// next to itself, so nothing else has to be resolved.
type binaries struct {
	postgres, initdb string
}

// account is the OS identity the server runs under. A nil *account means
// "whoever we are", which is the normal case for a developer's own login.
type account struct {
	name     string
	uid, gid uint32
	groups   []uint32
}

// Start initializes dir (if it holds no cluster yet) and starts PostgreSQL
// on a free 127.0.0.1 port. It returns once the server accepts connections
// (or an error within ~60 s).
func Start(ctx context.Context, dir string, logger *slog.Logger) (*Server, error) {
	if logger == nil {
		logger = slog.Default()
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("pgserver: resolve data directory: %w", err)
	}
	parent := filepath.Dir(dir)
	// 0755 so that, when we are root, the unprivileged server user can
	// reach the data directory through the directories we create.
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("pgserver: create %s: %w", parent, err)
	}

	bins, err := findBinaries(exec.LookPath, pgConfigBindir, defaultBinGlobs)
	if err != nil {
		return nil, err
	}

	acct, err := serverAccount()
	if err != nil {
		return nil, err
	}
	if acct != nil {
		if err := checkTraversable(parent, acct); err != nil {
			return nil, err
		}
	}

	s := &Server{
		dir:     dir,
		logPath: filepath.Join(parent, serverLogFile),
		logger:  logger,
		user:    currentUserName(),
	}
	if acct != nil {
		s.user = acct.name
	}

	clusterExists := fileExists(filepath.Join(dir, clusterSentinel))
	s.password, err = loadOrCreatePassword(filepath.Join(parent, passwordFile), clusterExists)
	if err != nil {
		return nil, err
	}

	if !clusterExists {
		if err := s.initCluster(ctx, bins, acct); err != nil {
			return nil, err
		}
	}
	// Redo ownership and mode on every start: an earlier run may have used a
	// different account (e.g. nobody before a postgres user existed), and
	// postgres refuses a data directory that is group/world accessible.
	if acct != nil {
		if err := chownTree(dir, acct); err != nil {
			return nil, err
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pgserver: chmod %s: %w", dir, err)
	}

	if err := s.stopStalePostmaster(); err != nil {
		return nil, err
	}

	for attempt := 1; ; attempt++ {
		err := s.launch(ctx, bins, acct)
		if err == nil {
			break
		}
		// The port was free when we probed it but something may have
		// grabbed it before postgres bound it; that race is worth a retry,
		// anything else is not.
		var be *bindError
		if !errors.As(err, &be) || attempt == portAttempts {
			return nil, err
		}
		logger.Warn("embedded postgres could not bind its port, retrying", "port", s.port)
	}
	logger.Info("embedded postgres started", "dir", s.dir, "port", s.port, "user", s.user)
	return s, nil
}

// DSN returns a superuser connection string (lib/pq URL form,
// sslmode=disable) for database name db.
func (s *Server) DSN(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(superuser, s.password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Stop shuts the server down cleanly (fast shutdown: SIGINT to the
// postmaster) and waits for it, at most ~30 s, then SIGKILL. It is safe to
// call more than once and on a nil *Server, so it can sit in both a defer
// and a signal handler.
func (s *Server) Stop() error {
	if s == nil {
		return nil
	}
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *Server) stop() error {
	select {
	case <-s.done:
		// Already gone (crashed, or shut down by a newer Start on the same
		// directory); only a failure is worth reporting.
		if s.waitErr != nil {
			return fmt.Errorf("pgserver: postgres had already exited: %w", s.waitErr)
		}
		return nil
	default:
	}
	pid := s.cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGINT); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("pgserver: signal postgres: %w", err)
	}
	var err error
	select {
	case <-s.done:
		if s.waitErr != nil {
			err = fmt.Errorf("pgserver: postgres exited uncleanly: %w", s.waitErr)
		}
	case <-time.After(stopTimeout):
		// Kill the whole process group: backends outliving a SIGKILLed
		// postmaster would keep the shared memory busy and block the next
		// start.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-s.done
		err = fmt.Errorf("pgserver: postgres did not shut down within %s; killed it", stopTimeout)
	}
	s.logger.Info("embedded postgres stopped", "dir", s.dir, "port", s.port)
	return err
}

var dbNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// EnsureDatabase creates database name unless it already exists, so the
// application can run its migrations against a database of its own rather
// than the maintenance database "postgres".
func (s *Server) EnsureDatabase(ctx context.Context, name string) error {
	// Identifiers cannot be bound as parameters, so the name ends up in SQL
	// text; restricting it keeps that safe and avoids case-folding surprises.
	if !dbNameRE.MatchString(name) || len(name) > 63 {
		return fmt.Errorf("pgserver: invalid database name %q (want [a-z_][a-z0-9_]*, at most 63 bytes)", name)
	}
	db, err := sql.Open("postgres", s.DSN("postgres"))
	if err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	defer db.Close()
	var exists bool
	if err := db.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("pgserver: look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = db.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name))
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.SQLState() == "42P04" {
		// duplicate_database: a concurrent caller won the race, which is
		// exactly the outcome we wanted.
		return nil
	}
	if err != nil {
		return fmt.Errorf("pgserver: create database %s: %w", name, err)
	}
	return nil
}

// bindError marks a start failure caused by the listen port being taken.
type bindError struct{ err error }

func (e *bindError) Error() string { return e.err.Error() }
func (e *bindError) Unwrap() error { return e.err }

// launch starts the postmaster on a fresh port and waits until it accepts
// connections. On failure the child is gone and s is not usable.
func (s *Server) launch(ctx context.Context, bins binaries, acct *account) error {
	port, err := freeport.Get()
	if err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	s.port = port

	logFile, logStart, err := openLog(s.logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(bins.postgres,
		"-D", s.dir,
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		// No Unix socket: its default directory (/var/run/postgresql) may
		// be missing or belong to a system cluster, and we only use TCP.
		"-c", "unix_socket_directories=",
		"-c", "fsync=on",
	)
	cmd.Dir = s.dir
	cmd.Env = childEnv()
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Own process group: a terminal Ctrl-C is delivered to the foreground
	// group, and postgres must not see it directly — our program receives
	// it and calls Stop, which keeps shutdown ordered.
	cmd.SysProcAttr = sysProcAttr(acct)
	err = cmd.Start()
	logFile.Close() // the child holds its own descriptor
	if err != nil {
		return fmt.Errorf("pgserver: start %s: %w", bins.postgres, err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()

	if err := s.waitReady(ctx); err != nil {
		select {
		case <-s.done:
			tail := logTail(s.logPath, logStart)
			err = fmt.Errorf("pgserver: postgres exited during startup (%v); last lines of %s:\n%s",
				s.waitErr, s.logPath, tail)
			if strings.Contains(tail, "could not bind") || strings.Contains(tail, "could not create any TCP/IP sockets") {
				return &bindError{err}
			}
			return err
		default:
		}
		_ = s.Stop()
		return fmt.Errorf("%w; last lines of %s:\n%s", err, s.logPath, logTail(s.logPath, logStart))
	}
	return nil
}

// waitReady pings until the server answers. A successful TCP accept is not
// enough: postgres accepts connections while still in recovery and rejects
// them with "the database system is starting up".
func (s *Server) waitReady(ctx context.Context) error {
	db, err := sql.Open("postgres", s.DSN("postgres"))
	if err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var lastErr error
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		lastErr = db.PingContext(pctx)
		cancel()
		if lastErr == nil {
			return nil
		}
		select {
		case <-s.done:
			return errors.New("pgserver: postgres exited")
		case <-ctx.Done():
			return fmt.Errorf("pgserver: waiting for postgres: %w", ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("pgserver: postgres not ready after %s: %w", readyTimeout, lastErr)
		case <-tick.C:
		}
	}
}

// initCluster runs initdb. When dir does not exist yet, it initializes a
// sibling directory and renames it into place, so that the sentinel file
// only ever appears in dir for a complete cluster even if we are killed
// mid-initdb.
func (s *Server) initCluster(ctx context.Context, bins binaries, acct *account) error {
	target := s.dir
	entries, err := os.ReadDir(s.dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		target = filepath.Join(filepath.Dir(s.dir), "."+filepath.Base(s.dir)+".initdb")
		if err := os.RemoveAll(target); err != nil {
			return fmt.Errorf("pgserver: remove leftover %s: %w", target, err)
		}
		// Created by us, not initdb: as root the server user cannot create
		// entries in a root-owned parent.
		if err := os.Mkdir(target, 0o700); err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
	case err != nil:
		return fmt.Errorf("pgserver: read data directory: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("pgserver: %s is not empty but holds no PostgreSQL cluster (no %s); "+
			"remove it or point the data directory elsewhere", s.dir, clusterSentinel)
	}
	if acct != nil {
		if err := os.Chown(target, int(acct.uid), int(acct.gid)); err != nil {
			return fmt.Errorf("pgserver: chown %s: %w", target, err)
		}
	}

	// The password goes through a file rather than argv so it never shows
	// up in ps output. It lives beside the data directory because that
	// location is already known to be reachable by the server user.
	pw, err := os.CreateTemp(filepath.Dir(s.dir), ".initdb-pw-*")
	if err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	defer os.Remove(pw.Name())
	_, werr := pw.WriteString(s.password + "\n")
	cerr := pw.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("pgserver: write initdb password file: %w", err)
	}
	if acct != nil {
		if err := os.Chown(pw.Name(), int(acct.uid), int(acct.gid)); err != nil {
			return fmt.Errorf("pgserver: chown %s: %w", pw.Name(), err)
		}
	}

	run := func(locale string) (string, error) {
		logFile, logStart, err := openLog(s.logPath)
		if err != nil {
			return "", err
		}
		defer logFile.Close()
		cmd := exec.CommandContext(ctx, bins.initdb,
			"-D", target,
			"--encoding=UTF8",
			locale,
			"--username="+superuser,
			"--auth-host=scram-sha-256",
			"--auth-local=scram-sha-256",
			"--pwfile="+pw.Name(),
		)
		cmd.Dir = target
		cmd.Env = childEnv()
		cmd.Stdout = logFile
		cmd.Stderr = logFile
		cmd.SysProcAttr = sysProcAttr(acct)
		// initdb runs postgres children; on cancellation take them down too.
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		err = cmd.Run()
		return logTail(s.logPath, logStart), err
	}

	s.logger.Info("initializing embedded postgres cluster", "dir", s.dir, "user", s.userName(acct))
	tail, err := run("--locale=C.UTF-8")
	if err != nil && ctx.Err() == nil {
		// C.UTF-8 is missing on some systems (older macOS, minimal
		// images); the C locale is always there and only affects sorting.
		s.logger.Warn("initdb with C.UTF-8 locale failed, retrying with --no-locale", "err", err)
		tail, err = run("--no-locale")
	}
	if err != nil {
		return fmt.Errorf("pgserver: initdb failed: %w; last lines of %s:\n%s", err, s.logPath, tail)
	}
	if target != s.dir {
		if err := os.Rename(target, s.dir); err != nil {
			return fmt.Errorf("pgserver: move new cluster into place: %w", err)
		}
	}
	return nil
}

func (s *Server) userName(acct *account) string {
	if acct != nil {
		return acct.name
	}
	return s.user
}

// stopStalePostmaster shuts down a postmaster left running on our data
// directory by an earlier run that died without calling Stop. Without this
// the new server would refuse to start ("lock file already exists"), which
// would make every crash of the program require manual cleanup.
func (s *Server) stopStalePostmaster() error {
	pidPath := filepath.Join(s.dir, "postmaster.pid")
	data, err := os.ReadFile(pidPath)
	if err != nil {
		return nil // no pid file: nothing running
	}
	lines := strings.Split(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || pid <= 0 {
		return nil
	}
	pidFileDir := ""
	if len(lines) > 1 {
		pidFileDir = strings.TrimSpace(lines[1])
	}
	// The pid may have been reused by an unrelated process since the crash;
	// only a postgres serving this very directory is ours to stop. Anything
	// else we leave alone: postgres removes a stale pid file by itself.
	if !isPostmasterFor(pid, s.dir, pidFileDir) {
		return nil
	}
	s.logger.Warn("stopping stale embedded postgres left by an earlier run", "pid", pid, "dir", s.dir)
	if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return fmt.Errorf("pgserver: stop stale postgres (pid %d) on %s: %w", pid, s.dir, err)
	}
	if waitGone(pid, stopTimeout) {
		return nil
	}
	// Immediate shutdown still lets the postmaster take its backends down,
	// unlike SIGKILL which would leave them holding shared memory.
	_ = syscall.Kill(pid, syscall.SIGQUIT)
	if waitGone(pid, 5*time.Second) {
		return nil
	}
	return fmt.Errorf("pgserver: stale postgres (pid %d) on %s did not exit; stop it by hand", pid, s.dir)
}

// isPostmasterFor reports whether pid is a postgres server whose data
// directory is dir. It needs /proc; elsewhere it says no, which just means
// postgres itself will report the conflict.
func isPostmasterFor(pid int, dir, pidFileDir string) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(raw) == 0 {
		return false
	}
	args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	if base := filepath.Base(args[0]); base != "postgres" && base != "postmaster" {
		return false
	}
	dataDir := pidFileDir // pg_ctl-style starts pass the directory via PGDATA
	for i := 1; i < len(args); i++ {
		if args[i] == "-D" && i+1 < len(args) {
			dataDir = args[i+1]
		} else if strings.HasPrefix(args[i], "-D") {
			dataDir = args[i][2:]
		}
	}
	return sameDir(dataDir, dir)
}

func sameDir(a, b string) bool {
	if a == "" || !filepath.IsAbs(a) {
		return false
	}
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}

// waitGone polls until pid has exited. A zombie counts as gone: if it was
// our own child its reaper just hasn't run yet, and a zombie holds no
// ports, files or shared memory.
func waitGone(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) || isZombie(pid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
}

func isZombie(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The command name is parenthesised and may contain spaces; the state
	// is the first field after the closing parenthesis.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return false
	}
	return stat[i+2] == 'Z'
}

// defaultBinGlobs are the usual package-manager locations, tried when
// neither PATH nor pg_config lead to the server binaries (Debian keeps them
// off PATH on purpose).
var defaultBinGlobs = []string{
	"/usr/lib/postgresql/*/bin",
	"/usr/local/opt/postgresql*/bin",
	"/opt/homebrew/opt/postgresql*/bin",
}

const installHint = "install the PostgreSQL server: Debian/Ubuntu `apt-get install postgresql`, " +
	"Fedora `dnf install postgresql-server`, macOS `brew install postgresql@16` " +
	"— or set DATABASE_URL to an existing server"

// findBinaries takes its lookups as parameters so tests can simulate a
// machine without PostgreSQL.
func findBinaries(lookPath func(string) (string, error), bindir func() string, globs []string) (binaries, error) {
	pg, err1 := lookPath("postgres")
	initdb, err2 := lookPath("initdb")
	if err1 == nil && err2 == nil {
		return binaries{postgres: pg, initdb: initdb}, nil
	}
	var candidates []string
	if d := bindir(); d != "" {
		candidates = append(candidates, d)
	}
	var globbed []string
	for _, g := range globs {
		m, _ := filepath.Glob(g)
		globbed = append(globbed, m...)
	}
	// Highest major version first: a machine with several installed
	// versions should get the newest server, matching what a fresh
	// `apt-get install postgresql` would pick.
	sort.SliceStable(globbed, func(i, j int) bool { return pathVersion(globbed[i]) > pathVersion(globbed[j]) })
	candidates = append(candidates, globbed...)
	for _, d := range candidates {
		b := binaries{postgres: filepath.Join(d, "postgres"), initdb: filepath.Join(d, "initdb")}
		if isExecutable(b.postgres) && isExecutable(b.initdb) {
			return b, nil
		}
	}
	return binaries{}, fmt.Errorf("pgserver: %w (looked on PATH, in pg_config --bindir and in %s); %s",
		ErrNoBinaries, strings.Join(globs, ", "), installHint)
}

var versionRE = regexp.MustCompile(`\d+(\.\d+)?`)

// pathVersion extracts the version from paths like /usr/lib/postgresql/15/bin
// or /opt/homebrew/opt/postgresql@16/bin; unversioned paths sort last.
func pathVersion(p string) float64 {
	m := versionRE.FindString(filepath.Base(filepath.Dir(p)))
	v, _ := strconv.ParseFloat(m, 64)
	return v
}

func pgConfigBindir() string {
	out, err := exec.Command("pg_config", "--bindir").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// serverAccount picks the account to run PostgreSQL as. initdb and postgres
// refuse to run as root (a compromised server must not own the machine), so
// root hands them to an unprivileged account.
func serverAccount() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		u, err = user.Lookup("nobody")
	}
	if err != nil {
		return nil, fmt.Errorf("pgserver: running as root, but neither a postgres nor a nobody user exists "+
			"to run PostgreSQL as (it refuses root); create a postgres user or set DATABASE_URL: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("pgserver: user %s: %w", u.Username, err)
	}
	a := &account{name: u.Username, uid: uint32(uid), gid: uint32(gid)}
	gids, _ := u.GroupIds()
	for _, g := range gids {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			a.groups = append(a.groups, uint32(n))
		}
	}
	return a, nil
}

func currentUserName() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return strconv.Itoa(os.Geteuid())
}

func sysProcAttr(acct *account) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true}
	if acct != nil {
		attr.Credential = &syscall.Credential{Uid: acct.uid, Gid: acct.gid, Groups: acct.groups}
	}
	return attr
}

// childEnv drops PG* variables: a developer's PGDATA, PGPORT or PGOPTIONS
// pointing at some other cluster must not leak into ours.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env
}

// checkTraversable verifies that acct can search every directory from dir
// up to the root. Checking up front turns an obscure initdb/postgres
// "permission denied" into advice; the typical trap is a checkout under
// /root, which is 0700.
func checkTraversable(dir string, acct *account) error {
	paths := ancestors(dir)
	if real, err := filepath.EvalSymlinks(dir); err == nil && real != dir {
		paths = append(paths, ancestors(real)...)
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			continue
		}
		if canSearch(fi.Mode().Perm(), st.Uid, st.Gid, acct) {
			continue
		}
		return fmt.Errorf("pgserver: PostgreSQL must run as user %q because initdb refuses root, "+
			"but that user cannot enter directory %s (mode %04o, owner uid %d gid %d); "+
			"fix with `chmod o+x %s`, put the data directory somewhere that user can reach, "+
			"or set DATABASE_URL to an existing server", acct.name, p, fi.Mode().Perm(), st.Uid, st.Gid, p)
	}
	return nil
}

func ancestors(dir string) []string {
	var out []string
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		out = append(out, p)
		if p == filepath.Dir(p) {
			return out
		}
	}
}

// canSearch applies the kernel's rule: exactly one of the owner, group or
// other permission classes applies, the first that matches.
func canSearch(perm fs.FileMode, uid, gid uint32, acct *account) bool {
	if uid == acct.uid {
		return perm&0o100 != 0
	}
	inGroup := gid == acct.gid
	for _, g := range acct.groups {
		inGroup = inGroup || g == gid
	}
	if inGroup {
		return perm&0o010 != 0
	}
	return perm&0o001 != 0
}

func chownTree(dir string, acct *account) error {
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(acct.uid), int(acct.gid))
	})
	if err != nil {
		return fmt.Errorf("pgserver: hand %s to user %s: %w", dir, acct.name, err)
	}
	return nil
}

// loadOrCreatePassword keeps the superuser password beside the data
// directory, owned by the invoking user, so the program can always read it
// back without needing the server user's rights.
func loadOrCreatePassword(path string, clusterExists bool) (string, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		pw := strings.TrimSpace(string(data))
		if pw == "" {
			return "", fmt.Errorf("pgserver: password file %s is empty", path)
		}
		return pw, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("pgserver: read password: %w", err)
	}
	if clusterExists {
		return "", fmt.Errorf("pgserver: %s is missing, so the superuser password of the existing cluster is unknown; "+
			"restore the file or remove the data directory to start afresh", path)
	}
	buf := make([]byte, 24)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("pgserver: %w", err)
	}
	pw := hex.EncodeToString(buf) // hex: no escaping needed in URLs or pwfile
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(pw+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("pgserver: write password: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("pgserver: write password: %w", err)
	}
	return pw, nil
}

// openLog opens the shared log for appending and returns where this run's
// output begins, so error messages quote only what this run wrote.
func openLog(path string) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("pgserver: open log: %w", err)
	}
	off, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("pgserver: open log: %w", err)
	}
	return f, off, nil
}

// logTail returns the last lines written to path since offset.
func logTail(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return "(log unavailable: " + err.Error() + ")"
	}
	defer f.Close()
	const maxRead = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size()-offset > maxRead {
		offset = fi.Size() - maxRead
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	data, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > logTailLines {
		lines = lines[len(lines)-logTailLines:]
	}
	return strings.Join(lines, "\n")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// ClientTool finds one of PostgreSQL's client programs (pg_dump, pg_restore) where Start
// finds the server's, but newest installed version first: a dump must be taken by a pg_dump
// at least as new as the server, so the newest one installed is the best candidate; PATH
// (on Debian, a wrapper choosing a version) comes last.
func ClientTool(name string) (string, error) {
	var dirs []string
	for _, g := range defaultBinGlobs {
		m, _ := filepath.Glob(g)
		dirs = append(dirs, m...)
	}
	sort.SliceStable(dirs, func(i, j int) bool { return pathVersion(dirs[i]) > pathVersion(dirs[j]) })
	if d := pgConfigBindir(); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		if p := filepath.Join(d, name); isExecutable(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("pgserver: %s: %w (looked in %s, pg_config --bindir and on PATH); install the PostgreSQL client",
		name, ErrNoBinaries, strings.Join(defaultBinGlobs, ", "))
}
