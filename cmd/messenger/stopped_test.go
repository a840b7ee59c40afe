package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

// TestWatchShutdownBound: a shutdown that overruns MESSENGER_SHUTDOWN_TIMEOUT exits the
// process with status 1; one that ends in time does not.
func TestWatchShutdownBound(t *testing.T) {
	exited := make(chan int, 2)
	exitProcess = func(code int) { exited <- code }
	t.Cleanup(func() { exitProcess = osExit })
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	ctx, cancel := context.WithCancel(context.Background())
	stop := watchShutdown(ctx, 50*time.Millisecond, logger)
	cancel()
	select {
	case code := <-exited:
		if code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a shutdown past its bound did not exit")
	}
	stop()

	ctx, cancel = context.WithCancel(context.Background())
	stop = watchShutdown(ctx, 200*time.Millisecond, logger)
	cancel()
	stop()
	select {
	case code := <-exited:
		t.Errorf("a shutdown within its bound exited %d", code)
	case <-time.After(400 * time.Millisecond):
	}
}
