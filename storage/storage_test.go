package storage_test

import (
	"errors"
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
