package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/dreamseed/messenger/push"
)

func TestLoadConfigPush(t *testing.T) {
	prod := func(kv ...string) map[string]string {
		m := map[string]string{"DATABASE_URL": "postgres://db/messenger", "MESSENGER_JWT_SECRET": strings.Repeat("s", 32)}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	k, _ := push.GenerateKeys()
	other, _ := push.GenerateKeys()

	t.Run("dev: keys generated under the data directory, kept, a default subject", func(t *testing.T) {
		dir := t.TempDir()
		c, err := loadConfig(envOf(map[string]string{"MESSENGER_DATA_DIR": dir}))
		if err != nil {
			t.Fatal(err)
		}
		if !c.PushOn() || !c.Push.DevKeys || c.Push.Delay.Seconds() != 5 || c.conversationURL() != "http://localhost:8001/c/{id}" ||
			c.Push.Workers != 2 {
			t.Fatalf("push config = %+v", c.Push)
		}
		a, err := c.pushKeys()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := c.pushKeys()
		if a != b || a.Validate() != nil {
			t.Fatalf("dev keys not kept: %+v %+v", a, b)
		}
		if _, err := push.NewSender(push.Config{Keys: a, Subject: c.Push.Subject}, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("production: no keys, no push", func(t *testing.T) {
		c, err := loadConfig(envOf(prod()))
		if err != nil || c.PushOn() {
			t.Fatalf("err %v, push on %v", err, c.PushOn())
		}
	})
	t.Run("production: keys and subject", func(t *testing.T) {
		c, err := loadConfig(envOf(prod("MESSENGER_VAPID_PUBLIC_KEY", k.Public, "MESSENGER_VAPID_PRIVATE_KEY", k.Private,
			"MESSENGER_VAPID_SUBJECT", "https://school.example/contact", "MESSENGER_PORTAL_CONVERSATION_URL", "https://portal.example/m?c={id}",
			"MESSENGER_PUSH_DELAY", "2s", "MESSENGER_PUSH_WORKERS", "3")))
		if err != nil {
			t.Fatal(err)
		}
		if !c.PushOn() || c.Push.DevKeys || c.conversationURL() != "https://portal.example/m?c={id}" || c.Push.Delay.Seconds() != 2 ||
			c.Push.Workers != 3 {
			t.Fatalf("push config = %+v", c.Push)
		}
	})
	for name, env := range map[string]map[string]string{
		"MESSENGER_PUSH_ALLOW_PRIVATE": prod("MESSENGER_PUSH_ALLOW_PRIVATE", "1"),
		"MESSENGER_VAPID_SUBJECT": prod("MESSENGER_VAPID_PUBLIC_KEY", k.Public, "MESSENGER_VAPID_PRIVATE_KEY", k.Private,
			"MESSENGER_VAPID_SUBJECT", "admin@school.example"),
		"MESSENGER_VAPID_SUBJECT ": prod("MESSENGER_VAPID_PUBLIC_KEY", k.Public, "MESSENGER_VAPID_PRIVATE_KEY", k.Private),
		"MESSENGER_VAPID_*_KEY": prod("MESSENGER_VAPID_PUBLIC_KEY", other.Public, "MESSENGER_VAPID_PRIVATE_KEY", k.Private,
			"MESSENGER_VAPID_SUBJECT", "mailto:a@school.example"),
		"go together":                       prod("MESSENGER_VAPID_PUBLIC_KEY", k.Public),
		"MESSENGER_PUSH_DELAY":              prod("MESSENGER_PUSH_DELAY", "-1s"),
		"MESSENGER_PUSH_TIMEOUT":            prod("MESSENGER_PUSH_TIMEOUT", "1h"),
		"MESSENGER_PUSH_CONCURRENCY":        prod("MESSENGER_PUSH_CONCURRENCY", "0"),
		"MESSENGER_PUSH_WORKERS":            prod("MESSENGER_PUSH_WORKERS", "101"),
		"MESSENGER_PORTAL_CONVERSATION_URL": prod("MESSENGER_PORTAL_CONVERSATION_URL", "https://portal.example/m"),
	} {
		t.Run("refused: "+name, func(t *testing.T) {
			_, err := loadConfig(envOf(env))
			if err == nil || !strings.Contains(err.Error(), strings.TrimSpace(name)) {
				t.Fatalf("err = %v, want one naming %s", err, name)
			}
			if strings.Contains(err.Error(), k.Private) {
				t.Fatal("the error shows the private key")
			}
		})
	}
	t.Run("dev lets private endpoints through", func(t *testing.T) {
		c, err := loadConfig(envOf(map[string]string{"MESSENGER_PUSH_ALLOW_PRIVATE": "1"}))
		if err != nil || !c.Push.AllowPrivate {
			t.Fatalf("err %v, %+v", err, c.Push)
		}
	})
}

func TestVAPIDKeysCommand(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"vapid-keys"}, envOf(nil), &out); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
	}
	keys := push.Keys{Public: env["MESSENGER_VAPID_PUBLIC_KEY"], Private: env["MESSENGER_VAPID_PRIVATE_KEY"]}
	if err := keys.Validate(); err != nil {
		t.Fatalf("%q: %v", out.String(), err)
	}
}
