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

// threadShow opens a conversation beside the list (on a phone: alone).
func (s *Server) threadShow(c *echo.Context) error {
	me, _ := auth.UserFrom(c.Request().Context())
	convID, err := conversationID(c)
	if err != nil {
		return err
	}
	beforeSeq, err := queryInt(c, "before_seq")
	if err != nil {
		return err
	}
	if beforeSeq == 0 && s.cacheable(c) {
		return s.servePage(c, me, convID, func(clientMsgID string) (templ.Component, bool, error) {
			_, page, typing, err := s.threadPage(c, me, convID, 0, "", "", nil, clientMsgID)
			return page, typing, err
		})
	}
	return s.renderThread(c, me, convID, beforeSeq, "", "")
}

// renderThread renders the page of a thread; draft and problem carry a failed
// no-JavaScript send back to the composer.
func (s *Server) renderThread(c *echo.Context, me messenger.User, convID, beforeSeq int64, draft, problem string) error {
	return s.renderThreadPage(c, me, convID, beforeSeq, draft, problem, nil)
}

// renderThreadNotify renders the thread with its notification menu open on a refused
// keyword list (typed as it was sent).
func (s *Server) renderThreadNotify(c *echo.Context, me messenger.User, convID int64, problem, typed string) error {
	return s.renderThreadPage(c, me, convID, 0, "", "", func(n *views.ConversationNotify) {
		n.Error, n.Keywords = problem, chat.SplitKeywords(typed)
	})
}

func (s *Server) renderThreadPage(c *echo.Context, me messenger.User, convID, beforeSeq int64, draft, problem string,
	notifyProblem func(*views.ConversationNotify)) error {
	status, page, _, err := s.threadPage(c, me, convID, beforeSeq, draft, problem, notifyProblem, newClientMsgID())
	if err != nil {
		return err
	}
	return render(c, status, page)
}

// threadPage reads what the page of a thread shows and answers it with its status, and
// whether it shows someone typing.
func (s *Server) threadPage(c *echo.Context, me messenger.User, convID, beforeSeq int64, draft, problem string,
	notifyProblem func(*views.ConversationNotify), clientMsgID string) (int, templ.Component, bool, error) {
	ctx := c.Request().Context()
	now := time.Now()
	p, err := s.chat.OpenThreadPage(ctx, me, convID, beforeSeq, now)
	if err != nil {
		return 0, nil, false, err
	}
	thread, page, unread, uploads := p.Thread, p.List, p.Unread, p.Uploads
	notify := s.notifyView(me, thread.Conversation, p.Settings, p.Partner, now)
	status := http.StatusOK
	if notifyProblem != nil {
		notifyProblem(&notify)
		status = http.StatusUnprocessableEntity
	}
	layout := s.layout(views.ConvTitle(ctx, thread.Conversation, me.ID))
	layout.UnreadTotal = unread
	if problem != "" {
		status = http.StatusUnprocessableEntity
	}
	return status, views.AppPage(views.AppProps{
		Layout: layout,
		List: views.ListProps{Me: me, Conversations: page.Conversations, NextCursor: page.NextCursor,
			ActiveID: convID, Now: now},
		Thread: &views.ThreadProps{
			Me: me, Conversation: thread.Conversation, Messages: thread.Messages, HasOlder: thread.HasOlder,
			Read:        views.ReadState{Kind: thread.Conversation.Kind, Marks: thread.Watermarks, Members: thread.Members},
			Now:         now,
			Typing:      thread.Typing,
			ClientMsgID: clientMsgID, Draft: draft, Error: problem,
			MembersOpen: c.QueryParam("members") == "1",
			Uploads:     uploads,
			Limits:      views.UploadLimits{MaxBytes: s.cfg.MaxUploadBytes, MaxFiles: s.cfg.MaxFilesPerUpload},
			Notify:      notify,
		},
	}), len(thread.Typing) > 0, nil
}
