package handlers

import (
	"encoding/json"
	"errors"
	"io"
	"mime"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
)

// decodeJSON reads the request's JSON body into v (limitBody bounds it): a body that is
// not JSON, has fields of the wrong type or trailing data is an invalid-input error, one
// over the limit too large.
func decodeJSON(c *echo.Context, v any) error {
	req := c.Request()
	if mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return messenger.Errorf(messenger.EUNSUPPORTED, "error.json.content_type")
	}
	dec := json.NewDecoder(req.Body)
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case tooLarge(err):
			return errTooLarge
		case errors.As(err, &typeErr) && len(typeErr.Field) <= 40:
			return messenger.Errorf(messenger.EINVALID, "error.json.field_type", typeErr.Field)
		case errors.As(err, &typeErr):
			return messenger.Errorf(messenger.EINVALID, "error.json.type")
		case errors.Is(err, io.EOF):
			return messenger.Errorf(messenger.EINVALID, "error.json.empty")
		default:
			return messenger.Errorf(messenger.EINVALID, "error.json.invalid")
		}
	}
	if dec.More() {
		return messenger.Errorf(messenger.EINVALID, "error.json.trailing")
	}
	return nil
}
