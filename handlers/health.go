package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v5"
)

// readyTimeout bounds each check of /readyz and of the readiness probe: a dependency that
// does not answer within it counts as down.
const readyTimeout = 2 * time.Second

// DefaultReadyProbeEvery is how often WatchReady runs the checks of /readyz.
const DefaultReadyProbeEvery = 5 * time.Second

// healthz answers while the process is up.
func (s *Server) healthz(c *echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers whether the database and the realtime engine are reachable, and 503
// once the process is shutting down (Unready, Drain), so that a load balancer sends no more.
func (s *Server) readyz(c *echo.Context) error {
	if s.isUnready() {
		s.metrics.ready.Set(0)
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
	}
	checks, ready := s.checkReady(c.Request().Context())
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	return c.JSON(status, checks)
}

// checkReady pings each dependency /readyz names, records the outcome in the readiness
// gauges, and answers each one's state ("ok" or "unreachable") and whether all are up.
func (s *Server) checkReady(ctx context.Context) (checks map[string]string, ready bool) {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	checks, ready = map[string]string{}, true
	deps := []struct {
		name, metric string
		up           <-chan bool
	}{ // both at once, each within readyTimeout
		{"database", depDatabase, ping(ctx, s.db.Ping)},
		{"engine", depRealtime, ping(ctx, s.engine.Ping)},
	}
	for _, d := range deps {
		up := <-d.up
		checks[d.name] = "ok"
		if !up {
			checks[d.name], ready = "unreachable", false
		}
		s.metrics.dependencyUp(d.metric, up)
	}
	s.metrics.setReady(ready && !s.isUnready())
	return checks, ready
}

// WatchReady runs the checks of /readyz every period until ctx ends, so that
// messenger_ready and messenger_dependency_up say what /readyz would answer even when
// nothing asks it (an alert on Redis being down needs no load balancer probing).
func (s *Server) WatchReady(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = DefaultReadyProbeEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.checkReady(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) isUnready() bool {
	select {
	case <-s.unready:
		return true
	default:
		return false
	}
}

// ping runs check in its own goroutine and answers whether it succeeded before ctx ended.
// The database driver does not give up a query on a server that holds the connection
// without answering (a paused or hung PostgreSQL), so the answer cannot wait for check to
// return; the goroutine ends when the server answers or the connection breaks.
func ping(ctx context.Context, check func(context.Context) error) <-chan bool {
	done := make(chan error, 1)
	go func() { done <- check(ctx) }()
	ok := make(chan bool, 1)
	go func() {
		select {
		case err := <-done:
			ok <- err == nil
		case <-ctx.Done():
			ok <- false
		}
	}()
	return ok
}
