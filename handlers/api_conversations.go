package handlers

import (
	"net/http"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger/auth"
)

// apiConversationCreate starts a direct conversation or a group: 201 with it, or 200 with
// the direct conversation that already existed.
func (s *Server) apiConversationCreate(c *echo.Context) error {
	ctx := c.Request().Context()
	me, _ := auth.UserFrom(ctx)
	var in struct {
		Kind           string   `json:"kind"`
		Title          string   `json:"title"`
		ParticipantIDs []string `json:"participant_ids"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	conv, created, err := s.chat.CreateConversation(ctx, me, in.Kind, in.Title, in.ParticipantIDs)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return c.JSON(status, conv.API(me.ID))
}

// apiConversationShow answers one conversation of the caller.
func (s *Server) apiConversationShow(c *echo.Context) error {
	_, me, conv, err := s.conversationOf(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, conv.API(me.ID))
}

// apiConversationLeave takes the caller out of a conversation.
func (s *Server) apiConversationLeave(c *echo.Context) error {
	ctx, me, convID, err := conversationRequest(c)
	if err != nil {
		return err
	}
	if err := s.chat.LeaveConversation(ctx, me, convID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
