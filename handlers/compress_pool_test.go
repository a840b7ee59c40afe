package handlers

import (
	"bytes"
	"compress/gzip"
	"io"
	"strings"
	"testing"
)

// A compressor taken from the pool after another page starts clean: each page decodes to
// itself with its hole filled, however many pages came before it.
func TestGzipPartsFromPooledCompressors(t *testing.T) {
	hole := []byte("\x00HOLE\x00")
	for i, text := range []string{
		strings.Repeat("<li>안녕하세요 bubble-me</li>", 400) + "\x00HOLE\x00<footer>one</footer>",
		"<p>short</p>\x00HOLE\x00<p>after</p>\x00HOLE\x00end",
		strings.Repeat("<li>different page</li>", 900),
	} {
		g, err := newGzipParts([]byte(text), hole)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := g.writeTo(&buf, []byte("id-123")); err != nil {
			t.Fatal(err)
		}
		if buf.Len() != g.size(len("id-123")) {
			t.Fatalf("page %d: %d bytes written, size says %d", i, buf.Len(), g.size(len("id-123")))
		}
		zr, err := gzip.NewReader(&buf)
		if err != nil {
			t.Fatalf("page %d: %v", i, err)
		}
		got, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("page %d: %v", i, err)
		}
		if want := strings.ReplaceAll(text, string(hole), "id-123"); string(got) != want {
			t.Fatalf("page %d decodes to %d bytes, not the page's %d", i, len(got), len(want))
		}
	}
}
