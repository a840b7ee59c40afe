package handlers

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v5"
)

// uploadDismiss hides one of my uploads that ended without a message (infected, failed)
// from its thread: app.js removes the bubble on 204, a plain form goes back to the thread.
func (s *Server) uploadDismiss(c *echo.Context) error {
	ctx, me, up, err := s.uploadOf(c)
	if err != nil {
		return err
	}
	if err := s.chat.DismissUpload(ctx, me, up.ID); err != nil {
		return err
	}
	if !isHTMX(c) {
		return c.Redirect(http.StatusSeeOther, fmt.Sprintf("/c/%d", up.ConversationID))
	}
	return c.NoContent(http.StatusNoContent)
}
