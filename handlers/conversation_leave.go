package handlers

import (
	"net/http"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger/auth"
)

// conversationLeave takes me out of a conversation and back to the list.
func (s *Server) conversationLeave(c *echo.Context) error {
	ctx := c.Request().Context()
	me, _ := auth.UserFrom(ctx)
	convID, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if err := s.chat.LeaveConversation(ctx, me, convID); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/")
}
