package handlers

import (
	"net/http"
	"sync/atomic"

	"github.com/labstack/echo/v5"
)

type unsubscribeHolder struct{ h atomic.Pointer[http.Handler] }

// SetUnsubscribe mounts h (digest.NewUnsubscriber) at /unsubscribe; nil leaves it 404.
func (s *Server) SetUnsubscribe(h http.Handler) {
	if h == nil {
		return
	}
	s.unsub.h.Store(&h)
}

// unsubscribe serves GET /unsubscribe (a confirmation) and POST /unsubscribe (the button,
// and mail clients' one-click POST, RFC 8058): no session and no CSRF token, since the
// signed, expiring, single-use token in the link is the only authority and a mail client
// posts from anywhere.
func (s *Server) unsubscribe(c *echo.Context) error {
	h := s.unsub.h.Load()
	if h == nil {
		return echo.ErrNotFound
	}
	(*h).ServeHTTP(c.Response(), c.Request())
	return nil
}
