package handlers

import (
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/views"
)

// messageCreate sends a message from the composer: htmx/fetch gets the new row, a plain
// form post is redirected back to the thread (or shown it again with the error and the
// text kept: empty, too long, too fast).
func (s *Server) messageCreate(c *echo.Context) error {
	ctx, me, convID, err := conversationRequest(c)
	if err != nil {
		return err
	}
	body := c.FormValue("body")
	msg, created, err := s.chat.SendMessage(ctx, me, convID, body, c.FormValue("client_msg_id"))
	if !isHTMX(c) {
		if messenger.ErrorCode(err) == messenger.EINVALID {
			problem := views.T(ctx, "composer.invalid")
			switch {
			case messenger.IsBlank(body):
				problem = views.T(ctx, "composer.empty")
			case utf8.RuneCountInString(strings.TrimSpace(body)) > messenger.MaxMessageLength:
				problem = views.T(ctx, "composer.too_long")
			}
			return s.renderThread(c, me, convID, 0, body, problem)
		}
		if messenger.ErrorCode(err) == messenger.ERATELIMITED {
			setRetryAfter(c, err)
			return s.renderThread(c, me, convID, 0, body, views.T(ctx, "composer.rate_limited"))
		}
		if err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, fmt.Sprintf("/c/%d#msg-%d", convID, msg.ID))
	}
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return render(c, status, views.MessageRow(views.LiveItem(msg, me.Sub)))
}

// newClientMsgID answers a fresh id for a composer.
func newClientMsgID() string { return uuid.NewString() }
