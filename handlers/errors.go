package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/ratelimit"
	"github.com/dreamseed/messenger/views"
)

// statusClientClosed is what the logs and metrics record for a request its client
// abandoned (nginx's 499).
const statusClientClosed = 499

// statusOf maps domain error codes to HTTP statuses.
var statusOf = map[string]int{
	messenger.EINVALID:      http.StatusBadRequest,
	messenger.EUNAUTHORIZED: http.StatusUnauthorized,
	messenger.EFORBIDDEN:    http.StatusForbidden,
	messenger.ENOTFOUND:     http.StatusNotFound,
	messenger.ECONFLICT:     http.StatusConflict,
	messenger.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	messenger.EUNSUPPORTED:  http.StatusUnsupportedMediaType,
	messenger.ERATELIMITED:  http.StatusTooManyRequests,
	messenger.EUNAVAILABLE:  http.StatusServiceUnavailable,
	messenger.EINTERNAL:     http.StatusInternalServerError,
}

// codeOfStatus maps statuses of echo's own errors (no route, wrong method, too large)
// back to domain codes.
func codeOfStatus(status int) string {
	switch status {
	case http.StatusNotFound:
		return messenger.ENOTFOUND
	case http.StatusMethodNotAllowed, http.StatusBadRequest:
		return messenger.EINVALID
	case http.StatusUnauthorized:
		return messenger.EUNAUTHORIZED
	case http.StatusForbidden:
		return messenger.EFORBIDDEN
	case http.StatusRequestEntityTooLarge:
		return messenger.ETOOLARGE
	case http.StatusUnsupportedMediaType:
		return messenger.EUNSUPPORTED
	case http.StatusTooManyRequests:
		return messenger.ERATELIMITED
	}
	return messenger.EINTERNAL
}

// apiError is the JSON error shape of the API.
type apiError struct {
	Error apiErrorBody `json:"error"`
}

type apiErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// handleError is the one place errors become responses: JSON for the API, a fragment for
// htmx, a page otherwise. Internal errors are logged here and never shown.
func (s *Server) handleError(c *echo.Context, err error) {
	if resp, uErr := echo.UnwrapResponse(c.Response()); uErr == nil && resp.Committed {
		return
	}
	if errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil {
		// The client went away; nobody reads an answer, and it is not a server error.
		c.Logger().DebugContext(c.Request().Context(), "request abandoned by the client")
		c.NoContent(statusClientClosed)
		return
	}
	req := c.Request()
	ctx := browserLocale(req)
	lang := views.Locale(ctx)
	code, message := messenger.ErrorCode(err), messenger.ErrorText(err, lang)
	status := statusOf[code]
	// echo's own errors (no route, wrong method) are not *echo.HTTPError in v5: they
	// carry a status, which is kept, with a code and a fixed text of ours.
	if sc := echo.StatusCode(err); code == messenger.EINTERNAL && sc >= 400 && sc < 500 {
		code, message, status = codeOfStatus(sc), statusText(lang, sc), sc
	}
	if status == 0 {
		status = http.StatusInternalServerError
	}
	setRetryAfter(c, err)
	switch code {
	case messenger.EINTERNAL:
		c.Logger().ErrorContext(req.Context(), "internal error", slog.String("error", err.Error()), slog.String("path", req.URL.Path))
	case messenger.EUNAVAILABLE:
		c.Logger().ErrorContext(req.Context(), "database failure", slog.String("error", err.Error()), slog.String("path", req.URL.Path))
		if s.chat != nil {
			s.chat.DatabaseFailed()
		}
	}

	switch {
	case strings.HasPrefix(req.URL.Path, "/api/") || strings.Contains(req.Header.Get("Accept"), "application/json"):
		c.JSON(status, apiError{Error: apiErrorBody{Code: code, Message: message}})
	case req.Method == http.MethodHead:
		c.NoContent(status)
	case err == errSignIn && s.cfg.Dev && req.Header.Get("HX-Request") == "":
		c.Redirect(http.StatusSeeOther, "/dev/login")
	case req.Header.Get("HX-Request") != "":
		if title, _, ok := bodyProblem(ctx, code); ok {
			message = title
		}
		c.String(status, message)
	default:
		p := views.ErrorProps{Layout: s.layout(""), Home: code != messenger.EUNAUTHORIZED}
		switch code {
		case messenger.ETOOLARGE, messenger.EUNSUPPORTED:
			p.Title, p.Message, _ = bodyProblem(ctx, code)
		case messenger.EUNAUTHORIZED:
			p.Title, p.Message = views.T(ctx, "error.unauthorized"), views.T(ctx, "error.unauthorized.sub")
		case messenger.ENOTFOUND:
			p.Title, p.Message = views.T(ctx, "error.not_found"), message
		case messenger.EFORBIDDEN:
			p.Title, p.Message = views.T(ctx, "error.forbidden"), message
		case messenger.ERATELIMITED:
			p.Title, p.Message = views.T(ctx, "error.rate_limited"), views.T(ctx, "error.rate_limited.sub")
		default:
			p.Title, p.Message = views.T(ctx, "error.title"), message
		}
		c.SetRequest(req.WithContext(ctx))
		if err := render(c, status, views.ErrorPage(p)); err != nil {
			c.Logger().ErrorContext(ctx, "render error page", slog.String("error", err.Error()))
		}
	}
}

// statusText answers the words of an HTTP error status in lang.
func statusText(lang string, status int) string {
	key := "error.status." + strconv.Itoa(status)
	if text := messenger.Text(lang, key); text != key {
		return text
	}
	return messenger.Text(lang, "error.status.400")
}

// browserLocale answers the request's context with the page language of its user, or of
// its browser when nobody is signed in yet.
func browserLocale(req *http.Request) context.Context {
	ctx := req.Context()
	userLocale := ""
	if me, ok := auth.UserFrom(ctx); ok {
		userLocale = me.Locale
	}
	return views.WithLocale(ctx, views.NegotiateLocale(userLocale, req.Header.Get("Accept-Language")))
}

// bodyProblem answers what a browser user reads about a refused request body.
func bodyProblem(ctx context.Context, code string) (title, sub string, ok bool) {
	switch code {
	case messenger.ETOOLARGE:
		return views.T(ctx, "error.too_large"), views.T(ctx, "error.too_large.sub"), true
	case messenger.EUNSUPPORTED:
		return views.T(ctx, "error.unsupported"), views.T(ctx, "error.unsupported.sub"), true
	}
	return "", "", false
}

// unavailableRetryAfter is when a client refused because the database did not answer
// may try again, in seconds: a stall is usually over by then, and the next try finds out.
const unavailableRetryAfter = 2

// setRetryAfter tells a client past a rate limit, or refused while the database did not
// answer, when to try again, in whole seconds.
func setRetryAfter(c *echo.Context, err error) {
	var limited *ratelimit.Error
	switch {
	case errors.As(err, &limited):
		c.Response().Header().Set("Retry-After", strconv.Itoa(limited.Seconds()))
	case messenger.ErrorCode(err) == messenger.EUNAVAILABLE:
		c.Response().Header().Set("Retry-After", strconv.Itoa(unavailableRetryAfter))
	}
}

// notFound answers a URL that no route matches.
func (s *Server) notFound(c *echo.Context) error {
	return messenger.Errorf(messenger.ENOTFOUND, "error.page.not_found")
}
