package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dreamseed/messenger"
)

// checkClaims holds what every verified token promises the rest of the messenger: the
// ids are there and free of control characters, the role and locale are ones it knows,
// the name is clean (one line, nothing invisible or direction-changing, within length).
func checkClaims(t *testing.T, c Claims) {
	t.Helper()
	switch {
	case c.Subject == "" || c.OrgID == "":
		t.Fatalf("claims without sub or org_id: %+v", c)
	case !messenger.ValidID(c.Subject) || !messenger.ValidID(c.OrgID) || !messenger.ValidID(c.ZoneID) || !messenger.ValidID(c.Email):
		t.Fatalf("claims with control characters in an id: %+v", c)
	case !validRoles[c.Role]:
		t.Fatalf("claims with role %q", c.Role)
	case c.Locale != "" && !validLocales[c.Locale]:
		t.Fatalf("claims with locale %q", c.Locale)
	case c.Name == "" || messenger.CleanName(c.Name) != c.Name || utf8.RuneCountInString(c.Name) > maxNameRunes:
		t.Fatalf("claims with name %q", c.Name)
	case strings.IndexFunc(c.Name, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) }) >= 0:
		t.Fatalf("claims with controls in name %q", c.Name)
	case len(c.Email) > maxEmailBytes:
		t.Fatalf("claims with a %d-byte email", len(c.Email))
	}
}

// FuzzClaims signs tokens whose portal claims are arbitrary strings: Verify accepts only
// claims that keep checkClaims' promises, and refuses the rest with ErrInvalidToken.
func FuzzClaims(f *testing.F) {
	f.Add("user-42", "김철수", "cs.kim@example.test", "org-7", "zone-3", "teacher", "ko")
	f.Add("u\x00", "\u202e김\u202c", "", "org", "", "admin", "en")
	f.Add("u", "\t\r\n", "e", "o", "z", "student", "fr")
	f.Add("u", "Zoë"+strings.Repeat("\u0308", 20), "e", "o\n", "z", "parent", "")
	f.Add("", "x", "", "", "", "", "")
	v, err := NewVerifier(context.Background(), VerifierConfig{Secret: testSecret, Issuer: testIssuer, Audience: testAudience})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, sub, name, email, org, zone, role, locale string) {
		claims := baseClaims()
		for k, s := range map[string]string{"sub": sub, "name": name, "email": email, "org_id": org, "zone_id": zone, "role": role, "locale": locale} {
			claims[k] = s
		}
		token := mint(t, jwt.SigningMethodHS256, testSecret, "", claims)
		c, err := v.Verify(context.Background(), token)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify: %v does not wrap ErrInvalidToken", err)
			}
			return
		}
		checkClaims(t, c)
		// JSON carries only UTF-8: other bytes arrive as U+FFFD.
		valid := utf8.ValidString(sub) && utf8.ValidString(org) && utf8.ValidString(zone)
		if valid && (c.Subject != sub || c.OrgID != org || c.ZoneID != zone || c.Role != role) {
			t.Fatalf("Verify changed an id: %+v", c)
		}
	})
}

// FuzzVerifyPayload signs arbitrary payloads ("@now" and "@exp" stand for the time now
// and an hour later): Verify never panics, refuses with ErrInvalidToken and without the
// token in its message, and what it accepts keeps checkClaims' promises.
func FuzzVerifyPayload(f *testing.F) {
	for _, s := range []string{
		`{"iss":"https://portal.example.test","aud":"messenger","sub":"user-42","name":"김철수","org_id":"org-7","zone_id":"zone-3","role":"teacher","iat":@now,"exp":@exp}`,
		`{"iss":"https://portal.example.test","aud":["messenger","x"],"sub":"u","name":" a\u202eb ","org_id":"o","role":"admin","locale":"en","iat":@now,"exp":@exp}`,
		`{"iss":"https://portal.example.test","aud":"messenger","sub":"u","name":"n","org_id":"o","role":"staff","exp":"@exp"}`,
		`{"iss":"https://portal.example.test","aud":"messenger","sub":"u","sub":"v","name":"n","org_id":"o","role":"staff","exp":@exp}`,
		`{"iss":"https://portal.example.test","aud":"messenger","sub":"u\u0000","name":"n","org_id":"o","role":"staff","exp":@exp.5}`,
		`[]`, `null`, `{"exp":1e400}`,
	} {
		f.Add([]byte(s))
	}
	v, err := NewVerifier(context.Background(), VerifierConfig{Secret: testSecret, Issuer: testIssuer, Audience: testAudience})
	if err != nil {
		f.Fatal(err)
	}
	const header = `{"alg":"HS256","typ":"JWT"}`
	f.Fuzz(func(t *testing.T, payload []byte) {
		now := time.Now().Unix()
		p := strings.NewReplacer("@now", strconv.FormatInt(now, 10), "@exp", strconv.FormatInt(now+3600, 10)).Replace(string(payload))
		signed := b64([]byte(header)) + "." + b64([]byte(p))
		mac := hmac.New(sha256.New, testSecret)
		mac.Write([]byte(signed))
		token := signed + "." + b64(mac.Sum(nil))
		c, err := v.Verify(context.Background(), token)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) || strings.Contains(err.Error(), token) {
				t.Fatalf("Verify: %v", err)
			}
			return
		}
		checkClaims(t, c)
	})
}
