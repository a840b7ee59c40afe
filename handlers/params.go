package handlers

import (
	"net/url"
	"strconv"

	"github.com/google/uuid"
	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
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

// fileID parses a file or upload id of the path (a UUID).
func fileID(c *echo.Context) (string, error) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return "", errFileNotFound
	}
	return id.String(), nil
}
