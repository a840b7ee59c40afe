package handlers

import (
	"context"
)

// The retry hint, in milliseconds, of the streams a shutdown ends: each stream draws its
// own, so that a process's clients come back spread over these seconds.
const (
	shutdownRetryMin = 500
	shutdownRetryMax = 3000
)

// Unready makes /readyz answer 503 while everything else is served as before: the first
// step of a shutdown with a drain delay, so that a load balancer's health check takes the
// process out of rotation before its streams end and its listener closes.
func (s *Server) Unready() {
	s.readyOnce.Do(func() { close(s.unready) })
}

// Drain starts the shutdown of the live streams: each open stream (and any opened from
// now on) gets a retry hint and stream.closed with reason shutdown, then ends, and
// /readyz answers 503. Requests in flight go on; the caller then shuts the HTTP server
// down, which waits for them.
func (s *Server) Drain() {
	s.Unready()
	s.drainOnce.Do(func() { close(s.draining) })
	s.metrics.setReady(false)
}

// WaitStreams waits, within ctx, for the streams whose connections net/http no longer
// tracks (HTTP/1.x streams are served from their own goroutine once caught up): the HTTP
// server's Shutdown does not wait for them. After Drain they end at once, each with its
// last event; a client that does not read is cut by the write timeout.
func (s *Server) WaitStreams(ctx context.Context) error {
	s.detachMu.Lock()
	s.detachDone = true
	s.detachMu.Unlock()
	done := make(chan struct{})
	go func() {
		s.detached.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startDetached counts a stream about to detach, with its two goroutines, unless the wait
// for detached streams has begun (a WaitGroup may not grow while it is waited on).
func (s *Server) startDetached() bool {
	s.detachMu.Lock()
	defer s.detachMu.Unlock()
	if s.detachDone {
		return false
	}
	s.detached.Add(2)
	return true
}
