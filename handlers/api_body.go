package handlers

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
)

// maxJSONBody bounds a JSON request body: a 4,000-character message is under 16 KB.
const maxJSONBody = 64 << 10

// decodeJSON reads the request's JSON body into v: a body that is not JSON, is too large,
// has fields of the wrong type or trailing data is an invalid-input error.
func decodeJSON(c *echo.Context, v any) error {
	req := c.Request()
	if mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return messenger.Errorf(messenger.EUNSUPPORTED, "The body must be application/json.")
	}
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), req.Body, maxJSONBody))
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &tooLarge):
			return messenger.Errorf(messenger.ETOOLARGE, "The body is larger than %d bytes.", maxJSONBody)
		case errors.As(err, &typeErr):
			return messenger.Errorf(messenger.EINVALID, "Field %q has the wrong type.", typeErr.Field)
		case errors.Is(err, io.EOF):
			return messenger.Errorf(messenger.EINVALID, "The body is empty.")
		default:
			return messenger.Errorf(messenger.EINVALID, "The body is not valid JSON.")
		}
	}
	if dec.More() {
		return messenger.Errorf(messenger.EINVALID, "The body has data after the JSON value.")
	}
	return nil
}
