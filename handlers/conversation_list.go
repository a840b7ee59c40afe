package handlers

import (
	"net/http"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/views"
)

// conversationList is the home page: my conversations, most recent first.
func (s *Server) conversationList(c *echo.Context) error {
	ctx := c.Request().Context()
	me, _ := auth.UserFrom(ctx)
	if s.cacheable(c) {
		return s.servePage(c, me, 0, func(string) (templ.Component, bool, error) {
			page, err := s.listPage(c, me)
			return page, false, err
		})
	}
	page, err := s.listPage(c, me)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, page)
}

// listPage reads the list page of me's conversations (after the request's cursor).
func (s *Server) listPage(c *echo.Context, me messenger.User) (templ.Component, error) {
	ctx := c.Request().Context()
	var page chat.ConversationPage
	var unread int64
	var err error
	if cursor := c.QueryParam("cursor"); cursor == "" {
		page, unread, err = s.chat.ListPage(ctx, me)
	} else if page, err = s.chat.Conversations(ctx, me, cursor, 0); err == nil {
		unread, err = s.chat.UnreadTotal(ctx, me)
	}
	if err != nil {
		return nil, err
	}
	layout := s.layout("")
	layout.UnreadTotal = unread
	return views.AppPage(views.AppProps{
		Layout: layout,
		List:   views.ListProps{Me: me, Conversations: page.Conversations, NextCursor: page.NextCursor, Now: time.Now()},
	}), nil
}

// conversationRows is the next page of the list, for infinite scroll.
func (s *Server) conversationRows(c *echo.Context) error {
	ctx := c.Request().Context()
	me, _ := auth.UserFrom(ctx)
	page, err := s.chat.Conversations(ctx, me, c.QueryParam("cursor"), 0)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.ConversationRows(views.ListProps{
		Me: me, Conversations: page.Conversations, NextCursor: page.NextCursor, Now: time.Now(),
	}))
}

// listFragment is the list as the page shows it (its first page, or the empty state),
// which the page's list fetches again when the stream says it changed: the server alone
// orders it and counts what is unread. active is the open conversation, highlighted.
// It is never the page cache's: it is asked for because an event just made the cached
// list stale.
func (s *Server) listFragment(c *echo.Context) error {
	ctx := c.Request().Context()
	me, _ := auth.UserFrom(ctx)
	active, err := queryInt(c, "active")
	if err != nil {
		return err
	}
	page, unread, err := s.chat.ListPage(ctx, me)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.ConversationList(views.ListProps{
		Me: me, Conversations: page.Conversations, NextCursor: page.NextCursor, ActiveID: active, Now: time.Now(),
	}, unread))
}
