package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/store"
)

// sessionTTL is how long a browser session lasts; the portal signs the user in again
// after that.
const sessionTTL = 14 * 24 * time.Hour

// signIn verifies a portal token and creates or updates its user; it also answers when
// the token expires.
func (s *Server) signIn(ctx context.Context, token string) (messenger.User, time.Time, error) {
	claims, err := s.verifier.Verify(ctx, token)
	if err != nil {
		if errors.Is(err, auth.ErrInvalidToken) {
			return messenger.User{}, time.Time{}, messenger.Errorf(messenger.EUNAUTHORIZED, "%s", capitalize(err.Error()))
		}
		return messenger.User{}, time.Time{}, err
	}
	u, err := s.chat.SignIn(ctx, store.SignInParams{
		Issuer: claims.Issuer, Sub: claims.Subject, OrgID: claims.OrgID, ZoneID: claims.ZoneID,
		Name: claims.Name, Email: claims.Email, Role: claims.Role, Locale: claims.Locale,
		IssuedAt: claims.IssuedAt,
	})
	return u, claims.ExpiresAt, err
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:] + "."
}

// startSession creates a server-side session for me and sets its cookie.
func (s *Server) startSession(c *echo.Context, me messenger.User) error {
	ctx := c.Request().Context()
	token, csrf := auth.NewToken(), auth.NewToken()
	expires := time.Now().Add(sessionTTL)
	err := s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error {
		return tx.CreateSession(ctx, auth.HashToken(token), csrf, c.Request().UserAgent(), expires)
	})
	if err != nil {
		return err
	}
	c.SetCookie(s.sessionCookie(token, expires))
	c.Logger().Info("signed in", slog.Int64("user_id", me.ID))
	return nil
}

// sessionCookie is the session cookie: HttpOnly always; inside a cross-site portal iframe
// SameSite=None with Secure and Partitioned (CHIPS), so that browsers that block
// third-party cookies still keep it, for this portal only.
func (s *Server) sessionCookie(value string, expires time.Time) *http.Cookie {
	ck := &http.Cookie{
		Name:     auth.SessionCookie,
		Value:    value,
		Path:     "/",
		HttpOnly: true,
		Secure:   s.cfg.CookieSecure,
		SameSite: s.cfg.CookieSameSite,
	}
	if s.cfg.CookieSameSite == http.SameSiteNoneMode {
		ck.Secure, ck.Partitioned = true, true
	}
	if value == "" {
		ck.MaxAge = -1
	} else {
		ck.Expires = expires
		ck.MaxAge = int(time.Until(expires).Seconds())
	}
	return ck
}

// localNext answers next if it is a path of this app, else "/": a sign-in never
// redirects to another site.
func localNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.HasPrefix(next, "/\\") || strings.ContainsAny(next, "\r\n\t") {
		return "/"
	}
	return next
}
