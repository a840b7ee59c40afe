package e2e

// The deployment test: three messenger processes behind nginx running the configuration
// that ships (deploy/nginx/messenger.conf), clients over HTTPS and HTTP/2, and what an
// operator does to such a setup while it is busy.

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dreamseed/messenger/internal/syncbuf"
	"github.com/dreamseed/messenger/realtime/redistest"
)

// nginxProxy is an nginx running deploy/nginx/messenger.conf, unchanged, from a prefix
// directory of its own, with the upstream list and the listener the test writes beside it.
type nginxProxy struct {
	t      testing.TB
	bin    string
	prefix string // the -p directory: pid, logs, temporary files
	conf   string // the copy of messenger.conf
	URL    string // https://localhost:PORT
	certs  *x509.CertPool
	cmd    *exec.Cmd
	logs   *syncbuf.Buffer
	done   chan struct{}
}

// startNginx runs nginx in front of upstreams ("127.0.0.1:PORT"). Without nginx the test
// is skipped, or fails when $CI is set (CI installs Debian's nginx).
func startNginx(t *testing.T, upstreams ...string) *nginxProxy {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/nginx"); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("no nginx (Debian package nginx): the deployment test needs it")
			}
			t.Skip("no nginx on PATH or in /usr/sbin (apt-get install nginx): the deployment test needs it")
		}
	}
	// A directory its unprivileged workers may enter (t.TempDir's parent is private).
	prefix, err := os.MkdirTemp("", "messenger-nginx-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(prefix) })
	for _, d := range []string{"conf/tls", "logs", "temp"} {
		if err := os.MkdirAll(filepath.Join(prefix, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(prefix, 0o755); err != nil {
		t.Fatal(err)
	}
	shipped, err := os.ReadFile("../deploy/nginx/messenger.conf")
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	p := &nginxProxy{t: t, bin: bin, prefix: prefix, conf: filepath.Join(prefix, "conf", "messenger.conf"),
		URL: "https://localhost:" + strconv.Itoa(port), logs: &syncbuf.Buffer{}, done: make(chan struct{})}
	p.certs = writeSelfSigned(t, filepath.Join(prefix, "conf", "tls"))
	var upstream strings.Builder
	for _, u := range upstreams {
		fmt.Fprintf(&upstream, "server %s max_fails=1 fail_timeout=5s;\n", u)
	}
	site := fmt.Sprintf("listen 127.0.0.1:%d ssl http2;\nserver_name localhost;\nssl_certificate tls/cert.pem;\nssl_certificate_key tls/key.pem;\n", port)
	for name, text := range map[string]string{"messenger.conf": string(shipped), "upstream.conf": upstream.String(), "site.conf": site} {
		if err := os.WriteFile(filepath.Join(prefix, "conf", name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	global := "daemon off;"
	if os.Geteuid() == 0 {
		global += " user www-data;" // as in production: workers without root
	}
	p.cmd = exec.Command(bin, "-p", prefix+"/", "-c", p.conf, "-g", global)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGQUIT) // graceful: as an operator stops it
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			errs, _ := os.ReadFile(filepath.Join(prefix, "logs", "error.log"))
			t.Logf("nginx output:\n%s\nerror.log:\n%s", p.logs.String(), errs)
		}
	})
	client := p.client(false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get(p.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("nginx exited: %s", p.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx at %s does not answer /healthz: %v; output %s", p.URL, err, p.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// client answers an HTTPS client that trusts the test's certificate: HTTP/2 unless h1.
func (p *nginxProxy) client(h1 bool) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: p.certs},
		ForceAttemptHTTP2:   !h1,
		DisableCompression:  true,
		MaxIdleConnsPerHost: 64,
	}
	if h1 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		tr.ExpectContinueTimeout = 5 * time.Second
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// reload is what an operator runs after changing the configuration.
func (p *nginxProxy) reload() {
	p.t.Helper()
	if out, err := exec.Command(p.bin, "-p", p.prefix+"/", "-c", p.conf, "-s", "reload").CombinedOutput(); err != nil {
		p.t.Fatalf("nginx -s reload: %v: %s", err, out)
	}
}

// writeSelfSigned writes cert.pem and key.pem for localhost into dir and answers a pool
// that trusts the certificate.
func writeSelfSigned(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("cert.pem", "CERTIFICATE", der)
	write("key.pem", "EC PRIVATE KEY", keyDER)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// deployDuration is how long the test sends: a minute, or $DEPLOY_TEST_DURATION.
func deployDuration(t *testing.T) time.Duration {
	t.Helper()
	v := os.Getenv("DEPLOY_TEST_DURATION")
	if v == "" {
		return time.Minute
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 10*time.Second {
		t.Fatalf("DEPLOY_TEST_DURATION=%q: want a duration of at least 10s", v)
	}
	return d
}

// streamsOpen reads messenger_streams from a process's metrics.
func streamsOpen(s *server) int {
	resp, err := http.Get(s.MetricsURL)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "messenger_streams "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return int(n)
		}
	}
	return -1
}

// TestDeployHeaders: what nginx with the shipped configuration does to answers. A page
// arrives gzip'ed over HTTP/2; the event stream arrives neither compressed nor buffered
// (its first bytes, and a message sent after it opened, within a second); a hashed static
// asset keeps its year-long cache header; a body over the limits is refused with 413
// before it reaches the messenger.
func TestDeployHeaders(t *testing.T) {
	s := startServer(t, "MESSENGER_TRUSTED_PROXIES=127.0.0.1")
	p := startNginx(t, s.Addr)
	client := p.client(false)
	get := func(path string, headers ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, p.URL+path, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		for _, h := range headers {
			k, v, _ := strings.Cut(h, ":")
			req.Header.Set(k, strings.TrimSpace(v))
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s through nginx: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}

	resp, _ := get("/dev/login")
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("page: %s over %s, Content-Encoding %q; want 200 over HTTP/2, gzip", resp.Status, resp.Proto, resp.Header.Get("Content-Encoding"))
	}
	_, page := get("/dev/login", "Accept-Encoding: identity")
	asset := regexp.MustCompile(`/static/app\.css\?v=[^"]+`).FindString(page)
	if asset == "" {
		t.Fatalf("the page links no hashed app.css: %.300s", page)
	}
	resp, _ = get(asset)
	if cc := resp.Header.Get("Cache-Control"); resp.StatusCode != http.StatusOK || !strings.Contains(cc, "max-age=31536000") || !strings.Contains(cc, "immutable") {
		t.Errorf("%s: %s, Cache-Control %q; want a year, immutable", asset, resp.Status, cc)
	}
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("%s: Content-Encoding %q, want gzip (nginx compresses CSS)", asset, resp.Header.Get("Content-Encoding"))
	}

	// The stream: first bytes and a live message, each within a second.
	org := "org-deploy-h-" + deliveryNonce()
	teacher, parent := newUser(t, "deploy-h-t", "교사", org, "teacher"), newUser(t, "deploy-h-p", "학부모", org, "parent")
	api := &apiClient{t: t, base: p.URL, user: teacher, http: client}
	conv := api.directWith(&apiClient{t: t, base: p.URL, user: parent, http: client})
	req, _ := http.NewRequest(http.MethodGet, p.URL+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+parent.Token)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Accept-Encoding", "gzip")
	opened := time.Now()
	resp, err := (&http.Client{Transport: client.Transport}).Do(req)
	if err != nil {
		t.Fatalf("events through nginx: %v", err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Errorf("events: Content-Type %q, Content-Encoding %q; want an uncompressed event stream", resp.Header.Get("Content-Type"), resp.Header.Get("Content-Encoding"))
	}
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil || time.Since(opened) > time.Second {
		t.Errorf("events: first line after %s (%v), want within a second", time.Since(opened).Round(time.Millisecond), err)
	}
	body := "버퍼 없이 " + runNonce()
	sent := time.Now()
	api.mustSend(conv.ID, body, uuid.NewString())
	arrived := make(chan time.Duration, 1)
	go func() {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if strings.Contains(line, body) {
				arrived <- time.Since(sent)
				return
			}
		}
	}()
	select {
	case d := <-arrived:
		t.Logf("a message reached the stream through nginx %s after its send began", d.Round(time.Millisecond))
	case <-time.After(time.Second):
		t.Error("a message sent did not reach the stream through nginx within a second: buffered?")
	}

	// Bodies over the limits: nginx answers 413 from the Content-Length alone.
	h1 := p.client(true)
	for _, c := range []struct {
		path string
		size int64
	}{
		{fmt.Sprintf("/api/v1/conversations/%d/messages", conv.ID), 2 << 20},
		{fmt.Sprintf("/api/v1/conversations/%d/files", conv.ID), 102 << 20},
	} {
		req, _ := http.NewRequest(http.MethodPost, p.URL+c.path, io.LimitReader(zeros{}, c.size))
		req.ContentLength = c.size
		req.Header.Set("Authorization", "Bearer "+teacher.Token)
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Expect", "100-continue")
		resp, err := h1.Do(req)
		if err != nil {
			t.Errorf("POST %s of %d bytes: %v", c.path, c.size, err)
			continue
		}
		page, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		// nginx's own page, not the messenger's JSON: refused before it reached a process.
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(page), "<center>nginx</center>") {
			t.Errorf("POST %s of %d bytes: %s %q, want 413 from nginx", c.path, c.size, resp.Status, firstN([]byte(page), 200))
		}
	}
}

// deployPhase is an operator's action during the deployment test and when it began.
type deployPhase struct {
	name string
	at   time.Time
}

// phaseAt names the last phase begun at or before t.
func phaseAt(phases []deployPhase, t time.Time) string {
	name := phases[0].name
	for _, ph := range phases {
		if !ph.at.After(t) {
			name = ph.name
		}
	}
	return name
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

// TestDeployBehindNginx: three processes on one database and a Redis of their own behind
// nginx; 200 clients hold event streams through it over HTTPS and HTTP/2 while one sender
// per group sends steadily through it too. Meanwhile one process is killed with SIGKILL
// (its clients reconnect to the two survivors) and started again on its port, nginx
// reloads, and Redis restarts. At the end every client has every message of its group
// exactly once and in order, as the database holds them.
func TestDeployBehindNginx(t *testing.T) {
	const (
		groups  = 20
		members = 10 // clients: groups × members
		every   = 800 * time.Millisecond
	)
	duration := deployDuration(t)
	if _, err := exec.LookPath("nginx"); err != nil {
		if _, err := os.Stat("/usr/sbin/nginx"); err != nil && os.Getenv("CI") == "" {
			t.Skip("no nginx on PATH or in /usr/sbin (apt-get install nginx): the deployment test needs it")
		}
	}
	rs := redistest.Start(t) // private: the test restarts it
	// Three pools of 12 and three job pools of 5 fit in PostgreSQL's default 100
	// connections beside other tests.
	env := []string{"REDIS_URL=" + rs.URL, "MESSENGER_TRUSTED_PROXIES=127.0.0.1", "MESSENGER_JOB_WORKERS=1", "MESSENGER_DB_MAX_CONNS=12"}
	procs := []*server{startServer(t, env...)}
	for range 2 {
		procs = append(procs, startServerOn(t, procs[0], env...))
	}
	p := startNginx(t, procs[0].Addr, procs[1].Addr, procs[2].Addr)
	apiHTTP := p.client(false)

	nonce := deliveryNonce()
	users := make([][]testUser, groups)
	convs := make([]int64, groups)
	for g := range groups {
		org := fmt.Sprintf("org-deploy-%s-%d", nonce, g)
		var subs []string
		for m := range members {
			role := "student"
			if m == 0 {
				role = "teacher"
			}
			u := newUser(t, fmt.Sprintf("deploy-%d-%d", g, m), fmt.Sprintf("회원 %d-%d", g, m), org, role)
			(&apiClient{t: t, base: p.URL, user: u, http: apiHTTP}).me()
			users[g] = append(users[g], u)
			if m > 0 {
				subs = append(subs, u.Sub)
			}
		}
		convs[g] = (&apiClient{t: t, base: p.URL, user: users[g][0], http: apiHTTP}).createConversation("group", fmt.Sprintf("배포 반 %d", g+1), subs...).ID
	}
	var clients []*sseClient
	groupOf := map[*sseClient]int{}
	for g := range groups {
		for _, u := range users[g] {
			c := procs[0].newSSEClient(u)
			c.SetBase(p.URL)
			c.http = &http.Client{Transport: p.client(false).Transport} // a stream has no deadline
			c.apiHTTP = apiHTTP
			c.keepEvents = false
			c.Track(convs[g])
			clients = append(clients, c)
			groupOf[c] = g
		}
	}
	startClients(t, clients, 60*time.Second)
	open := func() (n int) {
		for _, s := range procs {
			if s.running() {
				n += max(streamsOpen(s), 0)
			}
		}
		return n
	}
	t.Logf("%d streams open through nginx, on the processes: %d, %d, %d", len(clients), streamsOpen(procs[0]), streamsOpen(procs[1]), streamsOpen(procs[2]))

	// One sender per group, the group's teacher, every 800 ms (25 messages a second in
	// all). A send that fails (its process killed under it) is sent again with the same
	// client_msg_id until it is answered: it is stored once either way.
	var (
		stopping  atomic.Bool
		wg        sync.WaitGroup
		sentMu    sync.Mutex
		sentAt    = map[[2]int64]time.Time{} // (conversation, seq) → when its first attempt began
		answered  = map[[2]int64]time.Time{} // … and when the sender had its answer
		retries   atomic.Int64
		attempted atomic.Int64
	)
	for g := range groups {
		api := &apiClient{t: t, base: p.URL, user: users[g][0], http: apiHTTP}
		wg.Go(func() {
			time.Sleep(time.Duration(g) * every / groups) // spread over the period
			for i := 0; !stopping.Load(); i++ {
				id, begun := uuid.NewString(), time.Now()
				attempted.Add(1)
				for {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					_, m, err := api.send(ctx, convs[g], fmt.Sprintf("%d번 공지 (%s)", i+1, nonce), id)
					cancel()
					if err == nil {
						sentMu.Lock()
						sentAt[[2]int64{convs[g], m.Seq}] = begun
						answered[[2]int64{convs[g], m.Seq}] = time.Now()
						sentMu.Unlock()
						break
					}
					retries.Add(1)
					time.Sleep(200 * time.Millisecond)
				}
				time.Sleep(time.Until(begun.Add(every)))
			}
		})
	}
	stopSends := func() {
		stopping.Store(true)
		wg.Wait()
	}
	defer stopSends()

	// The operator's minute: a kill, a restart of the killed process, a reload, a Redis
	// restart, spread over the run.
	start := time.Now()
	at := func(frac float64) { time.Sleep(time.Until(start.Add(time.Duration(frac * float64(duration))))) }
	// phases name what happened last before a send, for the longest gap after each.
	phases := []deployPhase{{"steady", start}}
	at(0.2)
	victim := procs[1]
	onVictim := streamsOpen(victim)
	victim.Kill()
	killed := time.Now()
	phases = append(phases, deployPhase{"kill", killed})
	t.Logf("SIGKILL to the process at %s, which held %d streams", victim.Addr, onVictim)
	// Its clients come back through nginx on the two survivors.
	deadline := time.Now().Add(20 * time.Second)
	for open() < len(clients) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	survivors := open()
	if survivors < len(clients) {
		t.Errorf("%s after the kill the survivors hold %d streams, want all %d", time.Since(killed).Round(time.Millisecond), survivors, len(clients))
	} else {
		t.Logf("%s after the kill the survivors hold all %d streams (%d and %d)", time.Since(killed).Round(time.Millisecond), survivors, streamsOpen(procs[0]), streamsOpen(procs[2]))
	}
	at(0.35)
	procs[1] = startServerOn(t, procs[0], append(env, "MESSENGER_ADDR="+victim.Addr)...)
	phases = append(phases, deployPhase{"restart", time.Now()})
	t.Logf("the killed process started again on %s", victim.Addr)
	at(0.5)
	p.reload()
	phases = append(phases, deployPhase{"reload", time.Now()})
	t.Log("nginx reloaded")
	at(0.7)
	phases = append(phases, deployPhase{"redis", time.Now()})
	down := rs.Restart(300 * time.Millisecond)
	t.Logf("Redis restarted (down %s)", down.Round(time.Millisecond))
	at(1)
	stopSends()
	sendTime := time.Since(start)

	// The database is the truth: each group's messages are seqs 1..last, one each.
	db, err := sql.Open("postgres", procs[0].env("DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// One connection, waited for: the machine's PostgreSQL may be at its connection limit
	// for a moment, with three processes' pools and other tests on it.
	var conn *sql.Conn
	for wait := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if conn, err = db.Conn(context.Background()); err == nil || time.Now().After(wait) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	last := make([]int64, groups)
	var stored int64
	for g, conv := range convs {
		var n, maxSeq, distinct int64
		if err := conn.QueryRowContext(context.Background(), `SELECT count(*), coalesce(max(seq), 0), count(DISTINCT client_msg_id) FILTER (WHERE kind = 'text')
			FROM messages WHERE conversation_id = $1`, conv).Scan(&n, &maxSeq, &distinct); err != nil {
			t.Fatal(err)
		}
		if n != maxSeq {
			t.Errorf("group %d: %d messages stored but the highest seq is %d", g+1, n, maxSeq)
		}
		last[g] = maxSeq
		stored += distinct
	}
	if stored != attempted.Load() {
		t.Errorf("%d messages sent (each with its own client_msg_id), %d stored", attempted.Load(), stored)
	}
	bodies := map[[2]int64]string{}
	rows, err := conn.QueryContext(context.Background(), `SELECT conversation_id, seq, body FROM messages WHERE conversation_id = ANY($1)`, "{"+strings.Trim(strings.Join(strings.Fields(fmt.Sprint(convs)), ","), "[]")+"}")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var conv, seq int64
		var body string
		if err := rows.Scan(&conv, &seq, &body); err != nil {
			t.Fatal(err)
		}
		bodies[[2]int64{conv, seq}] = body
	}
	rows.Close()

	waitStart := time.Now()
	for _, c := range clients {
		g := groupOf[c]
		c.WaitSeqs(convs[g], last[g], max(30*time.Second-time.Since(waitStart), time.Second))
	}
	time.Sleep(500 * time.Millisecond) // anything delivered twice would be in by now

	var (
		lost, dups, outOfOrder, wrong, reconnects, fetched, refused int
		gapBy                                                       = map[string]time.Duration{}
		worstGap, worstSilence                                      time.Duration
	)
	for _, c := range clients {
		g := groupOf[c]
		s := c.Conv(convs[g])
		// A catch-up after a resync fills a gap below what the stream brought already:
		// the client places it by seq. The stream itself never goes back.
		for _, o := range s.OutOfOrder {
			if strings.Contains(o, "(stream") {
				t.Errorf("%s: the stream went back: %s", c.user.Sub, o)
			}
		}
		if len(s.StreamDups) > 0 {
			t.Errorf("%s: the stream carried %d messages more than once: %v", c.user.Sub, len(s.StreamDups), firstN(s.StreamDups, 10))
		}
		// A stream that opens while Redis is down cannot subscribe and is answered 500;
		// the client comes back after its retry delay. Any other problem is a failure.
		for _, p := range c.Problems() {
			if strings.HasPrefix(p, "events answered 500 ") {
				refused++
			} else {
				t.Errorf("%s: protocol problem: %s", c.user.Sub, p)
			}
		}
		for seq := range s.Messages {
			if seq < 1 || seq > last[g] {
				t.Errorf("%s: seq %d arrived, beyond the database's 1..%d", c.user.Sub, seq, last[g])
			}
		}
		for seq := int64(1); seq <= last[g]; seq++ {
			m, ok := s.Messages[seq]
			if !ok {
				lost++
				continue
			}
			if m.Body != bodies[[2]int64{convs[g], seq}] {
				wrong++
			}
			if begun, ok := sentAt[[2]int64{convs[g], seq}]; ok {
				gap := s.FirstAt[seq].Sub(begun)
				worstGap = max(worstGap, gap)
				ph := phaseAt(phases, begun)
				gapBy[ph] = max(gapBy[ph], gap)
			}
		}
		for i := 1; i < len(s.Arrival); i++ {
			worstSilence = max(worstSilence, s.FirstAt[s.Arrival[i]].Sub(s.FirstAt[s.Arrival[i-1]]))
		}
		dups += len(s.StreamDups)
		outOfOrder += len(s.OutOfOrder)
		fetched += s.Fetched
		opened, _, _ := c.Stats()
		reconnects += opened - 1
	}
	if lost > 0 {
		t.Errorf("%d deliveries lost: a client lacks a message the database holds", lost)
	}
	if wrong > 0 {
		t.Errorf("%d messages arrived with another body than the database holds", wrong)
	}
	if open := open(); open != len(clients) {
		t.Errorf("at the end the processes hold %d streams, want %d", open, len(clients))
	}
	var total int64
	for _, n := range last {
		total += n
	}
	// The send's own time, apart: a gap the send explains is the database's, not delivery's.
	sendBy := map[string]time.Duration{}
	for k, begun := range sentAt {
		ph := phaseAt(phases, begun)
		sendBy[ph] = max(sendBy[ph], answered[k].Sub(begun))
	}
	var byPhase []string
	for _, ph := range phases {
		byPhase = append(byPhase, fmt.Sprintf("%s %s (the send itself %s)", ph.name, gapBy[ph.name].Round(time.Millisecond), sendBy[ph.name].Round(time.Millisecond)))
	}
	t.Logf("longest send-to-delivery gap of the messages sent after each event: %s", strings.Join(byPhase, ", "))
	t.Logf("deployment figures: %d clients, %d groups, %s of sends: %d messages stored (%d sends, %d retried after an error), %d deliveries expected; lost %d, duplicated %d, placed by seq after a later one %d, by catch-up %d; reconnects %d (%d answered 500 while Redis was down); longest send-to-delivery gap %s; longest silence between a client's messages %s",
		len(clients), groups, sendTime.Round(time.Second), total, attempted.Load(), retries.Load(), total*members,
		lost, dups, outOfOrder, fetched, reconnects, refused, worstGap.Round(time.Millisecond), worstSilence.Round(time.Millisecond))
}
