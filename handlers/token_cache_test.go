package handlers

import (
	"testing"
	"time"

	"github.com/dreamseed/messenger"
)

// TestTokenCache: a verified token's user is reused for at most a minute and never past
// the token's own expiry.
func TestTokenCache(t *testing.T) {
	c := newTokenCache()
	now := time.Now()
	u := messenger.User{ID: 7, Sub: "p7"}

	c.put("long-lived", u, now.Add(time.Hour), now)
	if got, exp, ok := c.get("long-lived", now.Add(30*time.Second)); !ok || got.ID != 7 || !exp.Equal(now.Add(time.Hour)) {
		t.Errorf("within the minute: %v %v %v, want the user and the token's expiry", got, exp, ok)
	}
	if _, _, ok := c.get("long-lived", now.Add(61*time.Second)); ok {
		t.Error("after a minute the token is still answered from the cache")
	}

	c.put("expiring", u, now.Add(10*time.Second), now)
	if _, _, ok := c.get("expiring", now.Add(11*time.Second)); ok {
		t.Error("a token past its expiry is answered from the cache")
	}
	c.put("expired", u, now.Add(-time.Second), now)
	if _, _, ok := c.get("expired", now); ok {
		t.Error("an expired token was cached")
	}
	if _, _, ok := c.get("never-seen", now); ok {
		t.Error("an unknown token is answered")
	}
}
