package handlers

import (
	"net/http"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
)

// apiMessageList answers a page of a conversation's history: newest first by default and
// with before_seq, ascending with after_seq.
func (s *Server) apiMessageList(c *echo.Context) error {
	ctx, me, convID, page, err := pageRequest(c)
	if err != nil {
		return err
	}
	msgs, hasMore, err := s.chat.Messages(ctx, me, convID, page)
	if err != nil {
		return err
	}
	out := struct {
		Messages []messenger.APIMessage `json:"messages"`
		HasMore  bool                   `json:"has_more"`
	}{Messages: make([]messenger.APIMessage, len(msgs)), HasMore: hasMore}
	for i, m := range msgs {
		out.Messages[i] = m.API()
	}
	return c.JSON(http.StatusOK, out)
}

// apiMessageCreate sends a message: 201 with it, or 200 with the stored one when its
// client_msg_id was sent before.
func (s *Server) apiMessageCreate(c *echo.Context) error {
	ctx, me, convID, err := conversationRequest(c)
	if err != nil {
		return err
	}
	var in struct {
		Body        string `json:"body"`
		ClientMsgID string `json:"client_msg_id"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	msg, created, err := s.chat.SendMessage(ctx, me, convID, in.Body, in.ClientMsgID)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return c.JSON(status, msg.API())
}
