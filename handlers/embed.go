package handlers

import (
	"net/http"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
)

// embed is the iframe entry: signed in, it opens the list; otherwise it asks the user to
// open the messenger from the portal (which posts /auth/portal).
func (s *Server) embed(c *echo.Context) error {
	if ck, err := c.Cookie(s.cookieName()); err == nil && ck.Value != "" {
		if _, err := s.chat.LiveSession(c.Request().Context(), ck.Value); err == nil {
			return c.Redirect(http.StatusSeeOther, "/")
		}
	}
	withLocale(c)
	return messenger.Errorf(messenger.EUNAUTHORIZED, "error.sign_in")
}
