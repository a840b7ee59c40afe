package handlers

import (
	"net/http"

	"github.com/labstack/echo/v5"
)

// conversationLeave takes me out of a conversation and back to the list.
func (s *Server) conversationLeave(c *echo.Context) error {
	ctx, me, convID, err := conversationRequest(c)
	if err != nil {
		return err
	}
	if err := s.chat.LeaveConversation(ctx, me, convID); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/")
}
