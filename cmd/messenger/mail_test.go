package main

import (
	"strings"
	"testing"
	"time"
)

func TestLoadMailConfig(t *testing.T) {
	prod := map[string]string{"DATABASE_URL": "postgres://db/messenger", "MESSENGER_JWT_SECRET": strings.Repeat("s", 32)}
	with := func(kv map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range prod {
			m[k] = v
		}
		for k, v := range kv {
			m[k] = v
		}
		return m
	}
	c, err := loadConfig(envOf(prod))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mail.On() || c.Mail.Digest.Every != time.Hour || c.Mail.Digest.OfflineAfter != 24*time.Hour || c.Mail.Digest.MinUnread != 5 {
		t.Errorf("defaults: %+v", c.Mail)
	}
	c, err = loadConfig(envOf(with(map[string]string{
		"MESSENGER_SMTP_URL": "smtp://u:p@mail.example:587", "MESSENGER_MAIL_FROM": "DreamSeed <no-reply@school.example>",
		"MESSENGER_MAIL_SECRET": strings.Repeat("m", 32), "MESSENGER_DIGEST_EVERY": "30m",
		"MESSENGER_DIGEST_OFFLINE_AFTER": "12h", "MESSENGER_DIGEST_MIN_UNREAD": "3",
		"MESSENGER_PORTAL_CONVERSATION_URL": "https://portal.example/messenger?c={id}",
	})))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Mail.On() || c.Mail.Digest.Every != 30*time.Minute || c.Mail.Digest.OfflineAfter != 12*time.Hour || c.Mail.Digest.MinUnread != 3 {
		t.Errorf("set: %+v", c.Mail)
	}
	for name, kv := range map[string]map[string]string{
		"from without url":       {"MESSENGER_MAIL_FROM": "a@b.example"},
		"no secret outside dev":  {"MESSENGER_SMTP_URL": "smtp://mail.example", "MESSENGER_MAIL_FROM": "a@b.example"},
		"bad scheme":             {"MESSENGER_SMTP_URL": "http://mail.example", "MESSENGER_MAIL_FROM": "a@b.example", "MESSENGER_MAIL_SECRET": strings.Repeat("m", 32)},
		"short secret":           {"MESSENGER_MAIL_SECRET": "short"},
		"every too short":        {"MESSENGER_DIGEST_EVERY": "1s"},
		"min unread 0":           {"MESSENGER_DIGEST_MIN_UNREAD": "0"},
		"conversation url no id": {"MESSENGER_PORTAL_CONVERSATION_URL": "https://portal.example/messenger"},
	} {
		_, err := loadConfig(envOf(with(kv)))
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "u:p@") {
			t.Errorf("%s: the error repeats the SMTP password: %v", name, err)
		}
	}
}
