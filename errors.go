// Package messenger holds the domain types and error codes shared by every layer of the
// DreamSeed messenger: the store fills the types, use cases return the errors, handlers map
// them to HTTP.
package messenger

import (
	"errors"
	"fmt"
)

// Error codes: a small fixed set that the handlers map to HTTP statuses in one place.
const (
	EINVALID      = "invalid"
	EUNAUTHORIZED = "unauthorized"
	EFORBIDDEN    = "forbidden"
	ENOTFOUND     = "not_found"
	ECONFLICT     = "conflict"
	ETOOLARGE     = "too_large"
	EUNSUPPORTED  = "unsupported"
	ERATELIMITED  = "rate_limited"
	EINTERNAL     = "internal"
)

// Error is a domain error whose Message is safe to show to the user.
type Error struct {
	Code    string
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("messenger error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns a domain error with a user-facing message.
func Errorf(code string, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode answers the code of err: the code of a wrapped *Error, EINTERNAL for any
// other non-nil error, "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EINTERNAL
	}
}

// ErrorMessage answers the user-facing message of err; internal errors get a generic one so
// that their details never reach a user.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}
