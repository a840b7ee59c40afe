package handlers

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/internal/trace"
	"github.com/dreamseed/messenger/views"
)

// requestIDHeader carries the request id in and out, so a proxy's id is kept.
const requestIDHeader = "X-Request-ID"

// observe gives every request a trace (the caller's, from a valid traceparent, else a new
// one), a request id (the caller's X-Request-ID, else the trace id) and a logger that
// carries it, records the duration metric by route and status, and writes one log line at
// the end. The response's traceparent names this server's span of the trace.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		start := time.Now()
		req := c.Request()
		traceID, flags, ok := trace.Parse(req.Header.Get(trace.Header))
		if !ok {
			traceID, flags = trace.NewID(), "01"
		}
		id := req.Header.Get(requestIDHeader)
		if !validRequestID(id) {
			id = traceID
		}
		c.Response().Header().Set(trace.Header, trace.Format(traceID, trace.NewSpanID(), flags))
		c.Response().Header().Set(requestIDHeader, id)
		c.SetLogger(s.logger.With(slog.String("request_id", id)))
		ctx := trace.Start(messenger.WithRequestID(req.Context(), id), traceID)
		c.SetRequest(req.WithContext(ctx))

		err := next(c)
		if err != nil {
			c.Echo().HTTPErrorHandler(c, err)
		}

		_, status := echo.ResolveResponseStatus(c.Response(), nil)
		route := routeLabel(c)
		elapsed := time.Since(start)
		s.metrics.observeRequest(route, req.Method, status, elapsed)

		level := slog.LevelInfo
		if route == "/healthz" || route == "/readyz" || route == "/static/*" {
			level = slog.LevelDebug
		}
		c.Logger().LogAttrs(ctx, level, "request",
			slog.String("method", methodLabel(req.Method)), slog.String("path", truncate(req.URL.Path, 512)), slog.String("route", route),
			slog.Int("status", status), slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000))
		return nil
	}
}

// truncate cuts s to at most n bytes on a rune boundary, so that a client cannot write
// megabytes into a log line.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// recoverPanic turns a panic in a handler into an internal error, logged with its value.
func (s *Server) recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		return next(c)
	}
}

// permissionsPolicy turns off the powerful browser features the messenger never uses,
// for itself and anything it could embed. Notifications are left alone: Web Push will ask
// for them. Only features every current Chromium knows: an unknown one is a console error.
const permissionsPolicy = "camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), " +
	"hid=(), midi=(), display-capture=(), accelerometer=(), gyroscope=(), magnetometer=()"

// securityHeaders sets the content security policy (framing only by the portal) and the
// other defensive headers on every response: HSTS over https, and no caching of anything
// but the static assets, which set their own.
func (s *Server) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	ancestors := "'self'"
	for o := range s.origins {
		ancestors += " " + o
	}
	csp := "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
		"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; " +
		"frame-ancestors " + ancestors
	return func(c *echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", permissionsPolicy)
		h.Set("Cache-Control", "no-store")
		if s.cfg.HTTPS {
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		if len(s.origins) == 0 {
			h.Set("X-Frame-Options", "SAMEORIGIN")
		}
		return next(c)
	}
}

// requireSession signs the request in with its session cookie. Without a live session a
// page request goes to dev login (dev mode) or gets the "open from the portal" page.
func (s *Server) requireSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		cookie, err := c.Cookie(s.cookieName())
		if err != nil || cookie.Value == "" {
			return errSignIn
		}
		ctx := c.Request().Context()
		sess, err := s.session(ctx, cookie.Value)
		if err != nil {
			return err
		}
		me := sess.user
		ctx = auth.WithUser(ctx, me)
		ctx = auth.WithCSRFToken(ctx, sess.csrf)
		ctx = views.WithCSRFToken(ctx, sess.csrf)
		ctx = auth.WithSessionToken(ctx, cookie.Value)
		ctx = auth.WithExpiry(ctx, sess.expires)
		ctx = views.WithLocale(ctx, views.NegotiateLocale(me.Locale, c.Request().Header.Get("Accept-Language")))
		c.SetRequest(c.Request().WithContext(ctx))
		trace.SetUser(ctx, me.ID)
		return next(c)
	}
}

// session answers the live session of a cookie's token and its user: from the page
// cache when it holds it, else from the database (and then kept).
func (s *Server) session(ctx context.Context, token string) (cachedSession, error) {
	var key [32]byte
	copy(key[:], auth.HashToken(token))
	now := time.Now()
	if e, ok := s.pages.session(key, now); ok {
		touched, err := s.chat.TouchSession(ctx, e.user, token, e.lastUsed, now)
		if err != nil {
			return e, err
		}
		if touched {
			s.pages.touched(key, now)
		}
		return e, nil
	}
	var e cachedSession
	sess, err := s.chat.LiveSession(ctx, token)
	if err == nil {
		// The cache hears of the user's sign-outs from now on; one that came before the
		// subscription is seen by reading the session again.
		fresh, watchErr := s.pages.watch(ctx, sess.Identity.UserID, sess.Identity.ZoneID)
		if watchErr != nil {
			s.logger.Log(ctx, trace.FailureLevel(watchErr), "page cache: watch", slog.String("error", watchErr.Error()))
		}
		stamp := s.pages.sessionStamp(sess.Identity.UserID)
		if fresh {
			sess, err = s.chat.LiveSession(ctx, token)
		}
		if err == nil {
			e.user, err = s.chat.SessionUser(ctx, &sess, token, now)
		}
		if err == nil {
			e.csrf, e.expires, e.lastUsed, e.userID = sess.CSRFToken, sess.ExpiresAt, sess.LastUsedAt, e.user.ID
			if watchErr == nil {
				s.pages.putSession(key, e, stamp, now)
			}
		}
	}
	if messenger.ErrorCode(err) == messenger.EUNAUTHORIZED {
		return e, errSignIn
	}
	return e, err
}

// errSignIn marks a page request that needs a session it does not have.
var errSignIn = messenger.Errorf(messenger.EUNAUTHORIZED, "error.sign_in")

// requireCSRF checks the session's CSRF token on every state-changing request: htmx sends
// it in a header, plain forms in a field of the urlencoded body, never the URL (which
// logs, history and Referer keep). SameSite=None cookies (inside the portal's iframe)
// give no CSRF protection of their own.
func (s *Server) requireCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		want := auth.CSRFTokenFrom(c.Request().Context())
		got := c.Request().Header.Get("X-CSRF-Token")
		if got == "" && s.isUploadRoute(c) {
			// A plain form's upload carries the token in its multipart body.
			if err := parseUpload(c); err != nil {
				return err
			}
		}
		if got == "" {
			got = postFormValue(c, "csrf_token")
		}
		if !auth.SameToken(want, got) {
			return messenger.Errorf(messenger.EFORBIDDEN, "error.form_expired")
		}
		return next(c)
	}
}

// changesSettings goes on a route that may change the signed-in user's settings: once its
// handler is done, whatever it answered, their pages are told (settingsChanged).
func (s *Server) changesSettings(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		ctx := c.Request().Context()
		me, _ := auth.UserFrom(ctx)
		defer s.settingsChanged(ctx, me.ID)
		return next(c)
	}
}

// sameOriginOnly refuses cross-origin state-changing browser requests, with Go's
// Sec-Fetch-Site / Origin checks.
func (s *Server) sameOriginOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		if err := s.cop.Check(c.Request()); err != nil {
			return messenger.Errorf(messenger.EFORBIDDEN, "error.cross_origin")
		}
		return next(c)
	}
}

// portalOriginOnly lets only the configured portal origins (and this app itself) post a
// sign-in: a login CSRF from any other site is refused.
func (s *Server) portalOriginOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		req := c.Request()
		origin := req.Header.Get("Origin")
		switch {
		case origin != "" && s.origins[origin]:
			return next(c)
		case s.cop.Check(req) == nil:
			return next(c) // same origin, or a non-browser client
		default:
			return messenger.Errorf(messenger.EFORBIDDEN, "error.origin_signin")
		}
	}
}

// sameSiteStream refuses a page stream that another origin opens with the user's cookie
// (an EventSource of a page elsewhere, a sibling subdomain included: it could not read
// the stream, but it would take the user's place under the stream cap): only this app
// and the portal origins may open one. Go's cross-origin protection lets every GET
// through.
func (s *Server) sameSiteStream(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		req := c.Request()
		origin := req.Header.Get("Origin")
		switch site := req.Header.Get("Sec-Fetch-Site"); {
		case origin != "" && s.origins[origin]:
		case site == "cross-site", site == "same-site",
			site == "" && origin != "" && !sameHost(origin, req.Host):
			return messenger.Errorf(messenger.EFORBIDDEN, "error.cross_site")
		}
		return next(c)
	}
}

// sameHost reports whether origin names host (an Origin header against the request's Host).
func sameHost(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host == host
}

// requireBearer signs an API request in with its portal token. Every request creates or
// updates the user from the token's claims.
func (s *Server) requireBearer(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		header := c.Request().Header.Get("Authorization")
		scheme, token, ok := strings.Cut(header, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return messenger.Errorf(messenger.EUNAUTHORIZED, "error.token.bearer")
		}
		ctx := c.Request().Context()
		token = strings.TrimSpace(token)
		now := time.Now()
		me, expires, ok := s.tokens.get(token, now)
		if !ok {
			var err error
			if me, expires, err = s.signIn(ctx, c, token); err != nil {
				return err
			}
			s.tokens.put(token, me, expires, now)
		}
		ctx = auth.WithUser(ctx, me)
		ctx = auth.WithExpiry(ctx, expires)
		c.SetRequest(c.Request().WithContext(ctx))
		trace.SetUser(ctx, me.ID)
		return next(c)
	}
}
