package sse

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// TestReaderLastID: an id alone dispatches nothing but moves the last event ID, as an
// EventSource's does; an id with NUL is ignored.
func TestReaderLastID(t *testing.T) {
	r := NewReader(strings.NewReader("id: 1\n\nevent: x\nid: 2\ndata: y\n\n: ping\nid: 3\x00\n\nid: 5\n\n"))
	ev, err := r.Next()
	if err != nil || ev.Type != "x" || ev.Data != "y" || ev.ID != "2" || r.LastID != "2" {
		t.Fatalf("first event %+v, %v, last id %q", ev, err, r.LastID)
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last event: %v, want EOF", err)
	}
	if r.LastID != "5" {
		t.Fatalf("last id %q, want 5 (the id alone at the end)", r.LastID)
	}
}
