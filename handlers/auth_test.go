package handlers_test

import (
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestAPIRejectsBadTokens: every malformed, forged or mismatched token gets 401 with the
// JSON error shape, and nothing is written.
func TestAPIRejectsBadTokens(t *testing.T) {
	e := newEnv(t, nil)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	with := func(mut func(claims)) string {
		c := validClaims("u1", "김민준", "org-a")
		mut(c)
		return sign(t, c)
	}
	forged, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, validClaims("u1", "김민준", "org-a")).SignedString([]byte("another-secret-of-enough-length-000000"))
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, validClaims("u1", "김민준", "org-a")).SignedString(jwt.UnsafeAllowNoneSignatureType)
	rs, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, validClaims("u1", "김민준", "org-a")).SignedString(rsaKey)

	tests := []struct{ name, header string }{
		{"no header", ""},
		{"not bearer", "Basic dTpw"},
		{"garbage", "Bearer not.a.jwt"},
		{"forged signature", "Bearer " + forged},
		{"alg none", "Bearer " + none},
		{"RS256 where only HS256 is configured", "Bearer " + rs},
		{"expired", "Bearer " + with(func(c claims) { c["exp"] = time.Now().Add(-time.Hour).Unix() })},
		{"not yet valid", "Bearer " + with(func(c claims) { c["nbf"] = time.Now().Add(time.Hour).Unix() })},
		{"wrong audience", "Bearer " + with(func(c claims) { c["aud"] = "another-app" })},
		{"wrong issuer", "Bearer " + with(func(c claims) { c["iss"] = "someone-else" })},
		{"missing sub", "Bearer " + with(func(c claims) { delete(c, "sub") })},
		{"missing exp", "Bearer " + with(func(c claims) { delete(c, "exp") })},
		{"bad role", "Bearer " + with(func(c claims) { c["role"] = "superuser" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.do(nil, "GET", "/api/v1/me", nil, map[string]string{"Authorization": tt.header})
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
			if code, msg := decodeError(t, resp); code != "unauthorized" || msg == "" {
				t.Errorf("error = %q %q, want code unauthorized and a message", code, msg)
			}
		})
	}
	if n := e.count("users"); n != 0 {
		t.Errorf("%d users written by rejected requests", n)
	}
	if n := e.count("organizations"); n != 0 {
		t.Errorf("%d organizations written by rejected requests", n)
	}
}

// TestAPIMe: a valid token creates the user, and a later token with new claims updates it.
func TestAPIMe(t *testing.T) {
	e := newEnv(t, nil)
	get := func(c claims) map[string]any {
		t.Helper()
		resp := e.do(nil, "GET", "/api/v1/me", nil, map[string]string{"Authorization": "Bearer " + sign(t, c)})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, readBody(t, resp))
		}
		var body struct{ User map[string]any }
		if err := jsonDecode(resp, &body); err != nil {
			t.Fatal(err)
		}
		return body.User
	}
	c := validClaims("portal-77", "홍길동", "org-a")
	u := get(c)
	if u["id"] != "portal-77" || u["name"] != "홍길동" || u["role"] != "teacher" {
		t.Errorf("me = %v", u)
	}
	c["name"], c["role"] = "홍길동 선생님", "admin"
	u = get(c)
	if u["name"] != "홍길동 선생님" || u["role"] != "admin" {
		t.Errorf("after new claims, me = %v", u)
	}
	if n := e.count("users"); n != 1 {
		t.Errorf("%d users stored, want 1", n)
	}
}

// TestPortalSignIn: the portal posts a token and gets a session cookie fit for a
// cross-site iframe; other origins cannot sign anyone in; next stays on this site.
func TestPortalSignIn(t *testing.T) {
	e := newEnv(t, nil)
	post := func(origin string, form url.Values) *http.Response {
		return e.do(e.client(), "POST", "/auth/portal", strings.NewReader(form.Encode()), map[string]string{
			"Content-Type": "application/x-www-form-urlencoded", "Origin": origin, "Sec-Fetch-Site": "cross-site",
		})
	}
	token := sign(t, validClaims("p1", "김민준", "org-a"))

	resp := post(portal, url.Values{"token": {token}, "next": {"/c/12"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/c/12" {
		t.Fatalf("status %d location %q, want 303 to /c/12", resp.StatusCode, resp.Header.Get("Location"))
	}
	setCookie := resp.Header.Get("Set-Cookie")
	for _, attr := range []string{"messenger_session=", "HttpOnly", "Secure", "SameSite=None", "Partitioned", "Path=/"} {
		if !strings.Contains(setCookie, attr) {
			t.Errorf("Set-Cookie %q lacks %s", setCookie, attr)
		}
	}
	if n := e.count("sessions"); n != 1 {
		t.Errorf("%d sessions, want 1", n)
	}

	for _, next := range []string{"//evil.example/x", "https://evil.example/", "/\\evil.example"} {
		resp := post(portal, url.Values{"token": {token}, "next": {next}})
		if loc := resp.Header.Get("Location"); loc != "/" {
			t.Errorf("next=%q redirected to %q, want /", next, loc)
		}
	}

	before := e.count("sessions")
	resp = post("https://evil.example", url.Values{"token": {token}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in from another origin: status %d, want 403", resp.StatusCode)
	}
	resp = post(portal, url.Values{"token": {"forged.token.value"}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged token: status %d, want 401", resp.StatusCode)
	}
	if n := e.count("sessions"); n != before {
		t.Errorf("refused sign-ins wrote %d sessions", n-before)
	}
}

// TestSessionLifecycle: the session opens pages, state changes need the CSRF token, and
// after logout the same cookie opens nothing.
func TestSessionLifecycle(t *testing.T) {
	e := newEnv(t, nil)
	c := e.signInBrowser("s1", "이서연", "org-a")

	resp := e.do(c, "GET", "/", nil, nil)
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "이서연") {
		t.Fatalf("home: status %d, body has no user name", resp.StatusCode)
	}
	if !strings.Contains(body, `aria-label="대화 목록"`) {
		t.Error("home page has no labelled conversation list landmark")
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'self' "+portal) || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP = %q", csp)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") == "" {
		t.Error("nosniff or referrer policy missing")
	}

	token := e.csrfToken(c)
	resp = e.do(c, "POST", "/logout", nil, map[string]string{"Origin": e.srv.URL})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("logout without CSRF token: status %d, want 403", resp.StatusCode)
	}
	resp = e.do(c, "POST", "/logout", nil, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "X-CSRF-Token": token})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin logout: status %d, want 403", resp.StatusCode)
	}
	if resp := e.do(c, "GET", "/", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("refused logouts ended the session: status %d", resp.StatusCode)
	}

	resp = e.do(c, "POST", "/logout", nil, map[string]string{"Origin": e.srv.URL, "X-CSRF-Token": token})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: status %d, want 303", resp.StatusCode)
	}
	if resp := e.do(c, "GET", "/", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("after logout: status %d, want 401", resp.StatusCode)
	}
}

// TestSignOutEverywhere revokes every session of the user, not only this browser's.
func TestSignOutEverywhere(t *testing.T) {
	e := newEnv(t, nil)
	phone := e.signInBrowser("s2", "박지호", "org-a")
	laptop := e.signInBrowser("s2", "박지호", "org-a")
	token := e.csrfToken(laptop)
	resp := e.do(laptop, "POST", "/logout?all=1", strings.NewReader(url.Values{"csrf_token": {token}}.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": e.srv.URL})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout all: status %d", resp.StatusCode)
	}
	if resp := e.do(phone, "GET", "/", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the other browser's session survived: status %d", resp.StatusCode)
	}
}
