package handlers

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/views"
)

// conversationList is the home page: my conversations, most recent first.
func (s *Server) conversationList(c *echo.Context) error {
	ctx := c.Request().Context()
	me, _ := auth.UserFrom(ctx)
	page, err := s.chat.Conversations(ctx, me, c.QueryParam("cursor"), 0)
	if err != nil {
		return err
	}
	unread, err := s.chat.UnreadTotal(ctx, me)
	if err != nil {
		return err
	}
	layout := s.layout("")
	layout.UnreadTotal = unread
	return render(c, http.StatusOK, views.AppPage(views.AppProps{
		Layout: layout,
		List:   views.ListProps{Me: me, Conversations: page.Conversations, NextCursor: page.NextCursor, Now: time.Now()},
	}))
}

// conversationRows is the next page of the list, for infinite scroll.
func (s *Server) conversationRows(c *echo.Context) error {
	ctx := c.Request().Context()
	me, _ := auth.UserFrom(ctx)
	page, err := s.chat.Conversations(ctx, me, c.QueryParam("cursor"), 0)
	if err != nil {
		return err
	}
	active, err := queryInt(c, "active")
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.ConversationRows(views.ListProps{
		Me: me, Conversations: page.Conversations, NextCursor: page.NextCursor, ActiveID: active, Now: time.Now(),
	}))
}
