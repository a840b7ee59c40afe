package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestConfigurationDocumented: docs/configuration.md names every variable the messenger
// reads, and no variable it does not read. A variable per portal role is documented once,
// as MESSENGER_QUIET_HOURS_<ROLE>.
func TestConfigurationDocumented(t *testing.T) {
	raw, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("`((?:MESSENGER_|DATABASE_URL|REDIS_URL)[A-Z0-9_<>]*)`").FindAllStringSubmatch(string(raw), -1) {
		documented[m[1]] = true
	}
	if len(documented) < 40 {
		t.Fatalf("docs/configuration.md names %d variables: the test no longer finds them", len(documented))
	}
	read := map[string]bool{}
	for _, env := range []map[string]string{
		nil, // development: the embedded database, the memory engine
		{"DATABASE_URL": "postgres://db/messenger", "REDIS_URL": "redis://redis:6379/0", "MESSENGER_JWT_SECRET": strings.Repeat("s", 32),
			"MESSENGER_SMTP_URL": "smtp://mail.example:587", "MESSENGER_MAIL_FROM": "DreamSeed <no-reply@school.example>"},
	} {
		loadConfig(func(k string) string {
			read[k] = true
			return env[k]
		})
	}
	name := func(k string) string {
		if strings.HasPrefix(k, "MESSENGER_QUIET_HOURS_") {
			return "MESSENGER_QUIET_HOURS_<ROLE>"
		}
		return k
	}
	named := map[string]bool{}
	for k := range read {
		named[name(k)] = true
		if !documented[name(k)] {
			t.Errorf("the messenger reads %s, which docs/configuration.md does not document", k)
		}
	}
	for k := range documented {
		if !named[name(k)] {
			t.Errorf("docs/configuration.md documents %s, which the messenger does not read", k)
		}
	}
}
