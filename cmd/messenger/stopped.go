package main

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"time"
)

// untilStopped waits until ctx ends (a signal) or a listener fails, logged as what; it
// answers that failure, nil after a signal.
func untilStopped(ctx context.Context, failed <-chan error, logger *slog.Logger, what string) error {
	select {
	case err := <-failed:
		logger.Error(what, slog.String("error", err.Error()))
		return err
	case <-ctx.Done():
		return nil
	}
}

// exitProcess ends the process when a shutdown overruns its bound (osExit, but in tests).
var exitProcess = osExit

var osExit = os.Exit

// watchShutdown bounds the shutdown that starts when ctx ends: if the answered stop is
// not called within timeout from then, it logs an error and exits the process with
// status 1 (MESSENGER_SHUTDOWN_TIMEOUT).
func watchShutdown(ctx context.Context, timeout time.Duration, logger *slog.Logger) (stop func()) {
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		select {
		case <-done:
		case <-timer.C:
			logger.Error("shutdown took longer than MESSENGER_SHUTDOWN_TIMEOUT: exiting", slog.Duration("timeout", timeout))
			exitProcess(1)
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}
