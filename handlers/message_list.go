package handlers

import (
	"context"
	"net/http"
	"net/url"
	"slices"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/views"
)

// messageList answers thread rows for app.js: after_seq (catching up after a gap or a
// reconnect, oldest first, up to 200) or before_seq (the older page when scrolled to the
// top, with the loader for the next one). X-Has-More says whether more lie beyond.
func (s *Server) messageList(c *echo.Context) error {
	ctx, me, convID, page, err := pageRequest(c)
	if err != nil {
		return err
	}
	if page.After {
		page.Limit = maxPageLimit
	}
	msgs, hasMore, err := s.chat.Messages(ctx, me, convID, page)
	if err != nil {
		return err
	}
	if !page.After {
		slices.Reverse(msgs)
	}
	if hasMore {
		c.Response().Header().Set("X-Has-More", "1")
	}
	items := views.ThreadItems(msgs, me.Sub, views.ReadState{})
	if !page.After && hasMore && len(msgs) > 0 {
		return render(c, http.StatusOK, views.OlderPage(convID, msgs[0].Seq, items))
	}
	return render(c, http.StatusOK, views.MessageItems(items))
}

// maxPageLimit is the most messages one page answers.
const maxPageLimit = 200

// pageRequest reads the conversation the path names and the page of its messages the query
// asks for (before_seq / after_seq / limit), with the request's context and user.
func pageRequest(c *echo.Context) (context.Context, messenger.User, int64, chat.Page, error) {
	ctx, me, convID, err := conversationRequest(c)
	if err != nil {
		return ctx, me, convID, chat.Page{}, err
	}
	page, err := parsePage(c.QueryParams())
	return ctx, me, convID, page, err
}

// parsePage reads a page of messages from a query: seqs are non-negative integers, a limit
// above maxPageLimit is maxPageLimit and none (or 0) is the default page.
func parsePage(q url.Values) (chat.Page, error) {
	var p chat.Page
	var err error
	if q.Get("after_seq") != "" {
		p.After = true
		if p.AfterSeq, err = nonNegative(q, "after_seq"); err != nil {
			return chat.Page{}, err
		}
	}
	if p.BeforeSeq, err = nonNegative(q, "before_seq"); err != nil {
		return chat.Page{}, err
	}
	limit, err := nonNegative(q, "limit")
	if err != nil {
		return chat.Page{}, err
	}
	p.Limit = int(min(limit, maxPageLimit))
	return p, nil
}
