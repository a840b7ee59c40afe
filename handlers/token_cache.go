package handlers

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/dreamseed/messenger"
)

// tokenCacheTTL bounds how long a verified token's user is reused without asking the
// database again. The same token always carries the same claims, so within it the user row
// needs no update; a token with new claims is a new token and signs in afresh.
const (
	tokenCacheTTL  = time.Minute
	tokenCacheSize = 10000
)

// tokenCache remembers the users of recently verified API tokens, so that a client sending
// many requests with one token signs in once a minute instead of on every request.
type tokenCache struct {
	mu      sync.Mutex
	entries map[[32]byte]tokenEntry
}

type tokenEntry struct {
	user         messenger.User
	expires      time.Time // of the entry
	tokenExpires time.Time // of the token
}

func newTokenCache() *tokenCache {
	return &tokenCache{entries: make(map[[32]byte]tokenEntry)}
}

// get answers the user of token and when the token expires, if it was verified less than
// a minute ago and has not expired since.
func (c *tokenCache) get(token string, now time.Time) (messenger.User, time.Time, bool) {
	key := sha256.Sum256([]byte(token))
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || now.After(e.expires) {
		delete(c.entries, key)
		return messenger.User{}, time.Time{}, false
	}
	return e.user, e.tokenExpires, true
}

// put remembers token's user until a minute from now or the token's expiry, whichever is
// sooner. A full cache starts over rather than growing.
func (c *tokenCache) put(token string, u messenger.User, tokenExpires, now time.Time) {
	expires := now.Add(tokenCacheTTL)
	if tokenExpires.Before(expires) {
		expires = tokenExpires
	}
	if !expires.After(now) {
		return
	}
	key := sha256.Sum256([]byte(token))
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= tokenCacheSize {
		clear(c.entries)
	}
	c.entries[key] = tokenEntry{user: u, expires: expires, tokenExpires: tokenExpires}
}
