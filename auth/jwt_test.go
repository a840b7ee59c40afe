package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testIssuer   = "https://portal.example.test"
	testAudience = "messenger"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-test-only")

// Keys are generated once: RSA generation is slow enough to matter under -race.
var (
	rsaKey1, rsaKey2, rsaOther *rsa.PrivateKey
	ecKey256, ecKey384         *ecdsa.PrivateKey
	edPub                      ed25519.PublicKey
	edPriv                     ed25519.PrivateKey
)

var genKeys = sync.OnceValue(func() error {
	var err error
	if rsaKey1, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return err
	}
	if rsaKey2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return err
	}
	if rsaOther, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return err
	}
	if ecKey256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return err
	}
	if ecKey384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
		return err
	}
	edPub, edPriv, err = ed25519.GenerateKey(rand.Reader)
	return err
})

func testKeys(t *testing.T) {
	t.Helper()
	if err := genKeys(); err != nil {
		t.Fatalf("generate keys: %v", err)
	}
}

// baseClaims is a token the portal would legitimately issue; cases mutate it.
func baseClaims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss":     testIssuer,
		"aud":     testAudience,
		"sub":     "user-42",
		"name":    "김철수",
		"email":   "cs.kim@example.test",
		"org_id":  "org-7",
		"zone_id": "zone-3",
		"role":    "teacher",
		"iat":     now.Unix(),
		"exp":     now.Add(time.Hour).Unix(),
	}
}

func mint(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s token: %v", method.Alg(), err)
	}
	return s
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwkFor builds a public JWK by hand, as the portal would publish it.
func jwkFor(t *testing.T, kid, alg string, pub crypto.PublicKey) map[string]any {
	t.Helper()
	m := map[string]any{"kid": kid, "use": "sig"}
	if alg != "" {
		m["alg"] = alg
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		m["kty"] = "RSA"
		m["n"] = b64(k.N.Bytes())
		m["e"] = b64(big.NewInt(int64(k.E)).Bytes())
	case *ecdsa.PublicKey:
		e, err := k.ECDH()
		if err != nil {
			t.Fatalf("ecdh: %v", err)
		}
		raw := e.Bytes()[1:] // drop the 0x04 uncompressed-point prefix
		size := len(raw) / 2
		m["kty"] = "EC"
		m["crv"] = k.Curve.Params().Name
		m["x"] = b64(raw[:size])
		m["y"] = b64(raw[size:])
	case ed25519.PublicKey:
		m["kty"] = "OKP"
		m["crv"] = "Ed25519"
		m["x"] = b64(k)
	default:
		t.Fatalf("unsupported key %T", pub)
	}
	return m
}

// jwksServer serves a JWKS that a test can swap out, and counts fetches so
// tests can see when the Verifier went back to the portal.
type jwksServer struct {
	*httptest.Server
	mu   sync.Mutex
	body []byte
	hits atomic.Int64
}

func newJWKSServer(t *testing.T, keys ...map[string]any) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.set(t, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		body := s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(t *testing.T, keys ...map[string]any) {
	t.Helper()
	if keys == nil {
		keys = []map[string]any{}
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatalf("marshal jwks: %v", err)
	}
	s.mu.Lock()
	s.body = b
	s.mu.Unlock()
}

func newVerifier(t *testing.T, cfg VerifierConfig) *Verifier {
	t.Helper()
	if cfg.Issuer == "" {
		cfg.Issuer = testIssuer
	}
	if cfg.Audience == "" {
		cfg.Audience = testAudience
	}
	v, err := NewVerifier(t.Context(), cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// assertRejected checks what a caller sees on failure: ErrInvalidToken, a
// message naming the problem, and no part of the token in the message.
func assertRejected(t *testing.T, err error, token, wantMsg string, wantIs ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("Verify succeeded, want error containing %q", wantMsg)
	}
	if !errors.Is(err, ErrInvalidToken) {
		t.Errorf("error %q does not wrap ErrInvalidToken", err)
	}
	for _, target := range wantIs {
		if !errors.Is(err, target) {
			t.Errorf("error %q does not wrap %q", err, target)
		}
	}
	if !strings.HasPrefix(err.Error(), "invalid token: ") {
		t.Errorf("error %q does not start with %q", err, "invalid token: ")
	}
	if !strings.Contains(err.Error(), wantMsg) {
		t.Errorf("error %q does not mention %q", err, wantMsg)
	}
	if token != "" && strings.Contains(err.Error(), token) {
		t.Errorf("error echoes the token: %q", err)
	}
	for _, seg := range strings.Split(token, ".") {
		if len(seg) >= 8 && strings.Contains(err.Error(), seg) {
			t.Errorf("error echoes a token segment %q: %q", seg, err)
		}
	}
}

func TestNewVerifierConfig(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()

	status500 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	t.Cleanup(status500.Close)

	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("<html>not json</html>"))
	}))
	t.Cleanup(garbage.Close)

	// A valid JSON prefix followed by more than the 1 MiB cap: only the cap
	// makes this fail, so it shows the body is not read unbounded.
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"keys":[`))
		_, _ = w.Write([]byte(strings.Repeat(" ", 2<<20)))
		_, _ = w.Write([]byte(`]}`))
	}))
	t.Cleanup(huge.Close)

	tests := []struct {
		name    string
		cfg     VerifierConfig
		wantErr string // "" means success
	}{
		{"secret only", VerifierConfig{Secret: testSecret, Issuer: testIssuer, Audience: testAudience}, ""},
		{"no key source", VerifierConfig{Issuer: testIssuer, Audience: testAudience}, "needs a Secret or a JWKSURL"},
		{"empty secret is no secret", VerifierConfig{Secret: []byte{}, Issuer: testIssuer, Audience: testAudience}, "needs a Secret or a JWKSURL"},
		{"short secret", VerifierConfig{Secret: []byte("short"), Issuer: testIssuer, Audience: testAudience}, "at least 32 bytes"},
		{"no issuer", VerifierConfig{Secret: testSecret, Audience: testAudience}, "Issuer is required"},
		{"no audience", VerifierConfig{Secret: testSecret, Issuer: testIssuer}, "Audience is required"},
		{"negative leeway", VerifierConfig{Secret: testSecret, Issuer: testIssuer, Audience: testAudience, Leeway: -time.Second}, "Leeway must not be negative"},
		{"jwks unreachable", VerifierConfig{JWKSURL: downURL, Issuer: testIssuer, Audience: testAudience}, "cannot load JWKS from " + downURL},
		{"jwks http 500", VerifierConfig{JWKSURL: status500.URL, Issuer: testIssuer, Audience: testAudience}, "500"},
		{"jwks not json", VerifierConfig{JWKSURL: garbage.URL, Issuer: testIssuer, Audience: testAudience}, "decode JWK Set"},
		{"jwks over size cap", VerifierConfig{JWKSURL: huge.URL, Issuer: testIssuer, Audience: testAudience}, "decode JWK Set"},
		{"jwks bad url", VerifierConfig{JWKSURL: "not a url", Issuer: testIssuer, Audience: testAudience}, "cannot load JWKS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVerifier(t.Context(), tc.cfg)
			if tc.wantErr == "" {
				if err != nil || v == nil {
					t.Fatalf("NewVerifier: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("NewVerifier succeeded, want error containing %q", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not mention %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), string(testSecret)) {
				t.Errorf("error echoes the secret: %q", err)
			}
		})
	}
}

func TestNewVerifierJWKSTimeout(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })

	start := time.Now()
	_, err := NewVerifier(t.Context(), VerifierConfig{
		JWKSURL:    hang.URL,
		Issuer:     testIssuer,
		Audience:   testAudience,
		HTTPClient: &http.Client{Timeout: 200 * time.Millisecond},
	})
	if err == nil {
		t.Fatal("NewVerifier succeeded against a JWKS server that never answers")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("NewVerifier took %v; the HTTP client timeout was not honoured", d)
	}
}

func TestVerifyHS256(t *testing.T) {
	testKeys(t)
	v := newVerifier(t, VerifierConfig{Secret: testSecret})
	now := time.Now()

	tests := []struct {
		name    string
		mutate  func(jwt.MapClaims)
		sign    func(t *testing.T, c jwt.MapClaims) string // nil -> HS256 with testSecret
		wantErr string                                     // "" means valid
		wantIs  []error
		check   func(t *testing.T, c Claims)
	}{
		{
			name: "valid, no locale named",
			check: func(t *testing.T, c Claims) {
				want := Claims{
					Issuer: testIssuer, Subject: "user-42", Name: "김철수", Email: "cs.kim@example.test",
					OrgID: "org-7", ZoneID: "zone-3", Role: "teacher", Locale: "",
				}
				got := c
				got.ExpiresAt, got.IssuedAt = time.Time{}, time.Time{}
				if got != want {
					t.Errorf("claims = %+v, want %+v", got, want)
				}
				if d := time.Until(c.ExpiresAt); d < 59*time.Minute || d > time.Hour {
					t.Errorf("ExpiresAt = %v, want about an hour from now", c.ExpiresAt)
				}
				if d := time.Since(c.IssuedAt); d < -time.Second || d > time.Minute {
					t.Errorf("IssuedAt = %v, want the token's iat, about now", c.IssuedAt)
				}
			},
		},
		{
			name:   "locale en kept",
			mutate: func(m jwt.MapClaims) { m["locale"] = "en" },
			check:  wantField(func(c Claims) string { return c.Locale }, "en"),
		},
		{
			name:   "unknown locale is dropped",
			mutate: func(m jwt.MapClaims) { m["locale"] = "fr" },
			check:  wantField(func(c Claims) string { return c.Locale }, ""),
		},
		{
			name:   "zone_id may be absent",
			mutate: func(m jwt.MapClaims) { delete(m, "zone_id") },
			check:  wantField(func(c Claims) string { return c.ZoneID }, ""),
		},
		{
			name:   "email may be absent",
			mutate: func(m jwt.MapClaims) { delete(m, "email") },
			check:  wantField(func(c Claims) string { return c.Email }, ""),
		},
		{
			name:   "name is trimmed",
			mutate: func(m jwt.MapClaims) { m["name"] = "  Jane Doe \t" },
			check:  wantField(func(c Claims) string { return c.Name }, "Jane Doe"),
		},
		{
			name:   "aud list containing ours",
			mutate: func(m jwt.MapClaims) { m["aud"] = []string{"other", testAudience} },
			check:  wantField(func(c Claims) string { return c.Subject }, "user-42"),
		},
		{
			name:   "every role accepted: admin",
			mutate: func(m jwt.MapClaims) { m["role"] = "admin" },
			check:  wantField(func(c Claims) string { return c.Role }, "admin"),
		},
		{
			name:   "every role accepted: student",
			mutate: func(m jwt.MapClaims) { m["role"] = "student" },
			check:  wantField(func(c Claims) string { return c.Role }, "student"),
		},
		{
			name:   "every role accepted: parent",
			mutate: func(m jwt.MapClaims) { m["role"] = "parent" },
			check:  wantField(func(c Claims) string { return c.Role }, "parent"),
		},
		{
			name:   "every role accepted: staff",
			mutate: func(m jwt.MapClaims) { m["role"] = "staff" },
			check:  wantField(func(c Claims) string { return c.Role }, "staff"),
		},
		{
			name:   "expired within leeway",
			mutate: func(m jwt.MapClaims) { m["exp"] = now.Add(-10 * time.Second).Unix() },
			check:  wantField(func(c Claims) string { return c.Subject }, "user-42"),
		},
		{
			name:   "nbf within leeway",
			mutate: func(m jwt.MapClaims) { m["nbf"] = now.Add(10 * time.Second).Unix() },
			check:  wantField(func(c Claims) string { return c.Subject }, "user-42"),
		},
		{
			name:   "iat within leeway",
			mutate: func(m jwt.MapClaims) { m["iat"] = now.Add(10 * time.Second).Unix() },
			check:  wantField(func(c Claims) string { return c.Subject }, "user-42"),
		},
		{
			name:   "name of 100 runes",
			mutate: func(m jwt.MapClaims) { m["name"] = strings.Repeat("가", 100) },
			check:  wantField(func(c Claims) string { return c.Name }, strings.Repeat("가", 100)),
		},
		{
			name:   "email of 254 chars",
			mutate: func(m jwt.MapClaims) { m["email"] = strings.Repeat("a", 242) + "@example.com" },
			check:  wantField(func(c Claims) string { return c.Email }, strings.Repeat("a", 242)+"@example.com"),
		},

		{
			name: "forged signature (wrong secret)",
			sign: func(t *testing.T, c jwt.MapClaims) string {
				return mint(t, jwt.SigningMethodHS256, []byte("another-secret-that-is-32-bytes-long!!"), "", c)
			},
			wantErr: "signature is invalid",
			wantIs:  []error{jwt.ErrTokenSignatureInvalid},
		},
		{
			name: "tampered payload",
			sign: func(t *testing.T, c jwt.MapClaims) string {
				good := mint(t, jwt.SigningMethodHS256, testSecret, "", c)
				c["role"] = "admin"
				evil := mint(t, jwt.SigningMethodHS256, testSecret, "", c)
				g, e := strings.Split(good, "."), strings.Split(evil, ".")
				return g[0] + "." + e[1] + "." + g[2]
			},
			wantErr: "signature is invalid",
			wantIs:  []error{jwt.ErrTokenSignatureInvalid},
		},
		{
			name: "HS384 not allowed",
			sign: func(t *testing.T, c jwt.MapClaims) string {
				return mint(t, jwt.SigningMethodHS384, testSecret, "", c)
			},
			wantErr: "signing method HS384 is invalid",
		},
		{
			name: "RS256 without a JWKS",
			sign: func(t *testing.T, c jwt.MapClaims) string {
				return mint(t, jwt.SigningMethodRS256, rsaKey1, "k1", c)
			},
			wantErr: "signing method RS256 is invalid",
		},
		{
			name:    "expired",
			mutate:  func(m jwt.MapClaims) { m["exp"] = now.Add(-2 * time.Minute).Unix() },
			wantErr: "token is expired",
			wantIs:  []error{jwt.ErrTokenExpired},
		},
		{
			name:    "missing exp",
			mutate:  func(m jwt.MapClaims) { delete(m, "exp") },
			wantErr: "token is missing required claim",
			wantIs:  []error{jwt.ErrTokenRequiredClaimMissing},
		},
		{
			name:    "exp of wrong type",
			mutate:  func(m jwt.MapClaims) { m["exp"] = "tomorrow" },
			wantErr: "malformed",
		},
		{
			name:    "not yet valid (nbf)",
			mutate:  func(m jwt.MapClaims) { m["nbf"] = now.Add(5 * time.Minute).Unix() },
			wantErr: "token is not valid yet",
			wantIs:  []error{jwt.ErrTokenNotValidYet},
		},
		{
			name:    "iat far in the future",
			mutate:  func(m jwt.MapClaims) { m["iat"] = now.Add(24 * time.Hour).Unix() },
			wantErr: "token used before issued",
			wantIs:  []error{jwt.ErrTokenUsedBeforeIssued},
		},
		{
			name:    "wrong aud",
			mutate:  func(m jwt.MapClaims) { m["aud"] = "someone-else" },
			wantErr: "token has invalid audience",
			wantIs:  []error{jwt.ErrTokenInvalidAudience},
		},
		{
			name:    "missing aud",
			mutate:  func(m jwt.MapClaims) { delete(m, "aud") },
			wantErr: "aud claim is required",
			wantIs:  []error{jwt.ErrTokenRequiredClaimMissing},
		},
		{
			name:    "wrong iss",
			mutate:  func(m jwt.MapClaims) { m["iss"] = "https://evil.example.test" },
			wantErr: "token has invalid issuer",
			wantIs:  []error{jwt.ErrTokenInvalidIssuer},
		},
		{
			name:    "missing iss",
			mutate:  func(m jwt.MapClaims) { delete(m, "iss") },
			wantErr: "token is missing required claim",
		},
		{
			name:    "missing sub",
			mutate:  func(m jwt.MapClaims) { delete(m, "sub") },
			wantErr: "missing required claim: sub",
		},
		{
			name:    "empty sub",
			mutate:  func(m jwt.MapClaims) { m["sub"] = "" },
			wantErr: "missing required claim: sub",
		},
		{
			name:    "missing org_id",
			mutate:  func(m jwt.MapClaims) { delete(m, "org_id") },
			wantErr: "missing required claim: org_id",
		},
		{
			name:    "org_id not a string",
			mutate:  func(m jwt.MapClaims) { m["org_id"] = 7 },
			wantErr: "org_id",
			wantIs:  []error{jwt.ErrTokenMalformed},
		},
		{
			name:    "bad role",
			mutate:  func(m jwt.MapClaims) { m["role"] = "superuser" },
			wantErr: "invalid role",
		},
		{
			name:    "role is case-sensitive",
			mutate:  func(m jwt.MapClaims) { m["role"] = "Admin" },
			wantErr: "invalid role",
		},
		{
			name:    "missing role",
			mutate:  func(m jwt.MapClaims) { delete(m, "role") },
			wantErr: "missing required claim: role",
		},
		{
			name:    "missing name",
			mutate:  func(m jwt.MapClaims) { delete(m, "name") },
			wantErr: "missing required claim: name",
		},
		{
			name:    "blank name",
			mutate:  func(m jwt.MapClaims) { m["name"] = " \t\n" },
			wantErr: "missing required claim: name",
		},
		{
			name:    "name over 100 runes",
			mutate:  func(m jwt.MapClaims) { m["name"] = strings.Repeat("가", 101) },
			wantErr: "name is longer than 100",
		},
		{
			name:    "email over 254 chars",
			mutate:  func(m jwt.MapClaims) { m["email"] = strings.Repeat("a", 243) + "@example.com" },
			wantErr: "email is longer than 254",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := baseClaims()
			if tc.mutate != nil {
				tc.mutate(c)
			}
			var token string
			if tc.sign != nil {
				token = tc.sign(t, c)
			} else {
				token = mint(t, jwt.SigningMethodHS256, testSecret, "", c)
			}
			got, err := v.Verify(t.Context(), token)
			if tc.wantErr != "" {
				assertRejected(t, err, token, tc.wantErr, tc.wantIs...)
				if got != (Claims{}) {
					t.Errorf("claims on failure = %+v, want zero", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			tc.check(t, got)
		})
	}
}

func wantField(get func(Claims) string, want string) func(*testing.T, Claims) {
	return func(t *testing.T, c Claims) {
		t.Helper()
		if got := get(c); got != want {
			t.Errorf("got %q, want %q (claims %+v)", got, want, c)
		}
	}
}

func TestVerifyCustomLeeway(t *testing.T) {
	v := newVerifier(t, VerifierConfig{Secret: testSecret, Leeway: 5 * time.Minute})
	c := baseClaims()
	c["exp"] = time.Now().Add(-2 * time.Minute).Unix()
	token := mint(t, jwt.SigningMethodHS256, testSecret, "", c)
	if _, err := v.Verify(t.Context(), token); err != nil {
		t.Errorf("token expired 2m ago with 5m leeway: %v", err)
	}
	c["exp"] = time.Now().Add(-10 * time.Minute).Unix()
	token = mint(t, jwt.SigningMethodHS256, testSecret, "", c)
	_, err := v.Verify(t.Context(), token)
	assertRejected(t, err, token, "token is expired", jwt.ErrTokenExpired)
}

func TestVerifyMalformed(t *testing.T) {
	v := newVerifier(t, VerifierConfig{Secret: testSecret})
	good := mint(t, jwt.SigningMethodHS256, testSecret, "", baseClaims())
	tests := []struct {
		name, token, wantErr string
	}{
		{"empty", "", "empty token"},
		{"one segment", "abcdefghijkl", "malformed"},
		{"garbage segments", "!!!!!!!!.????????.########", "malformed"},
		{"oversized", good + strings.Repeat("A", 9000), "longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(t.Context(), tc.token)
			assertRejected(t, err, tc.token, tc.wantErr)
		})
	}
}

func TestVerifyAlgNone(t *testing.T) {
	testKeys(t)
	srv := newJWKSServer(t, jwkFor(t, "k1", "RS256", &rsaKey1.PublicKey))
	verifiers := map[string]*Verifier{
		"secret": newVerifier(t, VerifierConfig{Secret: testSecret}),
		"jwks":   newVerifier(t, VerifierConfig{JWKSURL: srv.URL}),
		"both":   newVerifier(t, VerifierConfig{Secret: testSecret, JWKSURL: srv.URL}),
	}
	signed := mint(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "k1", baseClaims())
	// Some attacks rely on case-insensitive alg matching, or keep a signature.
	header := b64([]byte(`{"alg":"NONE","typ":"JWT"}`))
	payload := strings.Split(signed, ".")[1]
	variants := map[string]string{
		"none":          signed,
		"NONE":          header + "." + payload + ".",
		"none with sig": signed + b64([]byte("signature")),
	}
	for vname, v := range verifiers {
		for tname, token := range variants {
			t.Run(vname+"/"+tname, func(t *testing.T) {
				_, err := v.Verify(t.Context(), token)
				if err == nil {
					t.Fatal("alg none token accepted")
				}
				assertRejected(t, err, token, "")
			})
		}
	}
}

// TestVerifyAlgConfusion covers the classic HS/RS confusion: an attacker who
// knows the RSA public key uses its PEM bytes as an HMAC secret.
func TestVerifyAlgConfusion(t *testing.T) {
	testKeys(t)
	srv := newJWKSServer(t, jwkFor(t, "k1", "RS256", &rsaKey1.PublicKey))

	pkix, err := x509.MarshalPKIXPublicKey(&rsaKey1.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemPKIX := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})
	pemPKCS1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey1.PublicKey)})

	tests := []struct {
		name    string
		cfg     VerifierConfig
		hmacKey []byte
		wantErr string
	}{
		{"jwks only, PKIX PEM", VerifierConfig{JWKSURL: srv.URL}, pemPKIX, "signing method HS256 is invalid"},
		{"jwks only, PKCS1 PEM", VerifierConfig{JWKSURL: srv.URL}, pemPKCS1, "signing method HS256 is invalid"},
		{"jwks only, DER", VerifierConfig{JWKSURL: srv.URL}, pkix, "signing method HS256 is invalid"},
		{"secret and jwks, PKIX PEM", VerifierConfig{Secret: testSecret, JWKSURL: srv.URL}, pemPKIX, "signature is invalid"},
		{"secret and jwks, PKCS1 PEM", VerifierConfig{Secret: testSecret, JWKSURL: srv.URL}, pemPKCS1, "signature is invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerifier(t, tc.cfg)
			token := mint(t, jwt.SigningMethodHS256, tc.hmacKey, "k1", baseClaims())
			_, err := v.Verify(t.Context(), token)
			assertRejected(t, err, token, tc.wantErr, jwt.ErrTokenSignatureInvalid)
		})
	}

	// The keyfunc must refuse on its own too, not only via WithValidMethods.
	t.Run("keyfunc refuses HS256 without secret", func(t *testing.T) {
		v := newVerifier(t, VerifierConfig{JWKSURL: srv.URL})
		tok := &jwt.Token{Method: jwt.SigningMethodHS256, Header: map[string]any{"alg": "HS256", "kid": "k1"}}
		key, err := v.keyFunc(t.Context())(tok)
		if err == nil || key != nil {
			t.Fatalf("keyFunc returned key %T, err %v; want refusal", key, err)
		}
		if !strings.Contains(err.Error(), "no shared secret") {
			t.Errorf("error %q does not explain the refusal", err)
		}
	})
	t.Run("keyfunc refuses RS256 without JWKS", func(t *testing.T) {
		v := newVerifier(t, VerifierConfig{Secret: testSecret})
		tok := &jwt.Token{Method: jwt.SigningMethodRS256, Header: map[string]any{"alg": "RS256"}}
		key, err := v.keyFunc(t.Context())(tok)
		if err == nil || key != nil {
			t.Fatalf("keyFunc returned key %T, err %v; want refusal", key, err)
		}
		if !strings.Contains(err.Error(), "no JWKS") {
			t.Errorf("error %q does not explain the refusal", err)
		}
	})
}

func TestVerifyJWKS(t *testing.T) {
	testKeys(t)
	srv := newJWKSServer(t,
		jwkFor(t, "rsa-1", "", &rsaKey1.PublicKey), // no alg: usable for RS* and PS*
		jwkFor(t, "rsa-2", "RS256", &rsaKey2.PublicKey),
		jwkFor(t, "ec-256", "ES256", &ecKey256.PublicKey),
		jwkFor(t, "ec-384", "ES384", &ecKey384.PublicKey),
		jwkFor(t, "ed", "EdDSA", edPub),
	)
	v := newVerifier(t, VerifierConfig{Secret: testSecret, JWKSURL: srv.URL})

	tests := []struct {
		name    string
		method  jwt.SigningMethod
		key     any
		kid     string
		wantErr string
	}{
		{"RS256", jwt.SigningMethodRS256, rsaKey2, "rsa-2", ""},
		{"RS384", jwt.SigningMethodRS384, rsaKey1, "rsa-1", ""},
		{"RS512", jwt.SigningMethodRS512, rsaKey1, "rsa-1", ""},
		{"PS256", jwt.SigningMethodPS256, rsaKey1, "rsa-1", ""},
		{"ES256", jwt.SigningMethodES256, ecKey256, "ec-256", ""},
		{"ES384", jwt.SigningMethodES384, ecKey384, "ec-384", ""},
		{"EdDSA", jwt.SigningMethodEdDSA, edPriv, "ed", ""},
		{"RS256 without kid tries every key", jwt.SigningMethodRS256, rsaKey2, "", ""},
		{"HS256 still works beside JWKS", jwt.SigningMethodHS256, testSecret, "", ""},

		{"PS384 not allowed", jwt.SigningMethodPS384, rsaKey1, "rsa-1", "signing method PS384 is invalid"},
		{"ES512 not allowed", jwt.SigningMethodES512, mustEC(t, elliptic.P521()), "ec-256", "signing method ES512 is invalid"},
		{"RS256 signed by a key not in the JWKS", jwt.SigningMethodRS256, rsaOther, "rsa-2", "signature is invalid"},
		{"RS256 without kid, unknown key", jwt.SigningMethodRS256, rsaOther, "", "signature is invalid"},
		{"JWK alg differs from token alg", jwt.SigningMethodPS256, rsaKey2, "rsa-2", "key/alg mismatch"},
		{"ES256 token naming an RSA kid", jwt.SigningMethodES256, ecKey256, "rsa-1", "signature is invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			token := mint(t, tc.method, tc.key, tc.kid, baseClaims())
			c, err := v.Verify(t.Context(), token)
			if tc.wantErr != "" {
				assertRejected(t, err, token, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.Subject != "user-42" || c.OrgID != "org-7" || c.Role != "teacher" || c.Locale != "" {
				t.Errorf("claims = %+v", c)
			}
		})
	}

	t.Run("claims are still checked on JWKS tokens", func(t *testing.T) {
		c := baseClaims()
		c["role"] = "root"
		token := mint(t, jwt.SigningMethodES256, ecKey256, "ec-256", c)
		_, err := v.Verify(t.Context(), token)
		assertRejected(t, err, token, "invalid role")
	})
	t.Run("kid of wrong type", func(t *testing.T) {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, baseClaims())
		tok.Header["kid"] = 42
		token, err := tok.SignedString(rsaKey2)
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(t.Context(), token)
		assertRejected(t, err, token, "kid header is not a string")
	})
}

func mustEC(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestVerifyJWKSRotation: the portal rotates its key; the first token with
// the new kid makes the Verifier refetch the JWKS instead of failing.
func TestVerifyJWKSRotation(t *testing.T) {
	testKeys(t)
	srv := newJWKSServer(t, jwkFor(t, "old", "RS256", &rsaKey1.PublicKey))
	v := newVerifier(t, VerifierConfig{JWKSURL: srv.URL})
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("JWKS fetched %d times at start, want 1", got)
	}

	oldToken := mint(t, jwt.SigningMethodRS256, rsaKey1, "old", baseClaims())
	if _, err := v.Verify(t.Context(), oldToken); err != nil {
		t.Fatalf("old key before rotation: %v", err)
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("known kid caused a JWKS fetch (%d fetches)", got)
	}

	srv.set(t, jwkFor(t, "new", "ES256", &ecKey256.PublicKey))
	newToken := mint(t, jwt.SigningMethodES256, ecKey256, "new", baseClaims())
	c, err := v.Verify(t.Context(), newToken)
	if err != nil {
		t.Fatalf("new kid after rotation: %v", err)
	}
	if c.Subject != "user-42" {
		t.Errorf("claims = %+v", c)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Errorf("JWKS fetched %d times, want 2 (start + one refresh)", got)
	}

	// The refresh replaced the key set, so the retired key is no longer trusted.
	_, err = v.Verify(t.Context(), oldToken)
	assertRejected(t, err, oldToken, "no usable JWKS key")
}

// TestVerifyJWKSUnknownKID: a kid the portal never publishes fails, and
// repeating it does not hammer the portal with refreshes.
func TestVerifyJWKSUnknownKID(t *testing.T) {
	testKeys(t)
	srv := newJWKSServer(t, jwkFor(t, "k1", "RS256", &rsaKey1.PublicKey))
	v := newVerifier(t, VerifierConfig{JWKSURL: srv.URL})

	token := mint(t, jwt.SigningMethodRS256, rsaOther, "ghost", baseClaims())
	_, err := v.Verify(t.Context(), token)
	assertRejected(t, err, token, "no JWKS key matches the token's kid", jwt.ErrTokenUnverifiable)
	if strings.Contains(err.Error(), "ghost") {
		t.Errorf("error echoes the attacker-chosen kid: %q", err)
	}
	if got := srv.hits.Load(); got != 2 {
		t.Errorf("JWKS fetched %d times, want 2 (start + one refresh for the unknown kid)", got)
	}

	for i := range 5 {
		start := time.Now()
		token := mint(t, jwt.SigningMethodRS256, rsaOther, "ghost-"+string(rune('a'+i)), baseClaims())
		_, err := v.Verify(t.Context(), token)
		assertRejected(t, err, token, "no usable JWKS key")
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("rate-limited unknown kid took %v; Verify should not wait for the limiter", d)
		}
	}
	if got := srv.hits.Load(); got != 2 {
		t.Errorf("JWKS fetched %d times after repeated unknown kids, want still 2", got)
	}

	// Known keys keep working while unknown kids are rate limited.
	good := mint(t, jwt.SigningMethodRS256, rsaKey1, "k1", baseClaims())
	if _, err := v.Verify(t.Context(), good); err != nil {
		t.Errorf("known kid while rate limited: %v", err)
	}
}

func TestVerifyJWKSRefreshHonoursCallerContext(t *testing.T) {
	testKeys(t)
	srv := newJWKSServer(t, jwkFor(t, "k1", "RS256", &rsaKey1.PublicKey))
	v := newVerifier(t, VerifierConfig{JWKSURL: srv.URL})

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	token := mint(t, jwt.SigningMethodRS256, rsaOther, "ghost", baseClaims())
	_, err := v.Verify(ctx, token)
	assertRejected(t, err, token, "aborted", context.Canceled)
}

// TestVerifyConcurrent is mostly for -race: a Verifier is shared by all
// request handlers, including during an unknown-kid refresh.
func TestVerifyConcurrent(t *testing.T) {
	testKeys(t)
	srv := newJWKSServer(t, jwkFor(t, "k1", "RS256", &rsaKey1.PublicKey))
	v := newVerifier(t, VerifierConfig{Secret: testSecret, JWKSURL: srv.URL})
	srv.set(t, jwkFor(t, "k1", "RS256", &rsaKey1.PublicKey), jwkFor(t, "k2", "ES256", &ecKey256.PublicKey))

	tokens := []string{
		mint(t, jwt.SigningMethodHS256, testSecret, "", baseClaims()),
		mint(t, jwt.SigningMethodRS256, rsaKey1, "k1", baseClaims()),
		mint(t, jwt.SigningMethodES256, ecKey256, "k2", baseClaims()),
	}
	// Learn k2 first: callers racing the one allowed refresh would otherwise
	// be refused by the rate limiter, which is correct but not what this tests.
	if _, err := v.Verify(t.Context(), tokens[2]); err != nil {
		t.Fatalf("k2 after rotation: %v", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(tokens))
	for range 8 {
		for _, tok := range tokens {
			wg.Go(func() {
				if _, err := v.Verify(t.Context(), tok); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Verify: %v", err)
	}
}
