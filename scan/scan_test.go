package scan_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dreamseed/messenger/scan"
	"github.com/dreamseed/messenger/scan/clamdtest"
)

func mustClient(t *testing.T, addr string) *scan.Client {
	t.Helper()
	c, err := scan.New(addr, scan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustScan(t *testing.T, c *scan.Client, data []byte) scan.Result {
	t.Helper()
	res, err := c.Scan(context.Background(), bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return res
}

func zipOf(t *testing.T, name string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestVerdicts checks the verdicts a user's upload can get from a real clamd.
func TestVerdicts(t *testing.T) {
	srv := clamdtest.Start(t, clamdtest.Config{StreamMaxLength: 1 << 20})
	rss, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", srv.Pid))
	for _, line := range strings.Split(string(rss), "\n") {
		if strings.HasPrefix(line, "VmRSS") {
			t.Logf("clamd ready in %v, %s", srv.StartedIn, strings.Join(strings.Fields(line), " "))
		}
	}
	c := mustClient(t, srv.TCP)

	tests := []struct {
		name string
		data []byte
		want scan.Result
	}{
		{"clean text", []byte("숙제는 내일까지 제출하세요.\n"), scan.Result{Clean: true}},
		{"empty file", nil, scan.Result{Clean: true}},
		{"EICAR", clamdtest.EICAR(), scan.Result{Signature: clamdtest.EICARSignature}},
		{"EICAR after other bytes", append(bytes.Repeat([]byte("a"), 200<<10), clamdtest.EICAR()...),
			scan.Result{Signature: clamdtest.EICARSignature}},
		{"EICAR in a zip", zipOf(t, "eicar.com", clamdtest.EICAR()), scan.Result{Signature: clamdtest.EICARSignature}},
		{"marker by its hash", clamdtest.Marker(), scan.Result{Signature: clamdtest.MarkerSignature}},
		{"marker in a zip", zipOf(t, "marker.txt", clamdtest.Marker()), scan.Result{Signature: clamdtest.MarkerSignature}},
		{"marker with one byte more", append(clamdtest.Marker(), '\n'), scan.Result{Clean: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustScan(t, c, tt.data)
			if got != tt.want {
				t.Errorf("Scan = %+v, want %+v", got, tt.want)
			}
			if got.Infected() == got.Clean {
				t.Errorf("Infected() = %v with Clean %v", got.Infected(), got.Clean)
			}
		})
	}
}

// TestOversizedNeverClean checks that nothing larger than the limits is reported clean: a
// stream over StreamMaxLength is refused, and a small zip that unpacks beyond MaxFileSize is
// flagged (AlertExceedsMax), where clamd's default would say OK.
func TestOversizedNeverClean(t *testing.T) {
	const limit = 1 << 20
	srv := clamdtest.Start(t, clamdtest.Config{StreamMaxLength: limit})
	c := mustClient(t, srv.TCP)

	for _, size := range []int{limit + 1, 5 * limit} {
		t.Run(fmt.Sprintf("stream of %d bytes", size), func(t *testing.T) {
			res, err := c.Scan(context.Background(), bytes.NewReader(make([]byte, size)))
			if !errors.Is(err, scan.ErrSizeLimit) || res.Clean {
				t.Fatalf("Scan = %+v, %v; want ErrSizeLimit", res, err)
			}
		})
	}
	t.Run("stream of exactly the limit", func(t *testing.T) {
		if res := mustScan(t, c, make([]byte, limit)); !res.Clean {
			t.Fatalf("Scan = %+v, want clean", res)
		}
	})
	t.Run("zip unpacking beyond the limit", func(t *testing.T) {
		z := zipOf(t, "zeros.bin", make([]byte, 3*limit))
		if len(z) >= limit {
			t.Fatalf("zip is %d bytes, want it under the stream limit", len(z))
		}
		res := mustScan(t, c, z)
		// AlertExceedsMax turns "too big to scan" into a detection instead of OK.
		if res.Clean || !strings.HasPrefix(res.Signature, "Heuristics.Limits.Exceeded") {
			t.Fatalf("Scan = %+v, want a Heuristics.Limits.Exceeded detection", res)
		}
		t.Logf("clamd's verdict: %s", res.Signature)
	})
}

// TestUnixSocket checks that a clamd on a local socket scans, pings and gives its version.
func TestUnixSocket(t *testing.T) {
	srv := clamdtest.Start(t, clamdtest.Config{})
	c := mustClient(t, srv.Unix)
	ctx := context.Background()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	v, err := c.Version(ctx)
	if err != nil || !strings.HasPrefix(v, "ClamAV ") {
		t.Fatalf("Version = %q, %v", v, err)
	}
	t.Logf("version: %s", v)
	if res := mustScan(t, c, clamdtest.EICAR()); res.Signature != clamdtest.EICARSignature {
		t.Fatalf("Scan(EICAR) = %+v", res)
	}
	if res := mustScan(t, c, []byte("hello")); !res.Clean {
		t.Fatalf("Scan(hello) = %+v", res)
	}
}

// TestScannerDown checks that a refused connection is an error, never a verdict.
func TestScannerDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now

	c := mustClient(t, "tcp://"+addr)
	res, err := c.Scan(context.Background(), strings.NewReader("hello"))
	if err == nil {
		t.Fatalf("Scan = %+v, want an error", res)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Scan error = %v, want connection refused", err)
	}
	if err := c.Ping(context.Background()); err == nil {
		t.Fatal("Ping succeeded against a closed port")
	}

	u := mustClient(t, "unix:///nonexistent/clamd.sock")
	if _, err := u.Scan(context.Background(), strings.NewReader("hello")); err == nil {
		t.Fatal("Scan succeeded against a missing socket")
	}
}

// silentPeer accepts connections, reads everything and never answers, as a hung clamd would.
func silentPeer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(io.Discard, conn)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "tcp://" + l.Addr().String()
}

// TestSilentScannerTimesOut checks that a clamd that accepts and never answers ends the scan
// at the context's deadline, with an error that says so.
func TestSilentScannerTimesOut(t *testing.T) {
	c := mustClient(t, silentPeer(t))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := c.Scan(ctx, strings.NewReader("hello"))
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Scan = %+v, %v; want context.DeadlineExceeded", res, err)
	}
	if took < 250*time.Millisecond || took > 2*time.Second {
		t.Errorf("Scan took %v, want about 300ms", took)
	}

	// Cancellation, not only a deadline, unblocks a scan.
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if err := c.Ping(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Ping = %v, want context.Canceled", err)
	}

	// Options.Timeout bounds a scan whose context has no deadline.
	short, err := scan.New(c.Addr(), scan.Options{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := short.Scan(context.Background(), strings.NewReader("hello")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Scan without a deadline = %v, want context.DeadlineExceeded", err)
	}
}

// TestMalformedReplies checks that a peer answering anything but a verdict is an error.
func TestMalformedReplies(t *testing.T) {
	for _, reply := range []string{
		"stream: OK",        // no terminator: cut short
		"stream: maybe\x00", // neither OK nor FOUND
		"OK\x00",            // not the stream's reply
		"stream: FOUND\x00", // no name
		"",                  // closed without a word
		"Can't allocate memory ERROR\x00",
		strings.Repeat("x", 10000), // endless
	} {
		t.Run(fmt.Sprintf("%.20q", reply), func(t *testing.T) {
			addr := answeringPeer(t, reply)
			c := mustClient(t, addr)
			res, err := c.Scan(context.Background(), strings.NewReader("hello"))
			if !errors.Is(err, scan.ErrScanner) || res.Clean || res.Infected() {
				t.Fatalf("Scan = %+v, %v; want no verdict and ErrScanner", res, err)
			}
		})
	}
}

// answeringPeer reads one stream to its end and answers reply, then closes.
func answeringPeer(t *testing.T, reply string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		// Read up to the terminating zero-length chunk.
		buf := make([]byte, 0, 64)
		tmp := make([]byte, 64)
		for !bytes.HasSuffix(buf, []byte{0, 0, 0, 0}) {
			n, err := conn.Read(tmp)
			buf = append(buf, tmp[:n]...)
			if err != nil {
				return
			}
		}
		_, _ = conn.Write([]byte(reply))
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return "tcp://" + l.Addr().String()
}

// TestConcurrentScans checks that ten scans at once each get their own right verdict.
func TestConcurrentScans(t *testing.T) {
	srv := clamdtest.Start(t, clamdtest.Config{})
	c := mustClient(t, srv.TCP)
	files := [][]byte{
		[]byte("clean one"),
		clamdtest.EICAR(),
		clamdtest.Marker(),
		bytes.Repeat([]byte("clean, larger "), 100000),
		zipOf(t, "e.com", clamdtest.EICAR()),
	}
	want := []string{"", clamdtest.EICARSignature, clamdtest.MarkerSignature, "", clamdtest.EICARSignature}
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.Scan(context.Background(), bytes.NewReader(files[i%len(files)]))
			if err != nil {
				errs <- fmt.Errorf("scan %d: %w", i, err)
				return
			}
			if res.Signature != want[i%len(files)] || res.Clean != (want[i%len(files)] == "") {
				errs <- fmt.Errorf("scan %d = %+v, want %q", i, res, want[i%len(files)])
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// patternReader yields n bytes of a repeating, not-all-zero pattern without allocating.
type patternReader struct{ n, off int }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if len(b) > p.n-p.off {
		b = b[:p.n-p.off]
	}
	for i := range b {
		b[i] = byte((p.off + i) * 7 % 251)
	}
	p.off += len(b)
	return len(b), nil
}

// TestLargeStreamNotHeldInMemory checks that a 10 MB scan allocates a small, fixed amount:
// the file streams through one chunk buffer and is never held whole.
func TestLargeStreamNotHeldInMemory(t *testing.T) {
	srv := clamdtest.Start(t, clamdtest.Config{StreamMaxLength: 12 << 20})
	c := mustClient(t, srv.TCP)
	ctx := context.Background()
	if err := c.Ping(ctx); err != nil { // warm up: first use allocates resolver and poller state
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, err := c.Scan(ctx, &patternReader{n: 10 << 20})
	runtime.ReadMemStats(&after)
	if err != nil || !res.Clean {
		t.Fatalf("Scan = %+v, %v; want clean", res, err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("a 10 MB scan allocated %d bytes", alloc)
	if alloc > 2<<20 {
		t.Fatalf("a 10 MB scan allocated %d bytes, want under 2 MB", alloc)
	}
}

// TestNew checks the addresses and options New accepts.
func TestNew(t *testing.T) {
	for _, addr := range []string{"tcp://127.0.0.1:3310", "tcp://clamd:3310", "unix:///run/clamav/clamd.ctl"} {
		if c, err := scan.New(addr, scan.Options{}); err != nil || c.Addr() != addr {
			t.Errorf("New(%q) = %v, %v", addr, c, err)
		}
	}
	for _, addr := range []string{"", "127.0.0.1:3310", "tcp://127.0.0.1", "unix://relative.sock", "http://clamd:3310"} {
		if _, err := scan.New(addr, scan.Options{}); err == nil {
			t.Errorf("New(%q) accepted", addr)
		}
	}
	for _, size := range []int{-1, scan.MaxChunkSize + 1} {
		if _, err := scan.New("tcp://127.0.0.1:3310", scan.Options{ChunkSize: size}); err == nil {
			t.Errorf("New with chunk size %d accepted", size)
		}
	}
}
