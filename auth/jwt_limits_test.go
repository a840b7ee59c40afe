package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// rawHS256 signs a payload exactly as written, so a test can send JSON that no encoder
// would make (duplicate keys, strings for numbers).
func rawHS256(t *testing.T, payload string) string {
	t.Helper()
	signing := b64([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + b64([]byte(payload))
	mac := hmac.New(sha256.New, testSecret)
	mac.Write([]byte(signing))
	return signing + "." + b64(mac.Sum(nil))
}

// payloadOf answers baseClaims as JSON with its last "}" cut off, for appending keys.
func payloadOf(t *testing.T, mutate func(jwt.MapClaims)) string {
	t.Helper()
	c := baseClaims()
	if mutate != nil {
		mutate(c)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(string(b), "}")
}

// TestVerifyLifetimeAndShape: tokens that live longer than the configured maximum, carry
// exp as a string, or repeat a claim are refused; tokens within the rules pass.
func TestVerifyLifetimeAndShape(t *testing.T) {
	v := newVerifier(t, VerifierConfig{Secret: testSecret})
	now := time.Now()
	tests := []struct {
		name    string
		token   string
		wantErr string // "" means valid
	}{
		{"a day exactly", mint(t, jwt.SigningMethodHS256, testSecret, "", withClaims(func(c jwt.MapClaims) { c["exp"] = now.Add(24 * time.Hour).Unix() })), ""},
		{"no iat, an hour left", mint(t, jwt.SigningMethodHS256, testSecret, "", withClaims(func(c jwt.MapClaims) { delete(c, "iat") })), ""},
		{"25 hours", mint(t, jwt.SigningMethodHS256, testSecret, "", withClaims(func(c jwt.MapClaims) { c["exp"] = now.Add(25 * time.Hour).Unix() })), "lifetime"},
		{"issued long ago, ten years", mint(t, jwt.SigningMethodHS256, testSecret, "", withClaims(func(c jwt.MapClaims) {
			c["iat"] = now.Add(-time.Hour).Unix()
			c["exp"] = now.Add(10 * 365 * 24 * time.Hour).Unix()
		})), "lifetime"},
		{"no iat, 25 hours left", mint(t, jwt.SigningMethodHS256, testSecret, "", withClaims(func(c jwt.MapClaims) {
			delete(c, "iat")
			c["exp"] = now.Add(25 * time.Hour).Unix()
		})), "lifetime"},
		{"exp as a numeric string", rawHS256(t, payloadOf(t, func(c jwt.MapClaims) { delete(c, "exp") })+`,"exp":"9999999999"}`), "exp"},
		{"exp as a string within a day", rawHS256(t, payloadOf(t, func(c jwt.MapClaims) { delete(c, "exp") })+fmt.Sprintf(`,"exp":"%d"}`, now.Add(time.Hour).Unix())), "exp"},
		{"iat as a string", rawHS256(t, payloadOf(t, func(c jwt.MapClaims) { delete(c, "iat") })+fmt.Sprintf(`,"iat":"%d"}`, now.Unix())), "iat"},
		{"duplicate sub", rawHS256(t, payloadOf(t, nil)+`,"sub":"someone-else"}`), "duplicate"},
		{"duplicate org_id", rawHS256(t, payloadOf(t, nil)+`,"org_id":"org-8"}`), "duplicate"},
		{"duplicate key inside an object", rawHS256(t, payloadOf(t, nil)+`,"extra":{"a":1,"a":2}}`), "duplicate"},
		// encoding/json fills a claim from a key in any case, Unicode folds included.
		{"duplicate sub in capitals", rawHS256(t, payloadOf(t, nil)+`,"SUB":"someone-else"}`), "duplicate"},
		{"duplicate org_id in mixed case", rawHS256(t, payloadOf(t, nil)+`,"Org_ID":"org-8"}`), "duplicate"},
		{"duplicate sub with a long s", rawHS256(t, payloadOf(t, nil)+`,"ſub":"someone-else"}`), "duplicate"},
		{"exp in capitals as a string", rawHS256(t, payloadOf(t, func(c jwt.MapClaims) { delete(c, "exp") })+`,"EXP":"9999999999"}`), "exp"},
		{"payload not an object", rawHS256(t, `["sub"]`), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(t.Context(), tt.token)
			switch {
			case tt.name == "payload not an object":
				if err == nil {
					t.Fatalf("Verify accepted a payload that is not an object: %+v", c)
				}
			case tt.wantErr == "":
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
			default:
				assertRejected(t, err, tt.token, tt.wantErr)
			}
		})
	}

	short := newVerifier(t, VerifierConfig{Secret: testSecret, MaxLifetime: 30 * time.Minute})
	if _, err := short.Verify(t.Context(), mint(t, jwt.SigningMethodHS256, testSecret, "", baseClaims())); err == nil {
		t.Error("an hour-long token passed a 30-minute maximum")
	}
}

func withClaims(mutate func(jwt.MapClaims)) jwt.MapClaims {
	c := baseClaims()
	mutate(c)
	return c
}
