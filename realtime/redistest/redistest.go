// Package redistest gives tests a Redis server to talk to.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dreamseed/messenger/internal/daemon"
	"github.com/dreamseed/messenger/internal/freeport"
)

// EnvURL names the environment variable that points tests at an existing
// Redis, e.g. redis://127.0.0.1:6379/0.
const EnvURL = "TEST_REDIS_URL"

// URL returns the URL of a Redis for t: $TEST_REDIS_URL when set, otherwise a
// throwaway redis-server started on a free port and stopped when t ends. It
// skips t when neither is available, so suites stay green on machines
// without Redis.
func URL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skipf("redistest: %s is unset and redis-server is not on PATH", EnvURL)
	}
	// Picking a free port and binding it later races with other processes;
	// a few attempts make a collision practically harmless.
	var lastErr error
	for range 5 {
		addr, err := start(t, bin)
		if err == nil {
			return "redis://" + addr + "/0"
		}
		lastErr = err
	}
	t.Fatalf("redistest: cannot start redis-server: %v", lastErr)
	return ""
}

func start(t testing.TB, bin string) (string, error) {
	port, err := freeport.Get()
	if err != nil {
		return "", err
	}
	stop, err := run(bin, port)
	if err != nil {
		return "", err
	}
	t.Cleanup(stop)
	return fmt.Sprintf("127.0.0.1:%d", port), nil
}

// run starts redis-server on port and answers once it answers PING, with the function
// that kills it.
func run(bin string, port int) (stop func(), err error) {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	// No persistence: the server is disposable and must not write files.
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning")
	p, err := daemon.Start(cmd, 5*time.Millisecond, 10*time.Second, func() bool { return ping(addr) == nil })
	if err != nil {
		return nil, err
	}
	return p.Kill, nil
}

// Server is a private redis-server that a test can restart.
type Server struct {
	// URL is the server's address, redis://127.0.0.1:PORT/0; it stays across restarts.
	URL string

	t    testing.TB
	bin  string
	port int
	mu   sync.Mutex
	stop func()
}

// Start starts a private redis-server on a free port, stopped when t ends; it skips t
// when redis-server is not on PATH. It never uses $TEST_REDIS_URL: a test that restarts
// Redis must not restart one that others share.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redistest: redis-server is not on PATH")
	}
	var lastErr error
	for range 5 {
		port, err := freeport.Get()
		if err != nil {
			t.Fatal(err)
		}
		stop, err := run(bin, port)
		if err != nil {
			lastErr = err
			continue
		}
		s := &Server{URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port), t: t, bin: bin, port: port, stop: stop}
		t.Cleanup(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.stop != nil {
				s.stop()
			}
		})
		return s
	}
	t.Fatalf("redistest: cannot start redis-server: %v", lastErr)
	return nil
}

// Restart kills the server, as a crash or a restart by an operator would end it (it keeps
// no data, so everything is lost), waits pause, and starts a new one on the same port; it
// returns once the new one answers PING. down is how long nothing listened.
func (s *Server) Restart(pause time.Duration) (down time.Duration) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stop()
	s.stop = nil
	start := time.Now()
	time.Sleep(pause)
	var err error
	for range 50 { // the port may stay busy for a moment
		if s.stop, err = run(s.bin, s.port); err == nil {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("redistest: cannot restart redis-server on port %d: %v", s.port, err)
	return 0
}

// ping speaks raw RESP so this package needs no Redis client.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}
