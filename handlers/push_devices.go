package handlers

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/internal/trace"
	"github.com/dreamseed/messenger/views"
)

// pushDevicesSection is the settings page's device section (the opt-in and the device
// list); nil — the page's own placeholder — when push is off or the list cannot be read
// (logged: the rest of the settings still show).
func (s *Server) pushDevicesSection(ctx context.Context, me messenger.User) templ.Component {
	if s.publicKey() == "" {
		return nil
	}
	devices, err := s.chat.PushDevices(ctx, me)
	if err != nil {
		s.logger.Log(ctx, trace.FailureLevel(err), "push devices", slog.String("error", err.Error()))
		return nil
	}
	return views.PushDevices(devices, time.Now())
}

// pushDevices is this device's notifications and the devices that get pushes: a page of
// its own, or the section alone for push.js (HX-Request) after a device was added.
func (s *Server) pushDevices(c *echo.Context) error {
	ctx := c.Request().Context()
	me, _ := auth.UserFrom(ctx)
	devices, err := s.chat.PushDevices(ctx, me)
	if err != nil {
		return err
	}
	if isHTMX(c) {
		return render(c, http.StatusOK, views.PushDevices(devices, time.Now()))
	}
	return render(c, http.StatusOK, views.PushDevicesPage(views.PushDevicesProps{
		Layout: s.layout(views.T(ctx, "push.title")), Devices: devices, Now: time.Now(),
	}))
}

// pushEnable is the small top-level window the framed settings open to subscribe this
// browser: it needs no session (it carries a ticket in its fragment). It keeps its opener
// (the iframe, on this origin), which the page's default opener policy would cut off.
func (s *Server) pushEnable(c *echo.Context) error {
	// The window has no session: the opener names the user's language in the query.
	ctx := views.WithLocale(c.Request().Context(), views.NegotiateLocale(c.QueryParam("lang"), c.Request().Header.Get("Accept-Language")))
	c.SetRequest(c.Request().WithContext(ctx))
	c.Response().Header().Set("Cross-Origin-Opener-Policy", "unsafe-none")
	return render(c, http.StatusOK, views.PushEnablePage(views.PushEnableProps{
		Layout: s.layout(views.T(ctx, "push.enable_page.title")), PublicKey: s.publicKey(),
	}))
}
