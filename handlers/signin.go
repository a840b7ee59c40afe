package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/internal/trace"
	"github.com/dreamseed/messenger/ratelimit"
	"github.com/dreamseed/messenger/store"
)

// signIn verifies a portal token and creates or updates its user; it also answers when
// the token expires. Refused tokens are limited per client address (a script guessing or
// replaying tokens), valid ones per portal user: a school behind one address is never
// locked out by someone else's garbage.
func (s *Server) signIn(ctx context.Context, c *echo.Context, token string) (messenger.User, time.Time, error) {
	claims, err := s.verifier.Verify(ctx, token)
	if err != nil {
		if errors.Is(err, auth.ErrInvalidToken) {
			if err := s.limits.Allow(ctx, ratelimit.SignInAddress, clientAddress(c)); err != nil {
				return messenger.User{}, time.Time{}, err
			}
			// The reason is for the operator's log; the client reads a fixed text, never
			// the JWT library's words or a piece of its own input.
			s.logger.InfoContext(ctx, "token refused", slog.String("reason", truncate(err.Error(), 200)),
				slog.String("request_id", messenger.RequestID(ctx)))
			if errors.Is(err, jwt.ErrTokenExpired) {
				return messenger.User{}, time.Time{}, errTokenExpired
			}
			return messenger.User{}, time.Time{}, errTokenInvalid
		}
		return messenger.User{}, time.Time{}, err
	}
	if err := s.limits.Allow(ctx, ratelimit.SignInSubject, claims.Issuer+" "+claims.Subject); err != nil {
		return messenger.User{}, time.Time{}, err
	}
	u, err := s.chat.SignIn(ctx, store.SignInParams{
		Issuer: claims.Issuer, Sub: claims.Subject, OrgID: claims.OrgID, ZoneID: claims.ZoneID,
		Name: claims.Name, Email: claims.Email, Role: claims.Role, Locale: claims.Locale,
		IssuedAt: claims.IssuedAt,
	})
	return u, claims.ExpiresAt, err
}

var (
	errTokenExpired = messenger.Errorf(messenger.EUNAUTHORIZED, "error.token.expired")
	errTokenInvalid = messenger.Errorf(messenger.EUNAUTHORIZED, "error.token.invalid")
)

// clientIPExtractor finds the client's address: the connection's, or behind trusted
// proxies the last address in X-Forwarded-For that none of them has. Only the listed
// proxies are trusted (echo would trust every loopback and private address by default).
func clientIPExtractor(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// clientAddress is the address whose sign-ins share a bucket: the client's IP, and for
// IPv6 its /64, which one household or school gets as a whole.
func clientAddress(c *echo.Context) string {
	ip, err := netip.ParseAddr(c.RealIP())
	if err != nil {
		return c.RealIP()
	}
	if ip = ip.Unmap(); ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// startSession starts a session of me and sets its cookie. It replaces the session this
// browser had (revoked, its streams ended), so the CSRF token changes with it; me's
// sessions past the cap end with their streams.
func (s *Server) startSession(c *echo.Context, me messenger.User) error {
	ctx := c.Request().Context()
	s.endBrowserSession(c)
	sess, err := s.chat.StartSession(ctx, me, c.Request().UserAgent(), s.cfg.MaxSessionsPerUser)
	if err != nil {
		return err
	}
	if len(sess.Revoked) > 0 {
		end := streamEnd{Reason: closedSignedOut}
		for _, h := range sess.Revoked {
			end.Sessions = append(end.Sessions, sessionID(h))
		}
		s.endStreams(ctx, me.ID, end)
	}
	c.SetCookie(s.sessionCookie(sess.Token, sess.ExpiresAt))
	trace.SetUser(c.Request().Context(), me.ID)
	c.Logger().InfoContext(c.Request().Context(), "signed in", slog.Int("sessions_revoked", len(sess.Revoked)))
	return nil
}

// endBrowserSession ends the live session the request's cookie carries, whoever's it is,
// with its streams: a browser has one session at a time.
func (s *Server) endBrowserSession(c *echo.Context) {
	cookie, err := c.Cookie(s.cookieName())
	if err != nil || cookie.Value == "" {
		return
	}
	ctx := c.Request().Context()
	old, ended, err := s.chat.EndSession(ctx, cookie.Value)
	if err != nil {
		c.Logger().Log(ctx, trace.FailureLevel(err), "revoke replaced session", slog.String("error", err.Error()))
		return
	}
	if ended {
		s.endStreams(ctx, old.UserID, streamEnd{Reason: closedSessionReplaced, Sessions: []string{sessionID(auth.HashToken(cookie.Value))}})
	}
}

// sessionCookie is the session cookie: HttpOnly always; inside a cross-site portal iframe
// SameSite=None with Secure and Partitioned (CHIPS), so that browsers that block
// third-party cookies still keep it, for this portal only.
func (s *Server) sessionCookie(value string, expires time.Time) *http.Cookie {
	ck := &http.Cookie{
		Name:     s.cookieName(),
		Value:    value,
		Path:     "/",
		HttpOnly: true,
		Secure:   s.cfg.CookieSecure,
		SameSite: s.cfg.CookieSameSite,
	}
	if s.cfg.CookieSameSite == http.SameSiteNoneMode {
		ck.Secure, ck.Partitioned = true, true
	}
	if s.cfg.HTTPS {
		ck.Secure = true // the __Host- prefix requires it (and Path=/, no Domain)
	}
	if value == "" {
		ck.MaxAge = -1
	} else {
		ck.Expires = expires
		ck.MaxAge = int(time.Until(expires).Seconds())
	}
	return ck
}

// cookieName answers the session cookie's name for this deployment.
func (s *Server) cookieName() string { return auth.SessionCookieName(s.cfg.HTTPS) }

// localNext answers next if it is a path of this app, else "/": a sign-in never
// redirects to another site.
func localNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.HasPrefix(next, "/\\") || strings.ContainsAny(next, "\r\n\t") {
		return "/"
	}
	return next
}
