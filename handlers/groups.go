package handlers

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/views"
)

// The group pages: the thread header with its member panel (kept live by app.js), the
// invitation page, the admins' actions and the audit log. Actions post plain forms and
// come back to the thread with the member panel open.

// backToMembers answers a redirect to the thread with its member panel open.
func backToMembers(c *echo.Context, convID int64) error {
	return c.Redirect(http.StatusSeeOther, fmt.Sprintf("/c/%d?members=1", convID))
}

// threadHeader answers the thread's header, for app.js to refresh when the members or
// title changed.
func (s *Server) threadHeader(c *echo.Context) error {
	ctx, me, conv, err := s.conversationOf(c)
	if err != nil {
		return err
	}
	notify, err := s.conversationNotify(ctx, me, conv)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.ThreadHeader(views.ThreadProps{
		Me: me, Conversation: conv, Now: time.Now(), MembersOpen: c.QueryParam("members") == "1", Notify: notify,
	}))
}

// conversationInvite is the page to invite people into a group: search, pick, invite.
func (s *Server) conversationInvite(c *echo.Context) error {
	ctx, me, conv, err := s.conversationOf(c)
	if err != nil {
		return err
	}
	switch conv.Kind {
	case messenger.KindDirect:
		return messenger.Errorf(messenger.EINVALID, "error.direct.add")
	case messenger.KindAnnouncement:
		return messenger.Errorf(messenger.EFORBIDDEN, "error.announcement.no_members")
	}
	q := c.QueryParam("q")
	people, err := s.chat.SearchPeople(ctx, me, q)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.InvitePage(views.InviteProps{
		Layout: s.layout(views.T(ctx, "invite.title")), Me: me, Conversation: conv, Query: q, People: people,
	}))
}

// invitePeople answers the people rows of the invitation page's search box.
func (s *Server) invitePeople(c *echo.Context) error {
	ctx, me, conv, err := s.conversationOf(c)
	if err != nil {
		return err
	}
	people, err := s.chat.SearchPeople(ctx, me, c.QueryParam("q"))
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.InviteRows(conv, people))
}

// participantsAdd invites the people picked on the invitation page.
func (s *Server) participantsAdd(c *echo.Context) error {
	ctx, me, convID, err := conversationRequest(c)
	if err != nil {
		return err
	}
	form, err := c.FormValues()
	if err != nil {
		return messenger.Errorf(messenger.EINVALID, "error.form")
	}
	if _, err := s.chat.Invite(ctx, me, convID, form["member"]); err != nil {
		return err
	}
	return backToMembers(c, convID)
}

// participantRemove removes a member (admins).
func (s *Server) participantRemove(c *echo.Context) error {
	ctx, me, convID, err := conversationRequest(c)
	if err != nil {
		return err
	}
	if err := s.chat.RemoveMember(ctx, me, convID, subParam(c)); err != nil {
		return err
	}
	return backToMembers(c, convID)
}

// participantRole makes a member admin or member again (admins).
func (s *Server) participantRole(c *echo.Context) error {
	ctx, me, convID, err := conversationRequest(c)
	if err != nil {
		return err
	}
	if err := s.chat.SetMemberRole(ctx, me, convID, subParam(c), c.FormValue("role")); err != nil {
		return err
	}
	return backToMembers(c, convID)
}

// conversationRename renames a group (admins).
func (s *Server) conversationRename(c *echo.Context) error {
	ctx, me, convID, err := conversationRequest(c)
	if err != nil {
		return err
	}
	if _, err := s.chat.Rename(ctx, me, convID, c.FormValue("title")); err != nil {
		return err
	}
	return backToMembers(c, convID)
}

// auditLog is a group's audit log page (admins).
func (s *Server) auditLog(c *echo.Context) error {
	ctx, me, convID, entries, err := s.auditOf(c)
	if err != nil {
		return err
	}
	conv, err := s.chat.Conversation(ctx, me, convID)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.AuditPage(views.AuditProps{
		Layout: s.layout(views.T(ctx, "audit.title")), Me: me, Conversation: conv, Entries: entries,
	}))
}

// auditOf answers the audit log of the group the path names, newest first (admins), with
// the request's context, the signed-in user and the conversation's id.
func (s *Server) auditOf(c *echo.Context) (context.Context, messenger.User, int64, []messenger.AuditEntry, error) {
	ctx, me, convID, err := conversationRequest(c)
	if err != nil {
		return ctx, me, convID, nil, err
	}
	entries, err := s.chat.AuditLog(ctx, me, convID)
	return ctx, me, convID, entries, err
}

// subParam answers the {sub} of the path: a portal id, which may hold characters the URL
// escapes (the router leaves them escaped when the raw path differs).
func subParam(c *echo.Context) string {
	v := c.Param("sub")
	if c.Request().URL.RawPath != "" {
		if u, err := url.PathUnescape(v); err == nil {
			v = u
		}
	}
	return v
}
