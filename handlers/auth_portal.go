package handlers

import (
	"net/http"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
)

// portalSignIn is how the portal signs a user into the messenger: it posts the user's
// token in the body (a token in the URL is not taken: logs and history keep URLs), gets
// a session cookie and a redirect to next.
func (s *Server) portalSignIn(c *echo.Context) error {
	token := postFormValue(c, "token")
	if token == "" {
		return messenger.Errorf(messenger.EUNAUTHORIZED, "error.token.portal")
	}
	me, _, err := s.signIn(c.Request().Context(), c, token)
	if err != nil {
		return err
	}
	if err := s.startSession(c, me); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, localNext(postFormValue(c, "next")))
}

// postFormValue answers a field of the request's urlencoded body only, never of its query
// string (limitBody has parsed the body already).
func postFormValue(c *echo.Context, name string) string {
	req := c.Request()
	if req.PostForm == nil {
		if err := req.ParseForm(); err != nil {
			return ""
		}
	}
	return req.PostForm.Get(name)
}
