package handlers

import (
	"context"
	"net/url"
	"strconv"

	"github.com/google/uuid"
	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/internal/trace"
)

// The parameters of paths and queries, parsed the same way by every handler: an id that
// does not parse answers what an id that is not the user's does.

// notFoundID is what a malformed id answers: the same as an id that is not ours.
var notFoundID = messenger.Errorf(messenger.ENOTFOUND, "error.conversation.not_found")

// pathID parses a positive int64 path parameter.
func pathID(c *echo.Context, name string) (int64, error) {
	id, err := echo.PathParam[int64](c, name)
	if err != nil || id <= 0 {
		return 0, notFoundID
	}
	return id, nil
}

// conversationRequest answers what every handler of one conversation starts from: the
// request's context, its signed-in user and the conversation's id in the path.
func conversationRequest(c *echo.Context) (context.Context, messenger.User, int64, error) {
	ctx := c.Request().Context()
	me, _ := auth.UserFrom(ctx)
	convID, err := conversationID(c)
	return ctx, me, convID, err
}

// conversationID parses the conversation id of the path, which the request's later log
// lines carry from then on.
func conversationID(c *echo.Context) (int64, error) {
	id, err := pathID(c, "id")
	if err == nil {
		trace.SetConversation(c.Request().Context(), id)
	}
	return id, err
}

// conversationOf answers the conversation the path names as the signed-in user sees it,
// with the request's context and that user.
func (s *Server) conversationOf(c *echo.Context) (context.Context, messenger.User, messenger.Conversation, error) {
	return loadNamed(c, conversationRequest, s.chat.Conversation)
}

// loadNamed answers what load finds of the id the path names, read by request
// (conversationRequest, fileRequest), with the request's context and its signed-in user.
func loadNamed[ID, T any](c *echo.Context, request func(*echo.Context) (context.Context, messenger.User, ID, error),
	load func(context.Context, messenger.User, ID) (T, error)) (context.Context, messenger.User, T, error) {
	ctx, me, id, err := request(c)
	if err != nil {
		var zero T
		return ctx, me, zero, err
	}
	v, err := load(ctx, me, id)
	return ctx, me, v, err
}

// queryInt parses an optional non-negative int64 query parameter (0 when absent).
func queryInt(c *echo.Context, name string) (int64, error) {
	return nonNegative(c.QueryParams(), name)
}

// nonNegative reads a non-negative integer query parameter (0 when absent).
func nonNegative(q url.Values, name string) (int64, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, messenger.Errorf(messenger.EINVALID, "error.param.non_negative", name)
	}
	return n, nil
}

// errFileNotFound is what an unknown, malformed or foreign file id answers alike.
var errFileNotFound = messenger.Errorf(messenger.ENOTFOUND, "error.file.not_found")

// fileRequest answers what every handler of one file or upload starts from: the request's
// context, its signed-in user and the id in the path.
func fileRequest(c *echo.Context) (context.Context, messenger.User, string, error) {
	ctx := c.Request().Context()
	me, _ := auth.UserFrom(ctx)
	id, err := fileID(c)
	return ctx, me, id, err
}

// uploadOf answers the signed-in user's upload the path names, with the request's context
// and that user.
func (s *Server) uploadOf(c *echo.Context) (context.Context, messenger.User, messenger.Upload, error) {
	return loadNamed(c, fileRequest, s.chat.Upload)
}

// fileID parses a file or upload id of the path (a UUID).
func fileID(c *echo.Context) (string, error) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return "", errFileNotFound
	}
	return id.String(), nil
}
