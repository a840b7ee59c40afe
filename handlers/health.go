package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v5"
)

// healthz answers while the process is up.
func (s *Server) healthz(c *echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers whether the database and the realtime engine are reachable, and 503
// once the process is shutting down (Unready, Drain), so that a load balancer sends no more.
func (s *Server) readyz(c *echo.Context) error {
	select {
	case <-s.unready:
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
	default:
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"database": "ok", "engine": "ok"}
	status := http.StatusOK
	if err := s.db.Ping(ctx); err != nil {
		checks["database"], status = "unreachable", http.StatusServiceUnavailable
	}
	if err := s.engine.Ping(ctx); err != nil {
		checks["engine"], status = "unreachable", http.StatusServiceUnavailable
	}
	return c.JSON(status, checks)
}
