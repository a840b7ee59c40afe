package digest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

// An unsubscribe token is base64url(user id | expiry | nonce | HMAC-SHA256 of those, 16
// bytes) under the configured secret: it names the user without a session (the mail client
// posts it), expires, and its nonce makes it usable once (digest_unsubscribes).
const (
	tokenBody = 8 + 8 + 12
	tokenMAC  = 16
)

var errToken = errors.New("digest: unsubscribe token is invalid or expired")

type token struct {
	UserID  int64
	Expires time.Time
	Nonce   []byte
}

func (t token) nonceHash() []byte {
	h := sha256.Sum256(t.Nonce)
	return h[:]
}

func macOf(secret, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("dreamseed digest unsubscribe\x00"))
	m.Write(body)
	return m.Sum(nil)[:tokenMAC]
}

// SignUnsubscribeToken answers the token of an unsubscribe link for userID, valid until
// expires (the digest signs one per email; tests sign their own).
func SignUnsubscribeToken(secret []byte, userID int64, expires time.Time) string {
	return signToken(secret, userID, expires)
}

// signToken answers a token for userID valid until expires.
func signToken(secret []byte, userID int64, expires time.Time) string {
	b := make([]byte, tokenBody, tokenBody+tokenMAC)
	binary.BigEndian.PutUint64(b[0:8], uint64(userID))
	binary.BigEndian.PutUint64(b[8:16], uint64(expires.Unix()))
	_, _ = rand.Read(b[16:tokenBody])
	return base64.RawURLEncoding.EncodeToString(append(b, macOf(secret, b)...))
}

// parseToken verifies s and answers what it says; errToken for anything forged, damaged or
// expired at now.
func parseToken(secret []byte, s string, now time.Time) (token, error) {
	if len(s) > 100 {
		return token{}, errToken
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != tokenBody+tokenMAC {
		return token{}, errToken
	}
	if !hmac.Equal(b[tokenBody:], macOf(secret, b[:tokenBody])) {
		return token{}, errToken
	}
	t := token{
		UserID:  int64(binary.BigEndian.Uint64(b[0:8])),
		Expires: time.Unix(int64(binary.BigEndian.Uint64(b[8:16])), 0),
		Nonce:   b[16:tokenBody],
	}
	if t.UserID <= 0 || !now.Before(t.Expires) {
		return token{}, errToken
	}
	return t, nil
}
