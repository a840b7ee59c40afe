package handlers

import (
	"net/http"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
)

// pushKey answers the VAPID public key browsers subscribe with: the messenger's own pages,
// and a portal that subscribes in its own app and hands the subscription over.
func (s *Server) pushKey(c *echo.Context) error {
	key := s.publicKey()
	if key == "" {
		return messenger.Errorf(messenger.ENOTFOUND, "error.push.off")
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.JSON(http.StatusOK, map[string]string{"public_key": key})
}

// publicKey answers the configured VAPID public key, "" when push is off.
func (s *Server) publicKey() string {
	if s.cfg.PushKeys == nil {
		return ""
	}
	return s.cfg.PushKeys.PublicKey()
}
