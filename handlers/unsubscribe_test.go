package handlers_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dreamseed/messenger/digest"
	"github.com/dreamseed/messenger/store"
)

// TestUnsubscribeRoute: the digest's link works without a session or CSRF token, from a
// mail client's one-click POST on another site, once; GET only asks.
func TestUnsubscribeRoute(t *testing.T) {
	e := newEnv(t, nil)
	secret := []byte("a mail secret of at least thirty-two bytes")
	if resp := e.do(nil, "GET", "/unsubscribe?t=x", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("without email: %d, want 404", resp.StatusCode)
	}
	e.server.SetUnsubscribe(digest.NewUnsubscriber(e.db, secret, slog.New(slog.NewTextHandler(io.Discard, nil))))
	u := mustUser(t, e.db, "unsub-1", "김학부모", "org-u")
	tok := url.QueryEscape(digest.SignUnsubscribeToken(secret, u.ID, time.Now().Add(time.Hour)))
	emailOn := func() bool {
		var on bool
		if err := e.db.InTx(context.Background(), u.Identity(), func(tx *store.Tx) error {
			var err error
			on, err = tx.EmailOn(context.Background())
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return on
	}

	resp := e.do(nil, "GET", "/unsubscribe?t="+tok, nil, map[string]string{"Accept-Language": "en"})
	body := readBody(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(body, `<form method="post" action="/unsubscribe">`) || !strings.Contains(body, "이메일 알림") {
		t.Fatalf("GET: %d\n%s", resp.StatusCode, body)
	}
	if resp.Header.Get("Content-Security-Policy") == "" {
		t.Error("the page has no CSP")
	}
	if !emailOn() {
		t.Fatal("GET turned email off")
	}
	oneClick := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": "https://mail.example", "Sec-Fetch-Site": "cross-site"}
	if resp := e.do(nil, "POST", "/unsubscribe?t="+tok, strings.NewReader("List-Unsubscribe=One-Click"), oneClick); resp.StatusCode != 200 {
		t.Fatalf("one-click POST: %d %s", resp.StatusCode, readBody(t, resp))
	}
	if emailOn() {
		t.Error("email still on")
	}
	if resp := e.do(nil, "POST", "/unsubscribe?t="+tok, strings.NewReader("List-Unsubscribe=One-Click"), oneClick); resp.StatusCode != http.StatusGone {
		t.Errorf("second use: %d, want 410", resp.StatusCode)
	}
	// The page's own button posts the token as a field.
	tok2 := digest.SignUnsubscribeToken(secret, u.ID, time.Now().Add(time.Hour))
	form := url.Values{"t": {tok2}}.Encode()
	if resp := e.do(nil, "POST", "/unsubscribe", strings.NewReader(form), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); resp.StatusCode != 200 {
		t.Errorf("form POST: %d", resp.StatusCode)
	}
	if resp := e.do(nil, "POST", "/unsubscribe?t=AAAA", nil, nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("forged token: %d, want 400", resp.StatusCode)
	}
}
