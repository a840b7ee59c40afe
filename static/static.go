// Package static holds the browser assets — vendored htmx and its SSE extension, the built
// Tailwind CSS, app.js and icons — embedded into the binary.
package static

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"sort"
)

// FS holds the assets served under /static/.
//
//go:embed *.js *.css *.svg *.png
var FS embed.FS

// Version answers a short hash of all assets, used as a cache-busting query so that the
// assets can be cached for a year.
func Version() string {
	h := sha256.New()
	names, _ := fs.Glob(FS, "*")
	sort.Strings(names)
	for _, n := range names {
		b, _ := fs.ReadFile(FS, n)
		h.Write([]byte(n))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}
