package handlers

import (
	"net/http"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
)

// conversationRead raises my read watermark when the thread was actually seen (app.js
// decides: visible tab, focused window, the message in view).
func (s *Server) conversationRead(c *echo.Context) error {
	ctx, me, convID, err := conversationRequest(c)
	if err != nil {
		return err
	}
	seq, err := echo.FormValue[int64](c, "seq")
	if err != nil {
		return messenger.Errorf(messenger.EINVALID, "error.seq")
	}
	if err := s.chat.MarkRead(ctx, me, convID, seq); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// apiConversationRead raises the caller's read watermark; it never goes down.
func (s *Server) apiConversationRead(c *echo.Context) error {
	ctx, me, convID, err := conversationRequest(c)
	if err != nil {
		return err
	}
	var in struct {
		Seq int64 `json:"seq"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if err := s.chat.MarkRead(ctx, me, convID, in.Seq); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
