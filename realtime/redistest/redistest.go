// Package redistest gives tests a Redis server to talk to.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	// No persistence: the server is disposable and must not write files.
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning")
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}

	deadline := time.Now().Add(10 * time.Second)
	for {
		if ping(addr) == nil {
			t.Cleanup(stop)
			return addr, nil
		}
		select {
		case <-exited:
			return "", fmt.Errorf("redis-server exited: %s", strings.TrimSpace(out.String()))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return "", fmt.Errorf("redis-server on %s did not answer PING", addr)
		}
	}
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
