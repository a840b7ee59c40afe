package handlers_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v5"
	_ "github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/handlers"
	"github.com/dreamseed/messenger/internal/syncbuf"
	"github.com/dreamseed/messenger/internal/trace"
	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

const (
	testSecret = "handlers-test-secret-0123456789abcdef"
	testIssuer = "dreamseed-portal"
	testAud    = "messenger"
	portal     = "https://portal.example"
)

// env is a running messenger on a fresh database.
type env struct {
	t      *testing.T
	srv    *httptest.Server
	db     *store.DB
	appDSN string
	owner  *sql.DB // superuser view of the database, to check what was (not) written
	config handlers.Config
	engine realtime.Engine
	server *handlers.Server
	svc    *chat.Service
	echo   *echo.Echo
	logs   *syncbuf.Buffer // the server's JSON log lines
}

func newEnv(t *testing.T, mutate func(*handlers.Config)) *env {
	t.Helper()
	engine := realtime.NewMemory(0)
	t.Cleanup(func() { engine.Close() })
	return newBase(t, mutate).serve(t, engine)
}

// base is what every handler test server shares: a fresh database (the store as the app
// role, an owner connection for checks), the token verifier and the configuration.
type base struct {
	db       *store.DB
	appDSN   string // the app role's connection, for a job runner
	owner    *sql.DB
	verifier *auth.Verifier
	cfg      handlers.Config
}

func newBase(t *testing.T, mutate func(*handlers.Config)) base {
	t.Helper()
	db, d := storetest.NewDB(t)
	owner := storetest.Conn(t, d.OwnerDSN)
	verifier, err := auth.NewVerifier(context.Background(), auth.VerifierConfig{
		Secret: []byte(testSecret), Issuer: testIssuer, Audience: testAud,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := handlers.Config{
		Issuer: testIssuer, Audience: testAud, PortalOrigins: []string{portal},
		CookieSecure: true, CookieSameSite: http.SameSiteNoneMode, DevSecret: []byte(testSecret),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	return base{db: db, appDSN: d.AppDSN, owner: owner, verifier: verifier, cfg: cfg}
}

// serve starts a server of b on engine, as one process; several share b's database.
func (b base) serve(t *testing.T, engine realtime.Engine) *env {
	t.Helper()
	logs := &syncbuf.Buffer{}
	logger := slog.New(trace.NewJSON(logs, slog.LevelInfo))
	svc := chat.NewService(b.db, engine, logger, prometheus.NewRegistry(), b.cfg.Limits)
	e, server := handlers.New(b.cfg, b.db, svc, b.verifier, engine, logger)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	// Streams detached from net/http outlive srv.Close: they end first, while the
	// database they record their end in is still there.
	t.Cleanup(func() {
		server.Drain()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := server.WaitStreams(ctx); err != nil {
			t.Errorf("live streams still running after the test: %v", err)
		}
	})
	return &env{t: t, srv: srv, db: b.db, appDSN: b.appDSN, owner: b.owner, config: b.cfg, engine: engine, server: server, svc: svc, echo: e, logs: logs}
}

type claims = jwt.MapClaims

func validClaims(sub, name, org string) claims {
	now := time.Now()
	return claims{
		"iss": testIssuer, "aud": testAud, "sub": sub, "name": name, "org_id": org, "zone_id": org + "-zone",
		"role": "teacher", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

func sign(t *testing.T, c claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *env) count(table string) int {
	e.t.Helper()
	var n int
	if err := e.owner.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// client is a browser-like HTTP client: a cookie jar and no automatic redirects.
func (e *env) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (e *env) do(client *http.Client, method, path string, body io.Reader, header map[string]string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := roundTrip(client, req, header)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// roundTrip sends req with header set, by client (the default client when nil).
func roundTrip(client *http.Client, req *http.Request, header map[string]string) (*http.Response, error) {
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if client == nil {
		client = http.DefaultClient
	}
	return client.Do(req)
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// signInBrowser posts a portal token like the portal's iframe does and answers the client
// holding the session.
func (e *env) signInBrowser(sub, name, org string) *http.Client {
	e.t.Helper()
	c := e.client()
	form := url.Values{"token": {sign(e.t, validClaims(sub, name, org))}}
	resp := e.do(c, "POST", "/auth/portal", strings.NewReader(form.Encode()), map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Origin": portal, "Sec-Fetch-Site": "cross-site",
	})
	if resp.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("sign in %s: status %d: %s", sub, resp.StatusCode, readBody(e.t, resp))
	}
	return c
}

func (e *env) csrfToken(c *http.Client) string {
	e.t.Helper()
	body := readBody(e.t, e.do(c, "GET", "/", nil, nil))
	_, rest, ok := strings.Cut(body, `<meta name="csrf-token" content="`)
	if !ok {
		e.t.Fatal("no csrf-token meta on the page")
	}
	token, _, _ := strings.Cut(rest, `"`)
	return token
}

func decodeError(t *testing.T, resp *http.Response) (code, message string) {
	t.Helper()
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	raw := readBody(t, resp)
	if err := json.Unmarshal([]byte(raw), &body); err != nil {
		t.Fatalf("error body is not the JSON error shape: %q", raw)
	}
	return body.Error.Code, body.Error.Message
}

func mustUser(t *testing.T, db *store.DB, sub, name, org string) messenger.User {
	return storetest.MustSignIn(t, db, sub, name, org, org+"-zone", messenger.RoleTeacher)
}

func jsonDecode(resp *http.Response, v any) error {
	return json.NewDecoder(resp.Body).Decode(v)
}

// metrics answers the Prometheus page of the server, as its metrics listener serves it.
func (e *env) metrics() string {
	e.t.Helper()
	rec := httptest.NewRecorder()
	e.server.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		e.t.Fatalf("metrics: status %d", rec.Code)
	}
	return rec.Body.String()
}

// counter answers the value of the unlabelled series name on /metrics (-1 when absent).
func (e *env) counter(name string) float64 {
	e.t.Helper()
	for _, line := range strings.Split(e.metrics(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				e.t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return -1
}
