package handlers

import (
	"net/http"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger/auth"
)

// apiPushUnsubscribe removes one of the caller's subscriptions (DELETE, portal token).
func (s *Server) apiPushUnsubscribe(c *echo.Context) error {
	ctx := c.Request().Context()
	me, _ := auth.UserFrom(ctx)
	if err := s.chat.RemovePushDevice(ctx, me, c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// pushDeviceRemove is the device list's "remove" (a plain form): back to the list.
func (s *Server) pushDeviceRemove(c *echo.Context) error {
	ctx := c.Request().Context()
	me, _ := auth.UserFrom(ctx)
	if err := s.chat.RemovePushDevice(ctx, me, c.Param("id")); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/push/devices")
}
