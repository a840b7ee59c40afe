package storage_test

import (
	"errors"
	"mime"
	"regexp"
	"strings"
	"testing"

	"github.com/dreamseed/messenger/storage"
)

func TestNewKey(t *testing.T) {
	layout := regexp.MustCompile(`^([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/original$`)
	seen := map[string]bool{}
	for range 1000 {
		key := storage.NewKey()
		m := layout.FindStringSubmatch(key)
		if m == nil || !strings.HasPrefix(m[3], m[1]+m[2]) {
			t.Fatalf("NewKey() = %q, want xx/yy/<uuid starting xxyy>/original", key)
		}
		if err := storage.ValidKey(key); err != nil {
			t.Fatal(err)
		}
		if seen[key] {
			t.Fatalf("NewKey repeated %q", key)
		}
		seen[key] = true
	}
	key := storage.NewKey()
	v := storage.VariantKey(key, "300.webp")
	if v != strings.TrimSuffix(key, "original")+"300.webp" || storage.ValidKey(v) != nil {
		t.Errorf("VariantKey(%q, 300.webp) = %q", key, v)
	}
	if err := storage.ValidKey(storage.VariantKey(key, "../x")); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("a variant named ../x is valid: %v", err)
	}
}

func TestContentDisposition(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"report.pdf", `attachment; filename="report.pdf"; filename*=UTF-8''report.pdf`},
		{"가정통신문.hwp", `attachment; filename="_____.hwp"; filename*=UTF-8''%EA%B0%80%EC%A0%95%ED%86%B5%EC%8B%A0%EB%AC%B8.hwp`},
		{"a \"b\"\r\nSet-Cookie: x.txt", `attachment; filename="a _b_Set-Cookie: x.txt"; filename*=UTF-8''a%20%22b%22Set-Cookie%3A%20x.txt`},
		{"\x00\n", "attachment"},
	} {
		got := storage.ContentDisposition(tc.name)
		if got != tc.want {
			t.Errorf("ContentDisposition(%q) = %s, want %s", tc.name, got, tc.want)
		}
		// Go's own parser (as browsers do) reads the exact name back.
		if _, params, err := mime.ParseMediaType(got); err != nil {
			t.Errorf("%s does not parse: %v", got, err)
		} else if clean := strings.Map(func(r rune) rune {
			if r < 0x20 {
				return -1
			}
			return r
		}, tc.name); params["filename"] != clean {
			t.Errorf("%s parses as %q, want %q", got, params["filename"], clean)
		}
	}
}
