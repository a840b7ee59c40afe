package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v5"
)

// readyTimeout bounds each check of /readyz: a dependency slower than this is unreachable
// for a load balancer's purposes.
const readyTimeout = 2 * time.Second

// healthz answers while the process is up.
func (s *Server) healthz(c *echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers whether the database and the realtime engine are reachable, and 503
// once the process is shutting down (Drain), so that a load balancer sends no more.
func (s *Server) readyz(c *echo.Context) error {
	select {
	case <-s.draining:
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
	default:
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), readyTimeout)
	defer cancel()
	database := ping(ctx, s.db.Ping)
	engine := ping(ctx, s.engine.Ping)
	checks := map[string]string{"database": "ok", "engine": "ok"}
	status := http.StatusOK
	if !<-database {
		checks["database"], status = "unreachable", http.StatusServiceUnavailable
	}
	if !<-engine {
		checks["engine"], status = "unreachable", http.StatusServiceUnavailable
	}
	return c.JSON(status, checks)
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
