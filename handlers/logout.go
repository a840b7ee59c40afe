package handlers

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger/auth"
)

// logout ends this session, or with ?all=1 every session of the user, with their live
// streams, and clears the cookie.
func (s *Server) logout(c *echo.Context) error {
	ctx := c.Request().Context()
	me, _ := auth.UserFrom(ctx)
	all := c.QueryParam("all") == "1"
	token := auth.SessionTokenFrom(ctx)
	if err := s.chat.SignOut(ctx, me, token, all); err != nil {
		return err
	}
	// The streams of the sessions signed out end now, in every process.
	s.endStreams(ctx, me.ID, streamEnd{Reason: closedSignedOut, Sessions: []string{sessionID(auth.HashToken(token))}, AllSessions: all})
	c.SetCookie(s.sessionCookie("", time.Time{}))
	c.Logger().InfoContext(c.Request().Context(), "signed out", slog.Bool("everywhere", all))
	return c.Redirect(http.StatusSeeOther, s.signInURL())
}
