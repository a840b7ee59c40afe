package handlers

import (
	"net/http"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/chat"
)

// pushTicket issues a one-time ticket to a signed-in page (session and CSRF token): the
// framed settings hand it to the small top-level window in its URL fragment, which has no
// session cookie of its own (the iframe's is partitioned).
func (s *Server) pushTicket(c *echo.Context) error {
	ctx := c.Request().Context()
	me, _ := auth.UserFrom(ctx)
	ticket, err := s.chat.IssuePushTicket(ctx, me, chat.PushTicketTTL)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"ticket": ticket, "expires_in": int(chat.PushTicketTTL.Seconds())})
}
