package handlers

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/store"
)

// logout ends this session, or with ?all=1 every session of the user, with their live
// streams, and clears the cookie.
func (s *Server) logout(c *echo.Context) error {
	ctx := c.Request().Context()
	me, _ := auth.UserFrom(ctx)
	all := c.QueryParam("all") == "1"
	hash := auth.HashToken(auth.SessionTokenFrom(ctx))
	err := s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error {
		if all {
			_, err := tx.RevokeAllSessions(ctx)
			return err
		}
		return tx.RevokeSession(ctx, hash)
	})
	if err != nil {
		return err
	}
	// The streams of the sessions signed out end now, in every process.
	s.endStreams(ctx, me.ID, streamEnd{Reason: closedSignedOut, Sessions: []string{sessionID(hash)}, AllSessions: all})
	c.SetCookie(s.sessionCookie("", time.Time{}))
	c.Logger().Info("signed out", slog.Bool("everywhere", all))
	return c.Redirect(http.StatusSeeOther, s.signInURL())
}
