package handlers

import (
	"context"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger/views"
)

// render renders a component into a buffer first, so that a failed render never sends
// half a page with a 200.
func render(c *echo.Context, status int, component templ.Component) error {
	buf := templ.GetBuffer()
	defer templ.ReleaseBuffer(buf)
	if err := component.Render(c.Request().Context(), buf); err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return writeHTML(c, status, buf.Bytes())
}

// layout answers the layout props of a page titled title.
func (s *Server) layout(title string) views.LayoutProps {
	return views.LayoutProps{Title: title, AssetQuery: s.assetQ, SignInURL: s.signInURL(), StreamHiddenClose: s.cfg.StreamHiddenClose}
}

// signInURL is where a signed-out browser goes to sign in: dev login, or the portal's
// iframe entry.
func (s *Server) signInURL() string {
	if s.cfg.Dev {
		return "/dev/login"
	}
	return "/embed"
}

// withLocale sets the page locale of a request that has no session (dev login, embed).
func withLocale(c *echo.Context) context.Context {
	ctx := views.WithLocale(c.Request().Context(), views.NegotiateLocale("", c.Request().Header.Get("Accept-Language")))
	c.SetRequest(c.Request().WithContext(ctx))
	return ctx
}

// isHTMX reports whether the request came from htmx (and wants a fragment).
func isHTMX(c *echo.Context) bool {
	return c.Request().Header.Get("HX-Request") != ""
}
