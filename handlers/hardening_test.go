package handlers_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/handlers"
)

// TestMetricsLabelsClosed: invented methods and paths do not make new series, so
// /metrics stays small however many arrive.
func TestMetricsLabelsClosed(t *testing.T) {
	e := newEnv(t, nil)
	e.do(nil, "GET", "/healthz", nil, nil)
	start := len(e.metrics())
	for i := 0; i < 300; i++ {
		method := fmt.Sprintf("M%03d%s", i, strings.Repeat("X", 20<<10))
		path := fmt.Sprintf("/invented/%d/%s", i, strings.Repeat("p", 100))
		if i%2 == 0 {
			path = "/"
		}
		e.do(nil, method, path, nil, nil)
	}
	for i := 0; i < 30; i++ {
		e.do(nil, "GET", fmt.Sprintf("/api/v1/invented-%d", i), nil, nil)
	}
	body := e.metrics()
	if len(body) > start+64<<10 {
		t.Fatalf("/metrics grew from %d to %d bytes", start, len(body))
	}
	for _, want := range []string{`method="other"`, `route="unmatched"`, `method="GET",route="/healthz",status="200"`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.Contains(line, "XXXX") || strings.Contains(line, "invented") {
			t.Fatalf("an open label value reached /metrics: %.120s", line)
		}
	}
}

// TestMetricsNotOnMainAddress: /metrics is for operators, on its own listener; the public
// address does not serve it.
func TestMetricsNotOnMainAddress(t *testing.T) {
	e := newEnv(t, nil)
	if resp := e.do(nil, "GET", "/metrics", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics on the main address: status %d, want 404", resp.StatusCode)
	}
	if !strings.Contains(e.metrics(), "go_goroutines") {
		t.Error("the metrics handler does not serve the registry")
	}
}

// TestUnknownAPIPath: an unknown API path is 404 not_found and a wrong method on a known
// one 405, in the JSON error shape, and neither is logged as an error.
func TestUnknownAPIPath(t *testing.T) {
	e := newEnv(t, nil)
	auth := map[string]string{"Authorization": "Bearer " + sign(t, validClaims("n1", "김민준", "org-a"))}
	tests := []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/api/v1/nope", http.StatusNotFound, messenger.ENOTFOUND},
		{"GET", "/api/v1/conversations/1/nope", http.StatusNotFound, messenger.ENOTFOUND},
		{"POST", "/api/v1/nope", http.StatusNotFound, messenger.ENOTFOUND},
		{"DELETE", "/api/v1/me", http.StatusMethodNotAllowed, messenger.EINVALID},
		{"PATCH", "/api/v1/conversations", http.StatusMethodNotAllowed, messenger.EINVALID},
	}
	for _, tt := range tests {
		resp := e.do(nil, tt.method, tt.path, nil, auth)
		code, _ := decodeError(t, resp)
		if resp.StatusCode != tt.status || code != tt.code {
			t.Errorf("%s %s: %d %q, want %d %q", tt.method, tt.path, resp.StatusCode, code, tt.status, tt.code)
		}
	}
	browser := e.signInBrowser("n2", "이서연", "org-a")
	if resp := e.do(browser, "DELETE", "/", nil, map[string]string{"Origin": e.srv.URL}); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("DELETE /: status %d, want 405", resp.StatusCode)
	}
	if strings.Contains(e.logs.String(), `"level":"ERROR"`) {
		t.Errorf("client mistakes were logged as errors:\n%s", e.logs.String())
	}
}

// TestTokensNeverFromTheQuery: the portal token and the CSRF token count only in the
// request body (or the CSRF header), never in the URL, where logs and Referer keep them.
func TestTokensNeverFromTheQuery(t *testing.T) {
	e := newEnv(t, nil)
	token := sign(t, validClaims("q1", "김민준", "org-a"))
	resp := e.do(e.client(), "POST", "/auth/portal?token="+url.QueryEscape(token), strings.NewReader(""), map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Origin": portal, "Sec-Fetch-Site": "cross-site",
	})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("token in the query: status %d, want 401", resp.StatusCode)
	}
	if n := e.count("sessions"); n != 0 {
		t.Errorf("a token in the query made %d sessions", n)
	}

	browser := e.signInBrowser("q2", "이서연", "org-a")
	csrf := e.csrfToken(browser)
	resp = e.do(browser, "POST", "/logout?csrf_token="+url.QueryEscape(csrf), nil, map[string]string{"Origin": e.srv.URL})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("CSRF token in the query: status %d, want 403", resp.StatusCode)
	}
	if resp := e.do(browser, "GET", "/", nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("the session ended by a logout with the token in the query: status %d", resp.StatusCode)
	}
	resp = e.do(browser, "POST", "/logout", strings.NewReader(url.Values{"csrf_token": {csrf}}.Encode()), map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Origin": e.srv.URL,
	})
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("CSRF token in the form body: status %d, want 303", resp.StatusCode)
	}
}

// TestErrorMessagesAreOurs: a refused token is explained in our words, never the JWT
// library's, and no message repeats a long input.
func TestErrorMessagesAreOurs(t *testing.T) {
	e := newEnv(t, nil)
	hs384, _ := jwt.NewWithClaims(jwt.SigningMethodHS384, validClaims("x1", "김민준", "org-a")).SignedString([]byte(testSecret))
	long := strings.Repeat("a", 500)
	bad := validClaims("x1", "김민준", "org-a")
	bad["role"] = long
	for name, token := range map[string]string{"HS384": hs384, "garbage": "not.a.jwt", "bad role": sign(t, bad)} {
		resp := e.do(nil, "GET", "/api/v1/me", nil, map[string]string{"Authorization": "Bearer " + token})
		code, msg := decodeError(t, resp)
		if code != messenger.EUNAUTHORIZED || msg == "" {
			t.Errorf("%s: %q %q, want unauthorized with a message", name, code, msg)
		}
		for _, lib := range []string{"signing method", "HS384", "token is malformed", "token has invalid", "segment", long[:40]} {
			if strings.Contains(msg, lib) {
				t.Errorf("%s: message %q repeats %q", name, msg, lib)
			}
		}
	}

	auth := map[string]string{"Authorization": "Bearer " + sign(t, validClaims("x2", "김민준", "org-a")), "Content-Type": "application/json"}
	resp := e.do(nil, "POST", "/api/v1/conversations", strings.NewReader(`{"kind":"group","title":"t","participant_ids":["`+long+`"]}`), auth)
	if _, msg := decodeError(t, resp); strings.Contains(msg, long[:40]) {
		t.Errorf("inviting an unknown user repeats the input: %q", msg)
	}
}

// TestSecurityHeaders: HSTS and the __Host- cookie over https only; Permissions-Policy
// everywhere; no-store on the API and private pages, a long cache on assets.
func TestSecurityHeaders(t *testing.T) {
	plain := newEnv(t, nil)
	tls := newEnv(t, func(c *handlers.Config) { c.HTTPS = true })

	browser := tls.client()
	form := url.Values{"token": {sign(t, validClaims("h1", "김민준", "org-a"))}}
	resp := tls.do(browser, "POST", "/auth/portal", strings.NewReader(form.Encode()), map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Origin": portal, "Sec-Fetch-Site": "cross-site",
	})
	setCookie := resp.Header.Get("Set-Cookie")
	if !strings.HasPrefix(setCookie, "__Host-messenger_session=") || !strings.Contains(setCookie, "Secure") ||
		!strings.Contains(setCookie, "Path=/") || strings.Contains(strings.ToLower(setCookie), "domain=") {
		t.Errorf("over https the session cookie is %q, want __Host-messenger_session, Secure, Path=/, no Domain", setCookie)
	}
	// The cookie jar holds the cookie for the test server's http URL only when it is not
	// Secure-only; send it by hand.
	name, value, _ := strings.Cut(strings.Split(setCookie, ";")[0], "=")
	page := tls.do(nil, "GET", "/", nil, map[string]string{"Cookie": name + "=" + value})
	if page.StatusCode != http.StatusOK {
		t.Fatalf("page with the __Host- cookie: status %d", page.StatusCode)
	}
	if hsts := page.Header.Get("Strict-Transport-Security"); hsts != "max-age=63072000; includeSubDomains" {
		t.Errorf("over https Strict-Transport-Security = %q", hsts)
	}
	if resp := plain.do(nil, "GET", "/healthz", nil, nil); resp.Header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS sent over plain http")
	}
	plainCookie := plain.do(plain.client(), "POST", "/auth/portal", strings.NewReader(form.Encode()), map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Origin": portal, "Sec-Fetch-Site": "cross-site",
	}).Header.Get("Set-Cookie")
	if !strings.HasPrefix(plainCookie, "messenger_session=") {
		t.Errorf("over http the session cookie is %q, want messenger_session", plainCookie)
	}

	api := plain.do(nil, "GET", "/api/v1/me", nil, map[string]string{"Authorization": "Bearer " + sign(t, validClaims("h2", "이서연", "org-a"))})
	apiErr := plain.do(nil, "GET", "/api/v1/me", nil, nil)
	asset := plain.do(nil, "GET", "/static/app.css?v=1", nil, nil)
	for name, r := range map[string]*http.Response{"page": page, "API": api, "API error": apiErr, "asset": asset} {
		pp := r.Header.Get("Permissions-Policy")
		for _, f := range []string{"camera=()", "microphone=()", "geolocation=()", "payment=()", "usb=()"} {
			if !strings.Contains(pp, f) {
				t.Errorf("%s: Permissions-Policy %q lacks %s", name, pp, f)
			}
		}
		if strings.Contains(pp, "notifications") || strings.Contains(pp, "push") {
			t.Errorf("%s: Permissions-Policy %q shuts out notifications", name, pp)
		}
		cc := r.Header.Get("Cache-Control")
		if name == "asset" {
			if !strings.Contains(cc, "immutable") {
				t.Errorf("asset Cache-Control %q, want the long cache", cc)
			}
		} else if cc != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", name, cc)
		}
	}
}

// TestHeadForPages: HEAD answers every page with the status and headers of GET and no body.
func TestHeadForPages(t *testing.T) {
	e := newEnv(t, nil)
	browser := e.signInBrowser("hd1", "김민준", "org-a")
	me := mustUser(t, e.db, "hd1", "김민준", "org-a")
	friend := mustUser(t, e.db, "hd2", "이서연", "org-a")
	conv := directConversation(t, e, me, friend)
	for _, path := range []string{"/", "/conversations", "/fragments/list", "/new", "/people?q=이", fmt.Sprintf("/c/%d", conv),
		fmt.Sprintf("/c/%d/messages", conv), fmt.Sprintf("/c/%d/header", conv), "/embed", "/healthz", "/static/app.js"} {
		get := e.do(browser, "GET", path, nil, nil)
		readBody(t, get)
		head := e.do(browser, "HEAD", path, nil, nil)
		if head.StatusCode != get.StatusCode {
			t.Errorf("HEAD %s: status %d, GET %d", path, head.StatusCode, get.StatusCode)
		}
		if body := readBody(t, head); body != "" {
			t.Errorf("HEAD %s has a body of %d bytes", path, len(body))
		}
		for _, h := range []string{"Content-Type", "Cache-Control", "Content-Security-Policy"} {
			if head.Header.Get(h) != get.Header.Get(h) {
				t.Errorf("HEAD %s: %s %q, GET %q", path, h, head.Header.Get(h), get.Header.Get(h))
			}
		}
	}
	if resp := e.do(nil, "HEAD", "/c/1", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("HEAD of a page without a session: status %d, want 401", resp.StatusCode)
	}
}
