package handlers

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger/auth"
)

// apiUnread answers the caller's unread counts, for the portal's header badge.
func (s *Server) apiUnread(c *echo.Context) error {
	ctx := c.Request().Context()
	me, _ := auth.UserFrom(ctx)
	counts, err := s.chat.UnreadCounts(ctx, me)
	if err != nil {
		return err
	}
	out := struct {
		Total         int64            `json:"total"`
		Conversations map[string]int64 `json:"conversations"`
	}{Conversations: map[string]int64{}}
	for id, n := range counts {
		out.Total += n
		out.Conversations[strconv.FormatInt(id, 10)] = n
	}
	return c.JSON(http.StatusOK, out)
}
