package handlers

import (
	"net/http"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
)

// portalSignIn is how the portal signs a user into the messenger: it posts the user's
// token (never in a URL), gets a session cookie and a redirect to next.
func (s *Server) portalSignIn(c *echo.Context) error {
	token := c.FormValue("token")
	if token == "" {
		return messenger.Errorf(messenger.EUNAUTHORIZED, "A portal token is required.")
	}
	me, _, err := s.signIn(c.Request().Context(), c, token)
	if err != nil {
		return err
	}
	if err := s.startSession(c, me); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, localNext(c.FormValue("next")))
}
