package handlers

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
)

// apiConversationRename renames a group (its admins).
func (s *Server) apiConversationRename(c *echo.Context) error {
	ctx, me, convID, err := conversationRequest(c)
	if err != nil {
		return err
	}
	var in struct {
		Title *string `json:"title"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.Title == nil {
		return messenger.Errorf(messenger.EINVALID, "error.title.missing")
	}
	conv, err := s.chat.Rename(ctx, me, convID, *in.Title)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, conv.API(me.ID))
}

// apiParticipantsAdd invites people into a group (any member).
func (s *Server) apiParticipantsAdd(c *echo.Context) error {
	ctx, me, convID, err := conversationRequest(c)
	if err != nil {
		return err
	}
	var in struct {
		UserIDs []string `json:"user_ids"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	conv, err := s.chat.Invite(ctx, me, convID, in.UserIDs)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, conv.API(me.ID))
}

// apiParticipantRemove removes a member (admins); removing oneself is leaving.
func (s *Server) apiParticipantRemove(c *echo.Context) error {
	ctx, me, convID, err := conversationRequest(c)
	if err != nil {
		return err
	}
	if sub := subParam(c); sub == me.Sub {
		err = s.chat.LeaveConversation(ctx, me, convID)
	} else {
		err = s.chat.RemoveMember(ctx, me, convID, sub)
	}
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// apiParticipantRole makes a member admin or member (admins).
func (s *Server) apiParticipantRole(c *echo.Context) error {
	ctx, me, convID, err := conversationRequest(c)
	if err != nil {
		return err
	}
	var in struct {
		Role string `json:"role"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if err := s.chat.SetMemberRole(ctx, me, convID, subParam(c), in.Role); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// apiAuditEntry is one line of a group's audit log in the API.
type apiAuditEntry struct {
	ID        int64              `json:"id"`
	Action    string             `json:"action"`
	Actor     messenger.APIUser  `json:"actor"`
	Target    *messenger.APIUser `json:"target"`
	Details   map[string]any     `json:"details"`
	RequestID string             `json:"request_id"`
	CreatedAt time.Time          `json:"created_at"`
}

// apiAuditLog answers a group's audit log, newest first (admins).
func (s *Server) apiAuditLog(c *echo.Context) error {
	_, _, _, entries, err := s.auditOf(c)
	if err != nil {
		return err
	}
	out := make([]apiAuditEntry, len(entries))
	for i, e := range entries {
		out[i] = auditAPI(e)
	}
	return c.JSON(http.StatusOK, map[string]any{"entries": out})
}

func auditAPI(e messenger.AuditEntry) apiAuditEntry {
	a := apiAuditEntry{
		ID: e.ID, Action: e.Action, Actor: e.Actor.API(), Details: e.Details,
		RequestID: e.RequestID, CreatedAt: e.CreatedAt.UTC(),
	}
	if e.Target != nil {
		t := e.Target.API()
		a.Target = &t
	}
	return a
}
