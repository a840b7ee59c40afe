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
	EUNAVAILABLE  = "unavailable" // the database did not answer in time: try again shortly
	EINTERNAL     = "internal"
)

// Error is a domain error whose words are safe to show to the user: Key names them in the
// table of the messenger's words (Text), Args fill them in.
type Error struct {
	Code string
	Key  string
	Args []any
}

// Error implements the error interface, in English, as logs read it.
func (e *Error) Error() string {
	return fmt.Sprintf("messenger error: code=%s message=%s", e.Code, e.Text(LangEnglish))
}

// Text answers the error's words in lang.
func (e *Error) Text(lang string) string {
	return Textf(lang, e.Key, e.Args...)
}

// Errorf returns a domain error whose words are the text of key with args filled in. An
// *Error among the args is worded in the reader's language with the rest. A key the table
// lacks is a bare format ("%s: %s") of such args.
func Errorf(code string, key string, args ...any) *Error {
	return &Error{Code: code, Key: key, Args: args}
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

// ErrorMessage answers the user-facing message of err in English.
func ErrorMessage(err error) string {
	return ErrorText(err, LangEnglish)
}

// ErrorText answers the user-facing message of err in lang; internal errors get a generic
// one so that their details never reach a user.
func ErrorText(err error, lang string) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Text(lang)
	}
	return Text(lang, "error.internal")
}
