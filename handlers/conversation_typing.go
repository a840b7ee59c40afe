package handlers

import (
	"net/http"

	"github.com/labstack/echo/v5"
)

// conversationTyping tells the other members that I am typing (typing=1, at most once a
// second from app.js) or stopped (typing=0).
func (s *Server) conversationTyping(c *echo.Context) error {
	ctx, me, convID, err := conversationRequest(c)
	if err != nil {
		return err
	}
	if err := s.chat.SetTyping(ctx, me, convID, c.FormValue("typing") == "1"); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// apiConversationTyping is conversationTyping for API clients: {"typing": bool}.
func (s *Server) apiConversationTyping(c *echo.Context) error {
	ctx, me, convID, err := conversationRequest(c)
	if err != nil {
		return err
	}
	var in struct {
		Typing bool `json:"typing"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if err := s.chat.SetTyping(ctx, me, convID, in.Typing); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
