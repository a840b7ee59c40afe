package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// bareServer is the ceiling: a plain net/http server that holds event streams and nothing
// else. Each stream is a handler goroutine waiting on a queue of its own and a heartbeat
// ticker, as the messenger's are; POST /burst writes one event of the messenger's size to
// every stream.
type bareServer struct {
	mu      sync.Mutex
	streams map[*bareStream]struct{}
}

type bareStream struct {
	queue chan []byte
}

// heartbeatEvery is the messenger's heartbeat period.
const heartbeatEvery = 20 * time.Second

func (b *bareServer) events(w http.ResponseWriter, r *http.Request) {
	st := &bareStream{queue: make(chan []byte, 16)}
	b.mu.Lock()
	b.streams[st] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.streams, st)
		b.mu.Unlock()
	}()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache, no-store")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write([]byte("retry: 1000\n\n")); err != nil || rc.Flush() != nil {
		return
	}
	heartbeat := time.NewTicker(heartbeatEvery)
	defer heartbeat.Stop()
	for {
		var frame []byte
		select {
		case <-r.Context().Done():
			return
		case frame = <-st.queue:
		case <-heartbeat.C:
			frame = []byte(": ping\n\n")
		}
		rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := w.Write(frame); err != nil || rc.Flush() != nil {
			return
		}
	}
}

// burst queues one event to every stream: a message.new of a zone announcement's size,
// its id the burst's number.
func (b *bareServer) burst(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	frame := fmt.Appendf(nil, "event: message.new\nid: %d\ndata: %s\n\n", n, burstData(n))
	b.mu.Lock()
	sent := 0
	for st := range b.streams {
		select {
		case st.queue <- frame:
			sent++
		default:
		}
	}
	b.mu.Unlock()
	fmt.Fprintf(w, "%d\n", sent)
}

// burstData is an announcement's JSON as the messenger's API stream sends it, in size.
func burstData(n int) string {
	return fmt.Sprintf(`{"id":%d,"conversation_id":1,"seq":%d,"sender_id":"bench-user-0","sender_name":"김민준 선생님",`+
		`"client_msg_id":"00000000-0000-4000-8000-%012d","kind":"text","body":"burst %d: 내일은 재량휴업일입니다. 가정에서 안전하게 지내세요.",`+
		`"created_at":"2026-11-30T09:00:00.000000Z","files":null}`, n, n, n, n)
}

// serveBare runs the bare server on addr until SIGTERM or SIGINT.
func serveBare(addr string) error {
	b := &bareServer{streams: map[*bareStream]struct{}{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /events", b.events)
	mux.HandleFunc("POST /burst", b.burst)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(shut)
		srv.Close()
	}()
	slog.Info("bare event-stream server", "addr", ln.Addr().String())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
