package handlers

import (
	"net/http"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/auth"
)

// apiConversationList answers a page of the caller's conversations, most recent first.
func (s *Server) apiConversationList(c *echo.Context) error {
	ctx := c.Request().Context()
	me, _ := auth.UserFrom(ctx)
	page, err := s.chat.Conversations(ctx, me, c.QueryParam("cursor"), 0)
	if err != nil {
		return err
	}
	out := struct {
		Conversations []messenger.APIConversation `json:"conversations"`
		NextCursor    *string                     `json:"next_cursor"`
	}{Conversations: []messenger.APIConversation{}}
	for _, conv := range page.Conversations {
		out.Conversations = append(out.Conversations, conv.API(me.ID))
	}
	if page.NextCursor != "" {
		out.NextCursor = &page.NextCursor
	}
	return c.JSON(http.StatusOK, out)
}
