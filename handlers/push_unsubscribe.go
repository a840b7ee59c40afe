package handlers

import (
	"net/http"
	"net/url"

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

// pushDeviceRemove is the device list's "remove" (a plain form): back to the page that
// showed it (the settings page or the devices page; Referer is same-origin only).
func (s *Server) pushDeviceRemove(c *echo.Context) error {
	ctx := c.Request().Context()
	me, _ := auth.UserFrom(ctx)
	if err := s.chat.RemovePushDevice(ctx, me, c.Param("id")); err != nil {
		return err
	}
	back := "/push/devices"
	if ref, err := url.Parse(c.Request().Header.Get("Referer")); err == nil && ref.Host == c.Request().Host && ref.Path == "/settings" {
		back = "/settings"
	}
	return c.Redirect(http.StatusSeeOther, back)
}
