package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dreamseed/messenger/handlers"
)

// TestSignInAgainOverHTTPS: behind https the session cookie is __Host-messenger_session,
// and signing in again in the same browser still replaces the session it carried.
func TestSignInAgainOverHTTPS(t *testing.T) {
	e := newEnv(t, func(c *handlers.Config) { c.HTTPS = true })
	signIn := func(cookie *http.Cookie) *http.Cookie {
		t.Helper()
		form := url.Values{"token": {sign(t, validClaims("https1", "한도윤", "org-a"))}}
		req, _ := http.NewRequest("POST", e.srv.URL+"/auth/portal", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", portal)
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for _, c := range resp.Cookies() {
			if c.Value != "" {
				return c
			}
		}
		t.Fatalf("sign-in set no session cookie (status %d)", resp.StatusCode)
		return nil
	}
	opens := func(cookie *http.Cookie) int {
		t.Helper()
		req, _ := http.NewRequest("GET", e.srv.URL+"/", nil)
		req.AddCookie(cookie)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	first := signIn(nil)
	if first.Name != "__Host-messenger_session" {
		t.Errorf("cookie name %q over https, want __Host-messenger_session", first.Name)
	}
	second := signIn(first)
	if second.Value == first.Value {
		t.Fatal("signing in again kept the session token")
	}
	if status := opens(second); status != http.StatusOK {
		t.Errorf("the new session opens / with status %d", status)
	}
	if status := opens(first); status != http.StatusUnauthorized {
		t.Errorf("the replaced session still opens / (status %d), want 401", status)
	}
}

// noRedirect sends a request and answers the response itself, redirects included.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
