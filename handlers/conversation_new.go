package handlers

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/views"
)

// conversationNew is the page to start a conversation: search people of my organization,
// pick one for a 1:1, or several and a title for a group.
func (s *Server) conversationNew(c *echo.Context) error {
	ctx := c.Request().Context()
	me, _ := auth.UserFrom(ctx)
	q := c.QueryParam("q")
	people, err := s.chat.SearchPeople(ctx, me, q)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.NewConversationPage(views.NewConversationProps{
		Layout: s.layout(views.T(ctx, "new.title")), Me: me, Query: q, People: people,
	}))
}

// peopleSearch answers the people rows for the search box (active search).
func (s *Server) peopleSearch(c *echo.Context) error {
	ctx := c.Request().Context()
	me, _ := auth.UserFrom(ctx)
	people, err := s.chat.SearchPeople(ctx, me, c.QueryParam("q"))
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.PeopleRows(people))
}

// conversationCreate starts the conversation chosen on the new-conversation page and
// opens it.
func (s *Server) conversationCreate(c *echo.Context) error {
	ctx := c.Request().Context()
	me, _ := auth.UserFrom(ctx)
	form, err := c.FormValues()
	if err != nil {
		return messenger.Errorf(messenger.EINVALID, "error.form")
	}
	members := form["member"]
	kind := messenger.KindGroup
	if len(members) == 1 && form.Get("title") == "" {
		kind = messenger.KindDirect
	}
	conv, _, err := s.chat.CreateConversation(ctx, me, kind, form.Get("title"), members)
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, fmt.Sprintf("/c/%d", conv.ID))
}
