// Package auth verifies the JWTs that the portal issues for its users, and holds the
// session, CSRF and request-context pieces of signing in.
package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/dreamseed/messenger"
)

// Claims is what the portal says about a user in a verified token.
type Claims struct {
	Issuer    string
	Subject   string // portal user id
	Name      string
	Email     string
	OrgID     string
	ZoneID    string // may be empty
	Role      string // admin|teacher|student|parent|staff
	Locale    string // ko|en; "" when the token names none (pages then follow the browser)
	ExpiresAt time.Time
	IssuedAt  time.Time // zero when the token has no iat
}

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	Secret   []byte        // HS256 key; may be nil when JWKSURL is set
	JWKSURL  string        // JWKS for RS256/RS384/RS512/PS256/ES256/ES384/EdDSA; may be empty when Secret is set
	Issuer   string        // required iss
	Audience string        // required aud
	Leeway   time.Duration // clock skew allowance; 0 -> 30s
	// MaxLifetime is the longest a token may live: exp - iat, or exp - now without iat;
	// 0 -> 24h.
	MaxLifetime time.Duration
	HTTPClient  *http.Client // for JWKS; nil -> a client with a 10 s timeout
}

// ErrInvalidToken is wrapped by every verification failure (errors.Is works).
var ErrInvalidToken = errors.New("invalid token")

// Verifier checks portal-issued JWTs against a shared secret, a JWKS, or both;
// it is safe for concurrent use.
type Verifier struct {
	secret   []byte
	jwks     keyfunc.Keyfunc // nil when no JWKSURL is configured
	issuer   string
	audience string
	leeway   time.Duration
	lifetime time.Duration
}

const (
	defaultLeeway = 30 * time.Second

	// DefaultMaxLifetime is the longest a token may live when VerifierConfig names no
	// maximum: a stolen token is worth a day at most.
	DefaultMaxLifetime = 24 * time.Hour

	// maxPayloadDepth bounds the nesting the duplicate-key walk follows.
	maxPayloadDepth = 32

	// jwksHTTPTimeout bounds every JWKS fetch: the first load, the periodic
	// refresh and a refresh triggered by an unknown kid inside Verify (which
	// would otherwise hold up a request for as long as the portal stalls).
	jwksHTTPTimeout = 10 * time.Second

	// jwksRefreshInterval is short enough that a key the portal revokes stops
	// being accepted within minutes, and long enough to be no load on it.
	jwksRefreshInterval = 15 * time.Minute

	// jwksUnknownKIDEvery limits refreshes caused by unknown kids, so tokens
	// with made-up kids cannot turn us into a load generator against the
	// portal, while a genuine key rotation is still picked up quickly.
	jwksUnknownKIDEvery = time.Minute

	// maxJWKSBytes caps a JWKS response; a real one is a few KiB, and the
	// body is decoded whole, so an unbounded one could exhaust memory.
	maxJWKSBytes = 1 << 20

	// maxTokenBytes rejects absurd inputs before any base64/JSON work; portal
	// tokens are well under 2 KiB.
	maxTokenBytes = 8 << 10

	// minSecretBytes follows RFC 7518 §3.2: an HS256 key must be at least as
	// long as the hash output, or it can be brute-forced offline.
	minSecretBytes = 32

	maxNameRunes  = 100
	maxEmailBytes = 254 // RFC 5321 path limit
)

// hmacAlgs may only be verified with the shared secret, and asymmetricAlgs only
// with a JWKS key: keeping the two apart is what stops an attacker from
// signing an HS256 token with a public key as the HMAC secret.
var (
	hmacAlgs       = []string{"HS256"}
	asymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"}
	validRoles     = map[string]bool{"admin": true, "teacher": true, "student": true, "parent": true, "staff": true}
	validLocales   = map[string]bool{"ko": true, "en": true}
)

// NewVerifier checks cfg and, when a JWKS URL is set, loads the JWKS before
// returning so that a misconfigured URL fails at startup rather than on the
// first login; ctx bounds the JWKS refresh goroutine.
func NewVerifier(ctx context.Context, cfg VerifierConfig) (*Verifier, error) {
	if len(cfg.Secret) == 0 && cfg.JWKSURL == "" {
		return nil, errors.New("auth: VerifierConfig needs a Secret or a JWKSURL")
	}
	if len(cfg.Secret) > 0 && len(cfg.Secret) < minSecretBytes {
		return nil, fmt.Errorf("auth: HS256 Secret must be at least %d bytes (RFC 7518 §3.2), got %d", minSecretBytes, len(cfg.Secret))
	}
	if cfg.Issuer == "" {
		return nil, errors.New("auth: VerifierConfig.Issuer is required")
	}
	if cfg.Audience == "" {
		return nil, errors.New("auth: VerifierConfig.Audience is required")
	}
	if cfg.Leeway < 0 {
		return nil, fmt.Errorf("auth: VerifierConfig.Leeway must not be negative, got %v", cfg.Leeway)
	}
	if cfg.MaxLifetime < 0 {
		return nil, fmt.Errorf("auth: VerifierConfig.MaxLifetime must not be negative, got %v", cfg.MaxLifetime)
	}
	v := &Verifier{
		issuer:   cfg.Issuer,
		audience: cfg.Audience,
		leeway:   cfg.Leeway,
		lifetime: cfg.MaxLifetime,
	}
	if v.leeway == 0 {
		v.leeway = defaultLeeway
	}
	if v.lifetime == 0 {
		v.lifetime = DefaultMaxLifetime
	}
	if len(cfg.Secret) > 0 {
		// Copy so a caller reusing its buffer cannot change the key under us.
		v.secret = append([]byte(nil), cfg.Secret...)
	}
	if cfg.JWKSURL != "" {
		jctx, cancel := context.WithCancel(ctx)
		kf, err := newJWKS(jctx, cfg.JWKSURL, cfg.HTTPClient)
		if err != nil {
			// The library starts its refresh goroutine before the first
			// fetch, so it must be stopped here or it outlives the failure.
			cancel()
			return nil, fmt.Errorf("auth: cannot load JWKS from %s: %w", cfg.JWKSURL, err)
		}
		// On success the refresh goroutine is meant to live as long as ctx,
		// and jctx is released together with it.
		_ = cancel
		v.jwks = kf
	}
	return v, nil
}

func newJWKS(ctx context.Context, url string, client *http.Client) (keyfunc.Keyfunc, error) {
	if client == nil {
		client = &http.Client{Timeout: jwksHTTPTimeout}
	}
	// Shallow copy: the caller's client stays untouched, ours gets a body cap.
	c := *client
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = limitedBodyTransport{base: base, limit: maxJWKSBytes}

	failFirst := false
	return keyfunc.NewDefaultOverrideCtx(ctx, []string{url}, keyfunc.Override{
		Client:                    &c,
		HTTPTimeout:               jwksHTTPTimeout,
		NoErrorReturnFirstHTTPReq: &failFirst,
		// Also bounds the HTTP request of an unknown-kid refresh, which runs
		// on Verify's ctx and would otherwise not be time-limited by us.
		RateLimitWaitMax:  jwksHTTPTimeout,
		RefreshInterval:   jwksRefreshInterval,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(jwksUnknownKIDEvery), 1),
	})
}

// limitedBodyTransport truncates response bodies so a broken or hostile JWKS
// endpoint cannot make us buffer an unbounded document.
type limitedBodyTransport struct {
	base  http.RoundTripper
	limit int64
}

func (t limitedBodyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = limitedBody{Reader: io.LimitReader(resp.Body, t.limit), Closer: resp.Body}
	return resp, nil
}

type limitedBody struct {
	io.Reader
	io.Closer
}

// portalClaims mirrors the token's JSON; it is internal so callers only ever
// see the checked and normalised Claims.
type portalClaims struct {
	jwt.RegisteredClaims
	Name   string `json:"name"`
	Email  string `json:"email"`
	OrgID  string `json:"org_id"`
	ZoneID string `json:"zone_id"`
	Role   string `json:"role"`
	Locale string `json:"locale"`
}

// Verify checks token's signature and claims and returns what it says about
// the user; every failure wraps ErrInvalidToken and never contains the token.
func (v *Verifier) Verify(ctx context.Context, token string) (Claims, error) {
	if token == "" {
		return Claims{}, fmt.Errorf("%w: empty token", ErrInvalidToken)
	}
	if len(token) > maxTokenBytes {
		return Claims{}, fmt.Errorf("%w: token longer than %d bytes", ErrInvalidToken, maxTokenBytes)
	}

	// The payload is read by us first: claims are trusted only once it is one object
	// without repeated keys and with numeric times.
	if err := checkPayload(token); err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}

	var pc portalClaims
	parser := jwt.NewParser(
		jwt.WithValidMethods(v.validMethods()),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(v.issuer),
		jwt.WithAudience(v.audience),
		jwt.WithLeeway(v.leeway),
	)
	if _, err := parser.ParseWithClaims(token, &pc, v.keyFunc(ctx)); err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if err := v.checkLifetime(&pc, time.Now()); err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	c, err := pc.toClaims()
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	return c, nil
}

// checkLifetime refuses a token that lives longer than the maximum: from iat to exp, or
// from now to exp when it has no iat.
func (v *Verifier) checkLifetime(pc *portalClaims, now time.Time) error {
	if pc.ExpiresAt == nil {
		return errors.New("token is missing required claim: exp")
	}
	from := now
	if pc.IssuedAt != nil {
		from = pc.IssuedAt.Time
	}
	if pc.ExpiresAt.Sub(from) > v.lifetime {
		return fmt.Errorf("token lifetime is longer than the maximum of %s", v.lifetime)
	}
	return nil
}

// timeClaims must be JSON numbers: golang-jwt also takes a string of digits. Keyed by
// foldKey, as every claim name is compared.
var timeClaims = map[string]bool{foldKey("exp"): true, foldKey("iat"): true, foldKey("nbf"): true}

// foldKey is name in one canonical case: encoding/json (which golang-jwt decodes claims
// with) matches a key to a field regardless of case, Unicode folds included ("SUB" and
// "ſub" both fill sub), so keys that fold alike are the same claim. Each rune becomes the
// smallest of its simple-fold orbit.
func foldKey(name string) string {
	var b strings.Builder
	for _, r := range name {
		low := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			low = min(low, f)
		}
		b.WriteRune(low)
	}
	return b.String()
}

// checkPayload walks the token's payload with a JSON tokenizer: it must be one object,
// no object in it may repeat a key (decoders disagree on which copy wins, so a signed
// token could mean two things), and exp, iat and nbf must be numbers. Errors never
// quote the payload.
func checkPayload(token string) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return errors.New("token is malformed")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return errors.New("token is malformed: payload is not base64url")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return errors.New("token is malformed: payload is not a JSON object")
	}
	seen := make(map[string]bool)
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return errors.New("token is malformed: payload is not valid JSON")
		}
		name, _ := key.(string)
		name = foldKey(name)
		if seen[name] {
			return errors.New("token is malformed: payload has a duplicate key")
		}
		seen[name] = true
		first, err := walkJSON(dec, 1)
		if err != nil {
			return err
		}
		if _, isNumber := first.(json.Number); timeClaims[name] && !isNumber {
			return fmt.Errorf("token is malformed: claim %s is not a number", strings.ToLower(name)) // exp, iat or nbf
		}
	}
	if _, err := dec.Token(); err != nil {
		return errors.New("token is malformed: payload is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("token is malformed: payload has data after the JSON object")
	}
	return nil
}

// walkJSON reads one JSON value from dec, refusing repeated keys in any object inside it,
// and answers its first token.
func walkJSON(dec *json.Decoder, depth int) (json.Token, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, errors.New("token is malformed: payload is not valid JSON")
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	if depth > maxPayloadDepth {
		return nil, errors.New("token is malformed: payload is nested too deeply")
	}
	seen := make(map[string]bool)
	for dec.More() {
		if delim == '{' {
			key, err := dec.Token()
			if err != nil {
				return nil, errors.New("token is malformed: payload is not valid JSON")
			}
			name, _ := key.(string)
			name = foldKey(name)
			if seen[name] {
				return nil, errors.New("token is malformed: payload has a duplicate key")
			}
			seen[name] = true
		}
		if _, err := walkJSON(dec, depth+1); err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, errors.New("token is malformed: payload is not valid JSON")
	}
	return tok, nil
}

// validMethods lists only the algorithms this Verifier has a key for, so a
// token whose alg we cannot check is refused before any key lookup.
func (v *Verifier) validMethods() []string {
	var m []string
	if v.secret != nil {
		m = append(m, hmacAlgs...)
	}
	if v.jwks != nil {
		m = append(m, asymmetricAlgs...)
	}
	return m
}

// keyFunc picks the key by the token's alg family; it re-checks the allowlist
// itself rather than trusting WithValidMethods alone, because the separation
// of HMAC and JWKS keys is the guard against algorithm confusion.
func (v *Verifier) keyFunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		alg := t.Method.Alg()
		switch {
		case contains(hmacAlgs, alg):
			if v.secret == nil {
				return nil, fmt.Errorf("%s token but no shared secret is configured", alg)
			}
			return v.secret, nil
		case contains(asymmetricAlgs, alg):
			if v.jwks == nil {
				return nil, fmt.Errorf("%s token but no JWKS is configured", alg)
			}
			if kid, ok := t.Header["kid"]; ok {
				if _, ok := kid.(string); !ok {
					return nil, errors.New("kid header is not a string")
				}
			}
			key, err := v.jwks.KeyfuncCtx(ctx)(t)
			if err != nil {
				return nil, jwksError(ctx, err)
			}
			return key, nil
		default:
			return nil, fmt.Errorf("signing method %s is not allowed", alg)
		}
	}
}

// jwksError replaces keyfunc's errors, which quote the attacker-chosen kid
// and span several lines, with a short fixed description of what went wrong.
func jwksError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, jwkset.ErrKeyNotFound):
		return errors.New("no JWKS key matches the token's kid")
	case ctx.Err() != nil:
		return fmt.Errorf("JWKS key lookup aborted: %w", ctx.Err())
	default:
		// Most often an unknown kid while a refresh is rate limited or the
		// portal is unreachable; otherwise a JWK whose alg differs from the token's.
		return errors.New("no usable JWKS key for the token (unknown kid and JWKS refresh unavailable, or key/alg mismatch)")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// toClaims enforces the portal-specific rules that jwt's validator does not
// know about, and normalises what is lenient by design (name spaces, locale).
func (pc *portalClaims) toClaims() (Claims, error) {
	if pc.Subject == "" {
		return Claims{}, errors.New("token is missing required claim: sub")
	}
	if pc.OrgID == "" {
		return Claims{}, errors.New("token is missing required claim: org_id")
	}
	if !validRoles[pc.Role] {
		if pc.Role == "" {
			return Claims{}, errors.New("token is missing required claim: role")
		}
		return Claims{}, errors.New("token has invalid role (want admin, teacher, student, parent or staff)")
	}
	// Ids with control characters are no portal's: the token is refused. A name is shown,
	// and the portal is trusted with it: invisible and direction-changing characters are
	// cleaned out of it rather than locking the person out.
	for _, id := range []string{pc.Subject, pc.OrgID, pc.ZoneID, pc.Email} {
		if !messenger.ValidID(id) {
			return Claims{}, errors.New("token has control characters in sub, org_id, zone_id or email")
		}
	}
	name := messenger.CleanName(pc.Name)
	if name == "" {
		return Claims{}, errors.New("token is missing required claim: name")
	}
	if utf8.RuneCountInString(name) > maxNameRunes {
		return Claims{}, fmt.Errorf("token name is longer than %d characters", maxNameRunes)
	}
	if len(pc.Email) > maxEmailBytes {
		return Claims{}, fmt.Errorf("token email is longer than %d characters", maxEmailBytes)
	}
	locale := pc.Locale
	// An unknown locale is a display preference gone wrong, not a forgery,
	// so it is dropped (the page then follows the browser) instead of locking the user out.
	if !validLocales[locale] {
		locale = ""
	}
	c := Claims{
		Issuer:  pc.Issuer,
		Subject: pc.Subject,
		Name:    name,
		Email:   pc.Email,
		OrgID:   pc.OrgID,
		ZoneID:  pc.ZoneID,
		Role:    pc.Role,
		Locale:  locale,
	}
	if pc.ExpiresAt != nil {
		c.ExpiresAt = pc.ExpiresAt.Time
	}
	if pc.IssuedAt != nil {
		c.IssuedAt = pc.IssuedAt.Time
	}
	return c, nil
}
