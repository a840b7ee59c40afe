package handlers_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/dreamseed/messenger/handlers"
	"github.com/dreamseed/messenger/ratelimit"
)

// testPushKeys is a VAPID public key of the test's own.
type testPushKeys struct{ public string }

func (k testPushKeys) PublicKey() string { return k.public }

func newPushKeys(t *testing.T) testPushKeys {
	t.Helper()
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testPushKeys{public: base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes())}
}

func newPushEnv(t *testing.T, mutate func(*handlers.Config)) *env {
	keys := newPushKeys(t)
	return newEnv(t, func(c *handlers.Config) {
		c.PushKeys = keys
		if mutate != nil {
			mutate(c)
		}
	})
}

// subscription is a browser's PushSubscription JSON for endpoint, with real keys.
func subscription(t *testing.T, endpoint string, extra map[string]any) []byte {
	t.Helper()
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secret := make([]byte, 16)
	rand.Read(secret)
	body := map[string]any{
		"endpoint": endpoint, "expirationTime": nil,
		"keys": map[string]string{
			"p256dh": base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes()),
			"auth":   base64.RawURLEncoding.EncodeToString(secret),
		},
	}
	for k, v := range extra {
		body[k] = v
	}
	b, _ := json.Marshal(body)
	return b
}

const chromeUA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"

// postSubscription posts body as a browser page of this origin would.
func (e *env) postSubscription(client *http.Client, body []byte, header map[string]string) *http.Response {
	h := map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-origin", "User-Agent": chromeUA}
	for k, v := range header {
		h[k] = v
	}
	return e.do(client, "POST", "/api/v1/push/subscriptions", bytes.NewReader(body), h)
}

func (e *env) ticket(client *http.Client) string {
	e.t.Helper()
	resp := e.do(client, "POST", "/push/tickets", nil, map[string]string{"X-CSRF-Token": e.csrfToken(client), "Sec-Fetch-Site": "same-origin"})
	if resp.StatusCode != http.StatusCreated {
		e.t.Fatalf("ticket: %d %s", resp.StatusCode, readBody(e.t, resp))
	}
	var out struct {
		Ticket    string `json:"ticket"`
		ExpiresIn int    `json:"expires_in"`
	}
	if err := jsonDecode(resp, &out); err != nil || len(out.Ticket) < 40 || out.ExpiresIn > 300 {
		e.t.Fatalf("ticket answer %+v: %v", out, err)
	}
	return out.Ticket
}

func (e *env) subscriptionsOf(sub string) int {
	e.t.Helper()
	var n int
	if err := e.owner.QueryRow(`SELECT count(*) FROM push_subscriptions s JOIN users u ON u.id = s.user_id WHERE u.sub = $1`, sub).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func wantError(t *testing.T, resp *http.Response, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, readBody(t, resp))
	}
	if got, _ := decodeError(t, resp); got != code {
		t.Fatalf("code %q, want %q", got, code)
	}
}

// TestPushTickets: the small window without a session subscribes with a one-time ticket;
// a forged, reused, expired or another user's ticket is refused and stores nothing.
func TestPushTickets(t *testing.T) {
	e := newPushEnv(t, nil)
	parent := e.signInBrowser("p1", "최지훈", "org-a")
	teacher := e.signInBrowser("t1", "김선영", "org-a")
	window := e.client() // the top-level window: no cookie

	ticket := e.ticket(parent)
	resp := e.postSubscription(window, subscription(t, "https://fcm.googleapis.com/fcm/send/abc", map[string]any{"ticket": ticket}), nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("subscribe with ticket: %d %s", resp.StatusCode, readBody(t, resp))
	}
	var out struct{ ID string }
	if err := jsonDecode(resp, &out); err != nil || len(out.ID) != 36 {
		t.Fatalf("answer %+v %v", out, err)
	}
	var browser string
	if err := e.owner.QueryRow(`SELECT browser FROM push_subscriptions WHERE id = $1`, out.ID).Scan(&browser); err != nil || browser != "Chrome · Android" {
		t.Fatalf("browser %q %v", browser, err)
	}
	if n := e.subscriptionsOf("p1"); n != 1 {
		t.Fatalf("parent has %d subscriptions", n)
	}

	// Used once: the same ticket again, for another endpoint.
	resp = e.postSubscription(window, subscription(t, "https://fcm.googleapis.com/fcm/send/again", map[string]any{"ticket": ticket}), nil)
	wantError(t, resp, http.StatusUnauthorized, "unauthorized")

	// Forged.
	forged := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	resp = e.postSubscription(window, subscription(t, "https://fcm.googleapis.com/fcm/send/forged", map[string]any{"ticket": forged}), nil)
	wantError(t, resp, http.StatusUnauthorized, "unauthorized")

	// Expired: issued six minutes ago for five.
	old := base64.RawURLEncoding.EncodeToString([]byte("an-expired-ticket-of-thirty-two!"))
	hash := sha256.Sum256([]byte(old))
	if _, err := e.owner.Exec(`INSERT INTO push_tickets (token_hash, user_id, org_id, created_at, expires_at)
		SELECT $1, id, org_id, now() - interval '6 minutes', now() - interval '1 minute' FROM users WHERE sub = 'p1'`, hash[:]); err != nil {
		t.Fatal(err)
	}
	resp = e.postSubscription(window, subscription(t, "https://fcm.googleapis.com/fcm/send/expired", map[string]any{"ticket": old}), nil)
	wantError(t, resp, http.StatusUnauthorized, "unauthorized")

	// Another user's: the teacher's browser, signed in, posts the parent's ticket. The
	// ticket is used up; nobody gets a subscription.
	stolen := e.ticket(parent)
	resp = e.postSubscription(teacher, subscription(t, "https://fcm.googleapis.com/fcm/send/stolen", map[string]any{"ticket": stolen}), nil)
	wantError(t, resp, http.StatusForbidden, "forbidden")
	resp = e.postSubscription(window, subscription(t, "https://fcm.googleapis.com/fcm/send/stolen", map[string]any{"ticket": stolen}), nil)
	wantError(t, resp, http.StatusUnauthorized, "unauthorized")

	// From another site.
	resp = e.postSubscription(window, subscription(t, "https://fcm.googleapis.com/fcm/send/xsite", map[string]any{"ticket": e.ticket(parent)}),
		map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"})
	wantError(t, resp, http.StatusForbidden, "forbidden")

	// No credential at all; a session without its CSRF token.
	resp = e.postSubscription(window, subscription(t, "https://fcm.googleapis.com/fcm/send/none", nil), nil)
	wantError(t, resp, http.StatusUnauthorized, "unauthorized")
	resp = e.postSubscription(teacher, subscription(t, "https://fcm.googleapis.com/fcm/send/nocsrf", nil), nil)
	wantError(t, resp, http.StatusForbidden, "forbidden")

	if n := e.subscriptionsOf("p1"); n != 1 {
		t.Fatalf("parent has %d subscriptions after the refusals", n)
	}
	if n := e.subscriptionsOf("t1"); n != 0 {
		t.Fatalf("teacher has %d subscriptions after the refusals", n)
	}
	// A ticket is issued to a signed-in page only, with its CSRF token.
	resp = e.do(window, "POST", "/push/tickets", nil, map[string]string{"Sec-Fetch-Site": "same-origin"})
	if resp.StatusCode == http.StatusCreated {
		t.Fatal("a ticket without a session")
	}
	resp = e.do(parent, "POST", "/push/tickets", nil, map[string]string{"Sec-Fetch-Site": "same-origin"})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a ticket without the CSRF token: %d", resp.StatusCode)
	}
}

// TestPushSubscriptions: with a session or a portal token; endpoints that would make the
// sender call this machine or the local network are refused unless allowed; the device
// list and its removal.
func TestPushSubscriptions(t *testing.T) {
	e := newPushEnv(t, nil)
	parent := e.signInBrowser("p1", "최지훈", "org-a")
	csrf := e.csrfToken(parent)
	resp := e.postSubscription(parent, subscription(t, "https://updates.push.services.mozilla.com/wpush/v2/x", nil), map[string]string{
		"X-CSRF-Token": csrf, "User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
	})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("subscribe with session: %d %s", resp.StatusCode, readBody(t, resp))
	}
	bearer := map[string]string{"Authorization": "Bearer " + sign(t, validClaims("p1", "최지훈", "org-a"))}
	resp = e.postSubscription(nil, subscription(t, "https://web.push.apple.com/QO1", nil), bearer)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("subscribe with token: %d %s", resp.StatusCode, readBody(t, resp))
	}
	var apple struct{ ID string }
	jsonDecode(resp, &apple)

	for _, bad := range []string{
		"http://fcm.googleapis.com/fcm/send/x", "https://127.0.0.1/x", "https://10.1.2.3/x", "https://[::1]/x",
		"https://169.254.169.254/latest/meta-data", "https://localhost/x", "https://push.localhost/x",
		"https://router.local/x", "https://metadata.google.internal/x", "https://fcm.googleapis.com:8443/x",
		"https://user:pw@fcm.googleapis.com/x", "https://[::ffff:192.168.0.1]/x", "https://100.64.0.1/x",
		"ftp://fcm.googleapis.com/x", "", "not a url", "https:///x", "https://intranet/x",
		"https://fcm.googleapis.com/" + strings.Repeat("a", 2100),
	} {
		resp := e.postSubscription(nil, subscription(t, bad, nil), bearer)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("endpoint %.60q: status %d, want 400: %s", bad, resp.StatusCode, readBody(t, resp))
		}
	}
	for name, body := range map[string]string{
		"p256dh not a point": `{"endpoint":"https://fcm.googleapis.com/x","keys":{"p256dh":"` + base64.RawURLEncoding.EncodeToString(append([]byte{4}, make([]byte, 64)...)) + `","auth":"AAAAAAAAAAAAAAAAAAAAAA"}}`,
		"auth too short":     strings.Replace(string(subscription(t, "https://fcm.googleapis.com/y", nil)), `"auth":"`, `"auth":"AA`, 1),
		"no keys":            `{"endpoint":"https://fcm.googleapis.com/x"}`,
		"keys not strings":   `{"endpoint":"https://fcm.googleapis.com/x","keys":{"p256dh":1,"auth":2}}`,
	} {
		resp := e.postSubscription(nil, []byte(body), bearer)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400: %s", name, resp.StatusCode, readBody(t, resp))
		}
	}
	if n := e.subscriptionsOf("p1"); n != 2 {
		t.Fatalf("%d subscriptions, want 2", n)
	}

	// The device list, and removing one with its plain form.
	page := readBody(t, e.do(parent, "GET", "/push/devices", nil, nil))
	for _, want := range []string{"Firefox · Windows", "Chrome · Android", "알림 켜기", `action="/push/devices/` + apple.ID + `/delete"`} {
		if !strings.Contains(page, want) {
			t.Errorf("device page lacks %q", want)
		}
	}
	resp = e.do(parent, "POST", "/push/devices/"+apple.ID+"/delete", strings.NewReader("csrf_token="+csrf),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "same-origin"})
	if resp.StatusCode != http.StatusSeeOther || e.subscriptionsOf("p1") != 1 {
		t.Fatalf("remove: %d, %d left", resp.StatusCode, e.subscriptionsOf("p1"))
	}
	// DELETE over the API: someone else's id is not found; one's own goes, once.
	var left string
	e.owner.QueryRow(`SELECT id FROM push_subscriptions`).Scan(&left)
	other := map[string]string{"Authorization": "Bearer " + sign(t, validClaims("t1", "김선영", "org-a"))}
	if resp := e.do(nil, "DELETE", "/api/v1/push/subscriptions/"+left, nil, other); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("another user's delete: %d", resp.StatusCode)
	}
	if resp := e.do(nil, "DELETE", "/api/v1/push/subscriptions/"+left, nil, bearer); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if resp := e.do(nil, "DELETE", "/api/v1/push/subscriptions/"+left, nil, bearer); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("delete again: %d", resp.StatusCode)
	}
	if resp := e.do(nil, "DELETE", "/api/v1/push/subscriptions/not-a-uuid", nil, bearer); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("delete junk id: %d", resp.StatusCode)
	}
}

// TestPushAllowPrivate: tests and development let a loopback http receiver in.
func TestPushAllowPrivate(t *testing.T) {
	e := newPushEnv(t, func(c *handlers.Config) { c.PushAllowPrivate = true })
	bearer := map[string]string{"Authorization": "Bearer " + sign(t, validClaims("p1", "최지훈", "org-a"))}
	resp := e.postSubscription(nil, subscription(t, "http://127.0.0.1:9999/push/1", nil), bearer)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("loopback receiver: %d %s", resp.StatusCode, readBody(t, resp))
	}
	resp = e.postSubscription(nil, subscription(t, "ftp://127.0.0.1/x", nil), bearer)
	wantError(t, resp, http.StatusBadRequest, "invalid")
}

// TestPushAssets: the service worker at the root with its scope header, never cached; the
// manifest and its icons; the key.
func TestPushAssets(t *testing.T) {
	e := newPushEnv(t, nil)
	resp := e.do(nil, "GET", "/sw.js", nil, nil)
	body := readBody(t, resp)
	if resp.StatusCode != 200 || resp.Header.Get("Service-Worker-Allowed") != "/" || resp.Header.Get("Cache-Control") != "no-cache" ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") || !strings.Contains(body, "새 메시지 {n}개") {
		t.Fatalf("sw.js: %d %v", resp.StatusCode, resp.Header)
	}
	resp = e.do(nil, "GET", "/manifest.webmanifest", nil, nil)
	var m struct {
		ShortName string `json:"short_name"`
		Theme     string `json:"theme_color"`
		Icons     []struct{ Src, Sizes, Purpose string }
	}
	raw := readBody(t, resp)
	json.Unmarshal([]byte(raw), &m)
	if !strings.Contains(raw, `"name":"DreamSeed 메신저"`) || m.ShortName != "드림시드" || m.Theme == "" || len(m.Icons) != 4 {
		t.Fatalf("manifest: %s", raw)
	}
	for _, icon := range m.Icons {
		resp := e.do(nil, "GET", icon.Src, nil, nil)
		img, err := png.Decode(resp.Body)
		if err != nil {
			t.Fatalf("%s: %v", icon.Src, err)
		}
		if got := img.Bounds().Dx(); icon.Sizes != map[int]string{192: "192x192", 512: "512x512"}[got] || img.Bounds().Dy() != got {
			t.Errorf("%s is %v, manifest says %s", icon.Src, img.Bounds(), icon.Sizes)
		}
	}
	resp = e.do(nil, "GET", "/api/v1/push/key", nil, nil)
	var key struct {
		PublicKey string `json:"public_key"`
	}
	if err := jsonDecode(resp, &key); err != nil || key.PublicKey != e.config.PushKeys.PublicKey() {
		t.Fatalf("key: %+v %v", key, err)
	}
	off := newEnv(t, nil)
	if resp := off.do(nil, "GET", "/api/v1/push/key", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("key with push off: %d", resp.StatusCode)
	}
	if resp := e.do(nil, "GET", "/push/enable", nil, nil); resp.StatusCode != 200 || resp.Header.Get("Cross-Origin-Opener-Policy") != "unsafe-none" {
		t.Fatalf("enable page: %d %v", resp.StatusCode, resp.Header)
	}
}

// TestPushTicketRate: a page (or a script with its session) takes tickets at a bounded rate.
func TestPushTicketRate(t *testing.T) {
	e := newPushEnv(t, func(c *handlers.Config) {
		c.Limits = ratelimit.New(ratelimit.NewMemory(), ratelimit.Rates{ratelimit.PushTicket: {PerSecond: 0.01, Burst: 2}},
			slog.New(slog.NewTextHandler(io.Discard, nil)))
	})
	parent := e.signInBrowser("p1", "최지훈", "org-a")
	e.ticket(parent)
	e.ticket(parent)
	resp := e.do(parent, "POST", "/push/tickets", nil, map[string]string{"X-CSRF-Token": e.csrfToken(parent), "Sec-Fetch-Site": "same-origin"})
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third ticket: %d", resp.StatusCode)
	}
	if n := e.count("push_tickets"); n != 2 {
		t.Fatalf("%d tickets stored", n)
	}
}

// TestPushDevicesCapped: one more subscription than the cap drops the oldest.
func TestPushDevicesCapped(t *testing.T) {
	e := newPushEnv(t, func(c *handlers.Config) { c.MaxPushDevices = 3 })
	bearer := map[string]string{"Authorization": "Bearer " + sign(t, validClaims("p1", "최지훈", "org-a"))}
	for i := range 5 {
		resp := e.postSubscription(nil, subscription(t, fmt.Sprintf("https://fcm.googleapis.com/fcm/send/%d", i), nil), bearer)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("subscribe %d: %d %s", i, resp.StatusCode, readBody(t, resp))
		}
	}
	rows, err := e.owner.Query(`SELECT endpoint FROM push_subscriptions ORDER BY endpoint`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var kept []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		kept = append(kept, s[len(s)-1:])
	}
	if strings.Join(kept, "") != "234" {
		t.Fatalf("kept %v, want the newest three", kept)
	}
}
