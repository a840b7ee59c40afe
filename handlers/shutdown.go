package handlers

// The retry hint, in milliseconds, of the streams a shutdown ends: each stream draws its
// own, so that a process's clients come back spread over these seconds.
const (
	shutdownRetryMin = 500
	shutdownRetryMax = 3000
)

// Drain starts the shutdown of the live streams: each open stream (and any opened from
// now on) gets a retry hint and stream.closed with reason shutdown, then ends, and
// /readyz answers 503. Requests in flight go on; the caller then shuts the HTTP server
// down, which waits for them.
func (s *Server) Drain() {
	s.drainOnce.Do(func() { close(s.draining) })
	s.metrics.setReady(false)
}
