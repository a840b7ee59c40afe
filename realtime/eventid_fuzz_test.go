package realtime

import (
	"strconv"
	"testing"
)

// FuzzEventID: any Last-Event-ID parses without panic; an id that parses has exactly one
// spelling (writing it back gives the input), and comparing is a total order on ids of
// one epoch and kind: antisymmetric, zero only for equal ids, refused across epochs.
func FuzzEventID(f *testing.F) {
	f.Add("0123abcd-17", "0123abcd-18")
	f.Add("0123abcd-1700000000000-3", "0123abcd-1700000000000-12")
	f.Add("e-0", "e-00")
	f.Add("e-+1", "e--1")
	f.Add("-1", "e-1-2-3")
	f.Add("e-18446744073709551615", "e-18446744073709551616")
	f.Add("a\r\nid: x-1", "a\r\nid: x-2")
	f.Fuzz(func(t *testing.T, a, b string) {
		ea, okA := parseEventID(a)
		eb, okB := parseEventID(b)
		if okA {
			if ea.epoch == "" || ea.parts < 1 || ea.parts > 2 {
				t.Fatalf("parseEventID(%q) = %+v", a, ea)
			}
			if written := format(ea); written != a {
				t.Fatalf("parseEventID(%q) = %+v, written back %q", a, ea, written)
			}
		}
		c, ok := CompareEventIDs(a, b)
		if ok != (okA && okB && ea.epoch == eb.epoch && ea.parts == eb.parts) {
			t.Fatalf("CompareEventIDs(%q, %q) ok = %v", a, b, ok)
		}
		if !ok {
			return
		}
		r, _ := CompareEventIDs(b, a)
		if c != -r || (c == 0) != (a == b) || c < -1 || c > 1 {
			t.Fatalf("CompareEventIDs(%q, %q) = %d, reversed %d", a, b, c, r)
		}
	})
}

func format(e eventID) string {
	s := e.epoch
	for i := range e.parts {
		s += "-" + strconv.FormatUint(e.pos[i], 10)
	}
	return s
}
