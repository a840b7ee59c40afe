package chat

import (
	"strings"
	"testing"
)

// FuzzStreamPosition: any Last-Event-ID parses without panic into a position whose zone
// part is sane, and a position survives being written as an id and read back.
func FuzzStreamPosition(f *testing.F) {
	f.Add("")
	f.Add("0123abcd-17")
	f.Add("0123abcd-1700000000000-3.z12-40")
	f.Add("a.z0-1")
	f.Add("a.z-5-1")
	f.Add(".z9-9.z1-1")
	f.Add("x.z+5-+0")
	f.Fuzz(func(t *testing.T, id string) {
		p := parseStreamPosition(id)
		if p.hasZone && (p.zone <= 0 || p.zoneSeq < 0) {
			t.Fatalf("parseStreamPosition(%q) = %+v: zone out of range", id, p)
		}
		if !strings.HasPrefix(id, p.user) || strings.Contains(p.user, ".z") {
			t.Fatalf("parseStreamPosition(%q) = %+v: user part is not the id's first", id, p)
		}
		again := parseStreamPosition(p.String())
		if again != p {
			t.Fatalf("parseStreamPosition(%q) = %+v, written %q, read back %+v", id, p, p.String(), again)
		}
	})
}
