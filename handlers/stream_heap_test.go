package handlers_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/dreamseed/messenger/handlers"
)

// TestStreamHeap measures what an open page stream costs: the heap (and goroutine stack)
// bytes per stream of 2,000 streams held open against one server on the memory engine,
// client side included. It runs only when MESSENGER_STREAM_HEAP is set (see
// docs/performance.md):
//
//	MESSENGER_STREAM_HEAP=2000 go test -count=1 -run TestStreamHeap -v ./handlers/
func TestStreamHeap(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("MESSENGER_STREAM_HEAP"))
	if n <= 0 {
		t.Skip("set MESSENGER_STREAM_HEAP to the number of streams to measure")
	}
	e := newEnv(t, func(c *handlers.Config) { c.MaxStreamsPerUser = n + 1 })
	browser := e.signInBrowser("heap1", "한도윤", "org-a")
	browser.Transport = &http.Transport{MaxIdleConnsPerHost: 1}
	open := func() io.Closer {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", e.srv.URL+"/events", nil)
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		buf := make([]byte, len("retry: 1000\n\n"))
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			t.Fatal(err)
		}
		return resp.Body
	}
	// One stream first, so that what every stream shares (templates, pools) is allocated.
	defer open().Close()
	before := memNow()
	streams := make([]io.Closer, 0, n)
	for range n {
		streams = append(streams, open())
	}
	time.Sleep(time.Second) // the streams' catch-up queries and first timers are done
	after := memNow()
	t.Logf("%d streams: %.1f KB heap and %.1f KB stack per stream (%d goroutines)", n,
		float64(after.HeapAlloc-before.HeapAlloc)/float64(n)/1024,
		float64(after.StackInuse-before.StackInuse)/float64(n)/1024, runtime.NumGoroutine())
	for _, s := range streams {
		s.Close()
	}
}

// memNow is the memory in use after a full collection.
func memNow() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}
