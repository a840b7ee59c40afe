package main

import (
	"net/http"
	"strings"
	"testing"
)

func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestLoadConfig(t *testing.T) {
	t.Run("fresh machine: embedded database, dev mode, dev secret", func(t *testing.T) {
		c, err := loadConfig(envOf(nil))
		if err != nil {
			t.Fatal(err)
		}
		if !c.Embedded() || !c.Dev || len(c.JWTSecret) == 0 || c.Addr != ":8001" || c.CookieSameSite != http.SameSiteLaxMode ||
			c.MaxStreamsPerUser != 10 || c.MaxSessionsPerUser != 20 {
			t.Errorf("config = %+v", c)
		}
	})
	t.Run("real database: dev off, a secret required", func(t *testing.T) {
		_, err := loadConfig(envOf(map[string]string{"DATABASE_URL": "postgres://db/messenger"}))
		if err == nil || !strings.Contains(err.Error(), "MESSENGER_JWT_SECRET or MESSENGER_JWKS_URL") {
			t.Errorf("err = %v, want a message naming the missing secret", err)
		}
	})
	t.Run("portal origins make the cookie cross-site", func(t *testing.T) {
		c, err := loadConfig(envOf(map[string]string{
			"DATABASE_URL": "postgres://db/messenger", "MESSENGER_JWT_SECRET": strings.Repeat("s", 32),
			"MESSENGER_PORTAL_ORIGINS": "https://portal.example/, https://www.portal.example",
		}))
		if err != nil {
			t.Fatal(err)
		}
		if c.Dev || c.CookieSameSite != http.SameSiteNoneMode || len(c.PortalOrigins) != 2 || c.PortalOrigins[0] != "https://portal.example" {
			t.Errorf("config = %+v", c)
		}
	})
	t.Run("per-user caps", func(t *testing.T) {
		c, err := loadConfig(envOf(map[string]string{"MESSENGER_MAX_STREAMS_PER_USER": "3", "MESSENGER_MAX_SESSIONS_PER_USER": "5"}))
		if err != nil || c.MaxStreamsPerUser != 3 || c.MaxSessionsPerUser != 5 {
			t.Errorf("config = %+v, %v", c, err)
		}
		for _, bad := range []string{"0", "-1", "many", "1001"} {
			_, err := loadConfig(envOf(map[string]string{"MESSENGER_MAX_STREAMS_PER_USER": bad, "MESSENGER_MAX_SESSIONS_PER_USER": bad}))
			for _, want := range []string{"MESSENGER_MAX_STREAMS_PER_USER", "MESSENGER_MAX_SESSIONS_PER_USER"} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("%q: err = %v, want it to name %s", bad, err, want)
				}
			}
		}
	})
	t.Run("every bad value is named", func(t *testing.T) {
		_, err := loadConfig(envOf(map[string]string{
			"MESSENGER_DEV": "maybe", "MESSENGER_PORTAL_ORIGINS": "portal.example/path",
			"MESSENGER_COOKIE_SAMESITE": "sometimes", "MESSENGER_LOG_LEVEL": "loud", "MESSENGER_JWT_SECRET": "short",
		}))
		for _, want := range []string{"MESSENGER_DEV", "MESSENGER_PORTAL_ORIGINS", "MESSENGER_COOKIE_SAMESITE", "MESSENGER_LOG_LEVEL", "at least 32 bytes"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v, want it to name %s", err, want)
			}
		}
	})
}
