package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/internal/proc"
	"github.com/dreamseed/messenger/internal/sse"
	"github.com/dreamseed/messenger/internal/tick"
	"github.com/dreamseed/messenger/scan"
	"github.com/dreamseed/messenger/scan/clamdtest"
	"github.com/dreamseed/messenger/upload"
)

func run(ctx context.Context, cfg config) error {
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return err
	}
	clamd, stopClamd, err := clamdtest.Launch(clamdtest.Config{})
	if err != nil {
		return err
	}
	defer stopClamd()
	fmt.Printf("clamd %s (pid %d)\n", clamd.TCP, clamd.Pid)

	photo, err := makePhoto(int(cfg.PhotoMB * 1e6))
	if err != nil {
		return err
	}
	big := makeDocument(int(cfg.BigMB * 1e6))
	fmt.Printf("photo: %d×%d JPEG, %.1f MB; memory run: %d × %.1f MB PDF\n",
		photoWidth, photoHeight, float64(len(photo))/1e6, cfg.Concurrent, float64(len(big))/1e6)

	// Ceilings first, while the messenger is not running.
	bare, err := runBare(ctx, cfg, photo)
	if err != nil {
		return fmt.Errorf("bare server: %w", err)
	}
	scanner, err := scan.New(clamd.TCP, scan.Options{})
	if err != nil {
		return err
	}
	var scans []time.Duration
	for range cfg.Uploads {
		start := time.Now()
		res, err := scanner.Scan(ctx, bytes.NewReader(photo))
		if err != nil || res.Infected() {
			return fmt.Errorf("clamd alone: %v %v", res, err)
		}
		scans = append(scans, time.Since(start))
	}

	info, err := upload.Detect(bytes.NewReader(photo), int64(len(photo)), upload.DefaultLimits())
	if err != nil {
		return err
	}
	var thumbs []time.Duration
	for range min(cfg.Uploads, 10) {
		start := time.Now()
		if _, err := upload.Thumbnails(bytes.NewReader(photo), info); err != nil {
			return fmt.Errorf("thumbnails alone: %w", err)
		}
		thumbs = append(thumbs, time.Since(start))
	}

	secret := base64.RawURLEncoding.EncodeToString(randomBytes(32))
	srv, err := startMessenger(ctx, cfg, secret, clamd.TCP)
	if err != nil {
		return err
	}
	defer srv.stop()

	b, err := newBench(ctx, cfg, secret)
	if err != nil {
		return err
	}
	defer b.close()
	started, err := proc.RSS(srv.pid)
	if err != nil {
		return err
	}

	fmt.Printf("\nlatency: %d uploads of the photo at %.2f/s, open loop\n", cfg.Uploads, cfg.Rate)
	lat, err := b.schedule(ctx, cfg.Uploads, cfg.Rate, "photo.jpg", photo)
	if err != nil {
		return err
	}
	fmt.Printf("memory: %d uploads of %.1f MB at once\n", cfg.Concurrent, float64(len(big))/1e6)
	rest, peak, memLat, err := b.memoryRun(ctx, srv.pid, cfg.Concurrent, big)
	if err != nil {
		return err
	}
	stored, err := b.fileMessages(ctx)
	if err != nil {
		return err
	}
	want := cfg.Uploads + cfg.Concurrent

	p := func(d []time.Duration, q float64) float64 { return ms(percentile(d, q)) }
	fmt.Printf("\n== results (%s, %d cores)\n", time.Now().UTC().Format(time.RFC3339), numCPU())
	fmt.Printf("%-44s %9s %9s %9s\n", "", "p50 ms", "p95 ms", "p99 ms")
	fmt.Printf("%-44s %9.1f %9.1f %9.1f\n", "bare server: multipart to disk (ceiling)", p(bare, .5), p(bare, .95), p(bare, .99))
	fmt.Printf("%-44s %9.1f %9.1f %9.1f\n", "clamd alone: INSTREAM of the photo", p(scans, .5), p(scans, .95), p(scans, .99))
	fmt.Printf("%-44s %9.1f %9.1f %9.1f\n", "thumbnails alone: the photo to 3 WebP sizes", p(thumbs, .5), p(thumbs, .95), p(thumbs, .99))
	fmt.Printf("%-44s %9.1f %9.1f %9.1f\n", "messenger: accepted (sender's pending bubble)", p(lat.accepted, .5), p(lat.accepted, .95), p(lat.accepted, .99))
	fmt.Printf("%-44s %9.1f %9.1f %9.1f\n", "messenger: delivered (recipient's message.new)", p(lat.delivered, .5), p(lat.delivered, .95), p(lat.delivered, .99))
	fmt.Printf("accepted p95 / bare p95: %.2f×\n", ratio(p(lat.accepted, .95), p(bare, .95)))
	fmt.Printf("delivered p50 / (bare + clamd + thumbnails) p50: %.2f×\n", ratio(p(lat.delivered, .5), p(bare, .5)+p(scans, .5)+p(thumbs, .5)))
	inFlight := int64(cfg.Concurrent) * int64(len(big))
	fmt.Printf("memory: RSS %.1f MB once started, %.1f MB before the memory run, peak %.1f MB while %d uploads of %.0f MB ran at once:\n",
		mb(started), mb(rest), mb(peak), cfg.Concurrent, mb(int64(len(big))))
	fmt.Printf("  +%.1f MB over the start for %.0f MB in flight (%.2f of it); all %d delivered, p95 %.0f ms\n",
		mb(peak-started), mb(inFlight), float64(peak-started)/float64(inFlight), cfg.Concurrent, p(memLat, .95))
	fmt.Printf("file messages stored: %d of %d uploads (lost %d, duplicated %d)\n", stored, want, max(0, want-stored), max(0, stored-want))
	if stored != want {
		return fmt.Errorf("%d file messages stored for %d uploads", stored, want)
	}
	return nil
}

// messenger is the server under test.
type messenger struct {
	pid  int
	stop func()
}

func startMessenger(ctx context.Context, cfg config, secret, clamdAddr string) (*messenger, error) {
	data, err := filepath.Abs(filepath.Join(cfg.Out, "data"))
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(cfg.Out, "server.log"))
	if err != nil {
		return nil, err
	}
	migrate := exec.CommandContext(ctx, cfg.Messenger, "migrate")
	migrate.Env = serverEnv(cfg, secret, clamdAddr, data)
	migrate.Stdout, migrate.Stderr = logFile, logFile
	if err := migrate.Run(); err != nil {
		return nil, fmt.Errorf("migrate: %w (see %s)", err, logFile.Name())
	}
	cmd := exec.Command(cfg.Messenger, "serve")
	cmd.Env = serverEnv(cfg, secret, clamdAddr, data)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logFile.Close()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + cfg.Addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-done:
			return nil, fmt.Errorf("the messenger exited while starting (see %s)", logFile.Name())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("the messenger was not ready within 30 s (see %s)", logFile.Name())
		}
	}
	fmt.Printf("messenger pid %d on %s\n", cmd.Process.Pid, cfg.Addr)
	return &messenger{pid: cmd.Process.Pid, stop: stop}, nil
}

func serverEnv(cfg config, secret, clamdAddr, data string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MESSENGER_") && !strings.HasPrefix(kv, "DATABASE_URL=") && !strings.HasPrefix(kv, "REDIS_URL=") {
			env = append(env, kv)
		}
	}
	return append(env,
		"DATABASE_URL="+cfg.DatabaseURL, "MESSENGER_DEV=0", "MESSENGER_LOG_LEVEL=warn",
		"MESSENGER_METRICS_ADDR=off", "MESSENGER_JWT_SECRET="+secret,
		"MESSENGER_ADDR="+cfg.Addr, "MESSENGER_BASE_URL=http://"+cfg.Addr, "MESSENGER_DATA_DIR="+data,
		"MESSENGER_CLAMD_ADDR="+clamdAddr,
	)
}

// bench is the messenger's two users: a teacher who uploads, a parent who receives.
type bench struct {
	base    string
	tokens  [2]string
	subs    [2]string
	convID  int64
	client  *http.Client
	stopSSE context.CancelFunc

	mu        sync.Mutex
	delivered map[string]time.Time // client_msg_id → when the recipient's message.new came
	waiters   map[string]chan struct{}
}

func newBench(ctx context.Context, cfg config, secret string) (*bench, error) {
	b := &bench{
		base: "http://" + cfg.Addr, client: &http.Client{Timeout: cfg.Timeout},
		delivered: map[string]time.Time{}, waiters: map[string]chan struct{}{},
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	for i, who := range []struct{ name, role string }{{"김선영 선생님", "teacher"}, {"박민수", "parent"}} {
		b.subs[i] = "filebench-" + who.role + "-" + run
		tok, err := auth.MintToken([]byte(secret), "messenger", auth.Claims{
			Issuer: "dreamseed-portal", Subject: b.subs[i], Name: who.name, OrgID: "bench-org",
			ZoneID: "bench-zone", Role: who.role, Locale: "ko",
		}, time.Hour)
		if err != nil {
			return nil, err
		}
		b.tokens[i] = tok
	}
	sseCtx, cancel := context.WithCancel(ctx)
	b.stopSSE = cancel
	ready := make(chan error, 1)
	go b.watch(sseCtx, ready) // the recipient's stream; opening it signs them in
	if err := <-ready; err != nil {
		return nil, err
	}
	var conv struct {
		ID int64 `json:"id"`
	}
	if err := b.json(ctx, 0, http.MethodPost, "/api/v1/conversations",
		map[string]any{"kind": "direct", "participant_ids": []string{b.subs[1]}}, &conv); err != nil {
		return nil, err
	}
	b.convID = conv.ID
	return b, nil
}

func (b *bench) close() { b.stopSSE() }

// watch reads the recipient's stream and notes when each file message arrives.
func (b *bench) watch(ctx context.Context, ready chan<- error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.base+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+b.tokens[1])
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET /api/v1/events: HTTP %d", resp.StatusCode)
	}
	ready <- err
	if err != nil {
		return
	}
	defer resp.Body.Close()
	rd := sse.NewReader(resp.Body)
	for {
		ev, err := rd.Next()
		if err != nil {
			return
		}
		if ev.Type != "message.new" {
			continue
		}
		var m struct {
			Kind        string `json:"kind"`
			ClientMsgID string `json:"client_msg_id"`
		}
		if json.Unmarshal([]byte(ev.Data), &m) != nil || m.Kind != "file" {
			continue
		}
		b.mu.Lock()
		if _, seen := b.delivered[m.ClientMsgID]; !seen {
			b.delivered[m.ClientMsgID] = time.Now()
		}
		if w, ok := b.waiters[m.ClientMsgID]; ok {
			close(w)
			delete(b.waiters, m.ClientMsgID)
		}
		b.mu.Unlock()
	}
}

// expect registers an upload whose message the recipient should get.
func (b *bench) expect(clientMsgID string) <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := make(chan struct{})
	b.waiters[clientMsgID] = w
	return w
}

func (b *bench) deliveredAt(clientMsgID string) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.delivered[clientMsgID]
}

type latencies struct{ accepted, delivered []time.Duration }

// schedule uploads n copies of data, one every 1/rate seconds, each started when due.
func (b *bench) schedule(ctx context.Context, n int, rate float64, name string, data []byte) (latencies, error) {
	var (
		lat  latencies
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
	)
	start := time.Now().Add(100 * time.Millisecond)
	for i := range n {
		due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		wg.Go(func() {
			time.Sleep(time.Until(due))
			acc, del, err := b.uploadAndWait(ctx, due, name, data)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			lat.accepted = append(lat.accepted, acc)
			lat.delivered = append(lat.delivered, del)
		})
	}
	wg.Wait()
	return lat, errors.Join(errs...)
}

// uploadAndWait uploads one file and waits for the recipient's message.new; both times
// count from due.
func (b *bench) uploadAndWait(ctx context.Context, due time.Time, name string, data []byte) (accepted, delivered time.Duration, err error) {
	id := uuid.NewString()
	arrived := b.expect(id)
	if err := b.upload(ctx, id, name, data); err != nil {
		return 0, 0, err
	}
	accepted = time.Since(due)
	select {
	case <-arrived:
	case <-time.After(b.client.Timeout):
		return 0, 0, fmt.Errorf("upload %s: no message.new within %s", id, b.client.Timeout)
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	return accepted, b.deliveredAt(id).Sub(due), nil
}

// upload posts one file as the teacher and expects 202.
func (b *bench) upload(ctx context.Context, clientMsgID, name string, data []byte) error {
	body, ctype, err := multipartBody(map[string]string{"client_msg_id": clientMsgID}, name, data)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		fmt.Sprintf("%s/api/v1/conversations/%d/files", b.base, b.convID), body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+b.tokens[0])
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Accept", "application/json")
	resp, err := b.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("upload: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	return nil
}

// memoryRun sends n uploads of data at once and samples the server's RSS until every one
// is delivered: its resting RSS before, and the peak.
func (b *bench) memoryRun(ctx context.Context, pid, n int, data []byte) (rest, peak int64, lat []time.Duration, err error) {
	time.Sleep(2 * time.Second) // let the latency run's work settle
	if rest, err = proc.RSS(pid); err != nil {
		return 0, 0, nil, err
	}
	peak = rest
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick.Every(10*time.Millisecond, stop, nil, func() {
			if rss, err := proc.RSS(pid); err == nil && rss > peak {
				peak = rss
			}
		})
	}()
	l, err := b.schedule(ctx, n, 1e9, "document.pdf", data) // all due at once
	close(stop)
	<-sampled
	return rest, peak, l.delivered, err
}

// fileMessages counts the file messages of the bench conversation, as the recipient reads
// them through the API.
func (b *bench) fileMessages(ctx context.Context) (int, error) {
	count, before := 0, int64(0)
	for {
		var page struct {
			Messages []struct {
				Seq  int64  `json:"seq"`
				Kind string `json:"kind"`
			} `json:"messages"`
			HasMore bool `json:"has_more"`
		}
		path := fmt.Sprintf("/api/v1/conversations/%d/messages?limit=50", b.convID)
		if before > 0 {
			path += "&before_seq=" + strconv.FormatInt(before, 10)
		}
		if err := b.json(ctx, 1, http.MethodGet, path, nil, &page); err != nil {
			return 0, err
		}
		for _, m := range page.Messages {
			if m.Kind == "file" {
				count++
			}
			if before == 0 || m.Seq < before {
				before = m.Seq
			}
		}
		if !page.HasMore || len(page.Messages) == 0 {
			return count, nil
		}
	}
}

// json sends a JSON request as user i and decodes a 2xx answer into out.
func (b *bench) json(ctx context.Context, i int, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+b.tokens[i])
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// runBare serves the minimum an upload needs — read the multipart body, write each file to
// disk and fsync it — and runs the latency schedule against it.
func runBare(ctx context.Context, cfg config, data []byte) ([]time.Duration, error) {
	dir, err := os.MkdirTemp("", "filebench-bare")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	srv := &http.Server{Addr: "127.0.0.1:0", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseMultipartForm(64 << 10); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		defer r.MultipartForm.RemoveAll()
		for _, fh := range r.MultipartForm.File["file"] {
			if err := saveFile(dir, fh); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		w.WriteHeader(http.StatusAccepted)
	})}
	ln, err := listen()
	if err != nil {
		return nil, err
	}
	go srv.Serve(ln)
	defer srv.Close()
	client := &http.Client{Timeout: cfg.Timeout}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		out  []time.Duration
		errs []error
	)
	start := time.Now().Add(100 * time.Millisecond)
	for i := range cfg.Uploads {
		due := start.Add(time.Duration(float64(i) / cfg.Rate * float64(time.Second)))
		wg.Go(func() {
			time.Sleep(time.Until(due))
			body, ctype, err := multipartBody(map[string]string{"client_msg_id": uuid.NewString()}, "photo.jpg", data)
			if err == nil {
				var resp *http.Response
				if resp, err = client.Post("http://"+ln.Addr().String()+"/", ctype, body); err == nil {
					resp.Body.Close()
					if resp.StatusCode != http.StatusAccepted {
						err = fmt.Errorf("HTTP %d", resp.StatusCode)
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			out = append(out, time.Since(due))
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

func saveFile(dir string, fh *multipart.FileHeader) error {
	src, err := fh.Open()
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.CreateTemp(dir, "upload")
	if err != nil {
		return err
	}
	defer os.Remove(dst.Name())
	defer dst.Close()
	if _, err := io.Copy(dst, src); err != nil {
		return err
	}
	return dst.Sync()
}

func multipartBody(fields map[string]string, name string, data []byte) (io.Reader, string, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range fields {
		if err := w.WriteField(k, v); err != nil {
			return nil, "", err
		}
	}
	part, err := w.CreateFormFile("file", name)
	if err != nil {
		return nil, "", err
	}
	if _, err := part.Write(data); err != nil {
		return nil, "", err
	}
	if err := w.Close(); err != nil {
		return nil, "", err
	}
	return &buf, w.FormDataContentType(), nil
}

func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func mb(n int64) float64         { return float64(n) / 1e6 }

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
