package auth

import (
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DevSecret is the HS256 key used when no MESSENGER_JWT_SECRET is configured in dev mode.
// It is public by design: it only ever signs in demo users of a local database.
const DevSecret = "dreamseed-messenger-dev-secret-not-for-production"

// MintToken signs a short-lived HS256 portal token for c, as the portal would. The dev
// login and tests use it; production tokens come from the portal.
func MintToken(secret []byte, audience string, c Claims, ttl time.Duration) (string, error) {
	now := time.Now()
	claims := jwt.MapClaims{
		"iss":     c.Issuer,
		"aud":     audience,
		"sub":     c.Subject,
		"iat":     now.Unix(),
		"exp":     now.Add(ttl).Unix(),
		"name":    c.Name,
		"email":   c.Email,
		"org_id":  c.OrgID,
		"zone_id": c.ZoneID,
		"role":    c.Role,
	}
	if c.Locale != "" {
		claims["locale"] = c.Locale
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
}
