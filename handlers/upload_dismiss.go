package handlers

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v5"
)

// uploadDismiss hides one of my uploads that ended without a message (infected, failed)
// from its thread: app.js removes the bubble on 204, a plain form goes back to the thread.
func (s *Server) uploadDismiss(c *echo.Context) error {
	ctx, me, id, err := fileRequest(c)
	if err != nil {
		return err
	}
	up, err := s.chat.Upload(ctx, me, id)
	if err != nil {
		return err
	}
	if err := s.chat.DismissUpload(ctx, me, id); err != nil {
		return err
	}
	if !isHTMX(c) {
		return c.Redirect(http.StatusSeeOther, fmt.Sprintf("/c/%d", up.ConversationID))
	}
	return c.NoContent(http.StatusNoContent)
}
