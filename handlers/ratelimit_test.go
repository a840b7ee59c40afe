package handlers_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dreamseed/messenger/handlers"
	"github.com/dreamseed/messenger/ratelimit"
)

// limitedEnv is a messenger whose sign-ins allow a burst of three per address and per
// portal user, with nothing refilling during the test.
func limitedEnv(t *testing.T, trusted ...string) *env {
	return newEnv(t, func(c *handlers.Config) {
		c.Limits = ratelimit.New(ratelimit.NewMemory(), ratelimit.Rates{
			ratelimit.SignInAddress: {PerSecond: 0.001, Burst: 3},
			ratelimit.SignInSubject: {PerSecond: 0.001, Burst: 3},
		}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		for _, cidr := range trusted {
			_, n, err := net.ParseCIDR(cidr)
			if err != nil {
				t.Fatal(err)
			}
			c.TrustedProxies = append(c.TrustedProxies, n)
		}
	})
}

// signInFrom answers the status and Retry-After of a first API request with a token
// that does not verify, forwarded for client by whatever stands in front.
func (e *env) signInFrom(sub, client string) (int, string) {
	e.t.Helper()
	resp := e.do(nil, http.MethodGet, "/api/v1/me", nil, map[string]string{
		"Authorization":   "Bearer not-a-token-of-" + sub,
		"X-Forwarded-For": client,
	})
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// validSignInFrom is signInFrom with a valid token of a new user.
func (e *env) validSignInFrom(sub, client string) int {
	e.t.Helper()
	resp := e.do(nil, http.MethodGet, "/api/v1/me", nil, map[string]string{
		"Authorization":   "Bearer " + sign(e.t, validClaims(sub, "학생", "org-proxy")),
		"X-Forwarded-For": client,
	})
	return resp.StatusCode
}

// TestSignInAddressBehindProxy checks whose address a refused sign-in counts against:
// behind a trusted proxy the client's from X-Forwarded-For, so a school behind the proxy
// does not share one bucket with every other; without one the connection's, so a forged
// header buys a script nothing. Valid tokens from an address whose bucket is empty still
// sign in: garbage from one pupil never locks the school out.
func TestSignInAddressBehindProxy(t *testing.T) {
	t.Run("trusted proxy", func(t *testing.T) {
		e := limitedEnv(t, "127.0.0.0/8")
		for i := range 6 {
			if st, _ := e.signInFrom(fmt.Sprintf("proxied-%d", i), fmt.Sprintf("203.0.113.%d", i)); st != http.StatusUnauthorized {
				t.Fatalf("refused sign-in %d from its own address behind the proxy: %d, want 401", i, st)
			}
		}
		for i := range 3 {
			if st, _ := e.signInFrom(fmt.Sprintf("school-%d", i), "198.51.100.7"); st != http.StatusUnauthorized {
				t.Fatalf("refused sign-in %d of the school: %d, want 401", i, st)
			}
		}
		if st, retry := e.signInFrom("school-3", "198.51.100.7"); st != http.StatusTooManyRequests || retry == "" {
			t.Fatalf("the school's fourth refused sign-in: %d, Retry-After %q; want 429 with Retry-After", st, retry)
		}
		for i := range 5 {
			if st := e.validSignInFrom(fmt.Sprintf("pupil-%d", i), "198.51.100.7"); st != http.StatusOK {
				t.Fatalf("a valid sign-in %d from the school after the garbage: %d, want 200", i, st)
			}
		}
		// An untrusted hop in front of the proxy: the address the proxy saw counts.
		if st, _ := e.signInFrom("spoofer", "198.51.100.7, 203.0.113.200"); st != http.StatusUnauthorized {
			t.Fatalf("a refused sign-in forwarded for a new address: %d, want 401", st)
		}
	})
	t.Run("no proxy", func(t *testing.T) {
		e := limitedEnv(t)
		for i := range 3 {
			if st, _ := e.signInFrom(fmt.Sprintf("direct-%d", i), fmt.Sprintf("203.0.113.%d", i)); st != http.StatusUnauthorized {
				t.Fatalf("refused sign-in %d: %d, want 401", i, st)
			}
		}
		if st, _ := e.signInFrom("direct-3", "203.0.113.99"); st != http.StatusTooManyRequests {
			t.Fatalf("a fourth refused sign-in from the same connection address with a forged X-Forwarded-For: %d, want 429", st)
		}
	})
}

// TestPortalSignInLimited checks the page a portal sign-in past its limit gets: 429, a
// Retry-After, the message in the reader's language, no session.
func TestPortalSignInLimited(t *testing.T) {
	e := limitedEnv(t)
	token := func() string { return sign(t, validClaims("portal-hurry", "김민지", "org-portal")) }
	for i := range 3 {
		resp := e.do(e.client(), http.MethodPost, "/auth/portal", strings.NewReader(url.Values{"token": {token()}}.Encode()),
			map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": portal})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in %d: %d", i, resp.StatusCode)
		}
	}
	resp := e.do(e.client(), http.MethodPost, "/auth/portal", strings.NewReader(url.Values{"token": {token()}}.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": portal, "Accept-Language": "ko"})
	page := readBody(t, resp)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(page, "요청이 너무 많습니다") || len(resp.Cookies()) != 0 {
		t.Fatalf("the fourth sign-in: %d, Retry-After %q, cookies %v, page %q", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Cookies(), page)
	}
}

// TestLimiterDownLetsRequestsThrough checks that a limiter whose Redis does not answer
// stops nobody: the send is stored (201, not a 500), and the failure is counted.
func TestLimiterDownLetsRequestsThrough(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing answers there
	down, err := ratelimit.NewRedis("redis://"+addr+"/0", "down:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { down.Close() })
	e := newEnv(t, func(c *handlers.Config) {
		c.Limits = ratelimit.New(down, ratelimit.DefaultRates(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	})
	token := sign(t, validClaims("limiter-down", "김민지", "org-down"))
	other := sign(t, validClaims("limiter-down-2", "이준호", "org-down"))
	auth := func(tok string) map[string]string {
		return map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "application/json"}
	}
	if resp := e.do(nil, http.MethodGet, "/api/v1/me", nil, auth(other)); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in with the limiter down: %d %s", resp.StatusCode, readBody(t, resp))
	}
	resp := e.do(nil, http.MethodPost, "/api/v1/conversations", strings.NewReader(`{"kind":"direct","participant_ids":["limiter-down-2"]}`), auth(token))
	var conv struct {
		ID int64 `json:"id"`
	}
	if resp.StatusCode != http.StatusCreated || jsonDecode(resp, &conv) != nil {
		t.Fatalf("create with the limiter down: %d", resp.StatusCode)
	}
	resp = e.do(nil, http.MethodPost, fmt.Sprintf("/api/v1/conversations/%d/messages", conv.ID), strings.NewReader(`{"body":"안녕하세요"}`), auth(token))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("send with the limiter down: %d %s", resp.StatusCode, readBody(t, resp))
	}
	if n := e.count("messages"); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
	page := e.metrics()
	if !strings.Contains(page, "messenger_rate_limit_errors_total ") || strings.Contains(page, "messenger_rate_limit_errors_total 0\n") {
		t.Errorf("/metrics does not count the limiter's failures:\n%s", grepLines(page, "rate_limit"))
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
