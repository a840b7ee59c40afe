package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dreamseed/messenger/internal/daemon"
	"github.com/dreamseed/messenger/internal/freeport"
)

// ClusterNodes is how many masters StartCluster starts.
const ClusterNodes = 3

// Cluster is a private Redis Cluster.
type Cluster struct {
	// URL names every node, in the form go-redis's ParseClusterURL reads:
	// redis://127.0.0.1:P1?addr=127.0.0.1:P2&addr=127.0.0.1:P3.
	URL string
	// Addrs are the nodes' host:port.
	Addrs []string

	procs map[string]*daemon.Process
}

// ClusterOptions shape a cluster StartClusterWith starts.
type ClusterOptions struct {
	Masters  int           // ClusterNodes when 0
	Replicas int           // per master
	Timeout  time.Duration // cluster-node-timeout: how soon a silent master fails over; Redis's 15 s when 0
}

// StartCluster starts ClusterNodes redis-server processes in cluster mode on free ports,
// their files in a temporary directory, joins them with `redis-cli --cluster create`
// (the 16384 slots split evenly, no replicas) and returns once every node reports
// cluster_state:ok. The processes are killed when t ends. It skips t when redis-server
// or redis-cli is not on PATH; it never uses $TEST_REDIS_URL.
func StartCluster(t testing.TB) *Cluster { return StartClusterWith(t, ClusterOptions{}) }

// Kill kills the node at addr, as a crash would.
func (c *Cluster) Kill(addr string) { c.procs[addr].Kill() }

// StartClusterWith is StartCluster with o's masters, replicas and node timeout.
func StartClusterWith(t testing.TB, o ClusterOptions) *Cluster {
	t.Helper()
	if o.Masters == 0 {
		o.Masters = ClusterNodes
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redistest: redis-server is not on PATH: no Redis Cluster to test against")
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redistest: redis-cli is not on PATH: cannot form a Redis Cluster")
	}
	dir := t.TempDir()
	c := &Cluster{procs: map[string]*daemon.Process{}}
	var extra []string
	if o.Timeout > 0 {
		extra = []string{"--cluster-node-timeout", fmt.Sprint(o.Timeout.Milliseconds())}
	}
	for i := range o.Masters * (1 + o.Replicas) {
		addr, p, err := startClusterNode(t, bin, filepath.Join(dir, fmt.Sprintf("node%d", i)), extra)
		if err != nil {
			t.Fatalf("redistest: cluster node %d: %v", i, err)
		}
		c.Addrs = append(c.Addrs, addr)
		c.procs[addr] = p
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", fmt.Sprint(o.Replicas), "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	if err := c.WaitOK(c.Addrs, 20*time.Second); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	// A replica that has not synchronised yet could not take over.
	deadline := time.Now().Add(20 * time.Second)
	for _, addr := range c.Addrs {
		for {
			info, err := command(addr, "INFO", "replication")
			if err == nil && (strings.Contains(info, "role:master") || strings.Contains(info, "master_link_status:up")) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: replica %s not synchronised: %v %s", addr, err, info)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	c.URL = "redis://" + c.Addrs[0]
	for i, addr := range c.Addrs[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		c.URL += sep + "addr=" + addr
	}
	return c
}

// WaitOK waits up to within for every node of addrs to report cluster_state:ok.
func (c *Cluster) WaitOK(addrs []string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for _, addr := range addrs {
		for {
			info, err := command(addr, "CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("cluster node %s not ok after %v: %v %s", addr, within, err, info)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// startClusterNode starts one cluster-enabled redis-server with its files in dir, on a
// free port and a free cluster bus port, a few attempts since another process may take
// a port between its choice and the bind.
func startClusterNode(t testing.TB, bin, dir string, extra []string) (string, *daemon.Process, error) {
	var lastErr error
	for range 5 {
		port, err := freeport.Get()
		if err != nil {
			return "", nil, err
		}
		bus, err := freeport.Get()
		if err != nil {
			return "", nil, err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-port", fmt.Sprint(bus),
			"--cluster-config-file", fmt.Sprintf("%s-nodes.conf", dir),
			"--dir", filepath.Dir(dir), "--dbfilename", filepath.Base(dir)+".rdb",
			"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning")
		cmd.Args = append(cmd.Args, extra...)
		p, err := daemon.Start(cmd, 5*time.Millisecond, 10*time.Second, func() bool { return ping(addr) == nil })
		if err != nil {
			lastErr = err
			continue
		}
		t.Cleanup(p.Kill)
		return addr, p, nil
	}
	return "", nil, lastErr
}

// command sends one command in RESP and answers a bulk or simple string reply.
func command(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	req := fmt.Sprintf("*%d\r\n", len(args))
	for _, a := range args {
		req += fmt.Sprintf("$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(req)); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	switch {
	case strings.HasPrefix(line, "+"):
		return strings.TrimSpace(line[1:]), nil
	case strings.HasPrefix(line, "$"):
		var n int
		if _, err := fmt.Sscanf(line, "$%d", &n); err != nil || n < 0 {
			return "", fmt.Errorf("unexpected reply %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	default:
		return "", fmt.Errorf("unexpected reply %q", line)
	}
}
