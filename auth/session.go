package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"time"

	"github.com/dreamseed/messenger"
)

// sessionCookie is the name of the cookie that carries a browser's session token over
// plain http (development). Code reads the name from SessionCookieName, never this, so
// that an https deployment's __Host- cookie is never missed.
const sessionCookie = "messenger_session"

// SessionCookieName answers the session cookie's name: over https it has the __Host-
// prefix, with which browsers take it only Secure, for this host alone (no Domain) and
// for the whole site (Path=/), so no subdomain or plain-http page can plant or shadow it.
func SessionCookieName(https bool) string {
	if https {
		return "__Host-" + sessionCookie
	}
	return sessionCookie
}

// NewToken answers a fresh random token for a session cookie or a CSRF token.
func NewToken() string {
	var b [32]byte
	rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// HashToken answers what the database stores of a session token: its SHA-256, so that a
// leaked sessions table signs nobody in.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// SameToken compares two tokens in constant time.
func SameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

type contextKey int

const (
	userKey contextKey = iota
	csrfKey
	sessionKey
	expiryKey
)

// WithUser answers a context that carries the signed-in user.
func WithUser(ctx context.Context, u messenger.User) context.Context {
	return context.WithValue(ctx, userKey, u)
}

// UserFrom answers the signed-in user of a request context.
func UserFrom(ctx context.Context) (messenger.User, bool) {
	u, ok := ctx.Value(userKey).(messenger.User)
	return u, ok
}

// WithCSRFToken answers a context that carries the session's CSRF token, for the pages
// that render forms.
func WithCSRFToken(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, csrfKey, token)
}

// CSRFTokenFrom answers the CSRF token of the request's session ("" for API requests).
func CSRFTokenFrom(ctx context.Context) string {
	s, _ := ctx.Value(csrfKey).(string)
	return s
}

// WithSessionToken answers a context that carries the raw session token, for sign-out.
func WithSessionToken(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, sessionKey, token)
}

// SessionTokenFrom answers the session token of the request ("" for API requests).
func SessionTokenFrom(ctx context.Context) string {
	s, _ := ctx.Value(sessionKey).(string)
	return s
}

// WithExpiry answers a context that carries when the request's credentials (session or
// token) expire, for the streams that outlive the request's start.
func WithExpiry(ctx context.Context, t time.Time) context.Context {
	return context.WithValue(ctx, expiryKey, t)
}

// ExpiryFrom answers when the request's credentials expire (zero if not known).
func ExpiryFrom(ctx context.Context) time.Time {
	t, _ := ctx.Value(expiryKey).(time.Time)
	return t
}
