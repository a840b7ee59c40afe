// Package upload decides what an uploaded file is, by its content only, and refuses what
// must not be stored: executables, scriptable documents (SVG, HTML, XML), macro-enabled
// Office files, archives, polyglots, decompression bombs. It also cleans file names and
// strips metadata (EXIF, GPS) from photos losslessly. It never looks at the file's name or
// the Content-Type a client claims.
package upload

import (
	"bytes"
	"fmt"
	"io"

	"github.com/dreamseed/messenger"
)

// Defaults of Limits.
const (
	DefaultMaxBytes           = 10 << 20   // 10 MB per file
	DefaultMaxPixels          = 50_000_000 // 50 megapixels
	DefaultMaxZipEntries      = 5000
	DefaultMaxZipUncompressed = 256 << 20
	DefaultMaxZipRatio        = 200
	DefaultMaxNameRunes       = 200
)

// Limits bounds what Detect accepts; a zero field takes its default.
type Limits struct {
	MaxBytes  int64 // largest file, checked against the size before anything is read
	MaxPixels int64 // largest image, width×height, read from the header only
	// The zip bomb guard of OOXML and HWPX, read from the central directory without
	// decompressing: entry count, total uncompressed size, and the compression ratio of any
	// entry above 1 MiB uncompressed (deflate tops out near 1032:1; XML rarely beats 100:1).
	MaxZipEntries      int
	MaxZipUncompressed int64
	MaxZipRatio        int64
	MaxNameRunes       int // longest file name kept, for CleanFileName
}

// DefaultLimits answers the limits the issue asks for: 10 MB, 50 megapixels.
func DefaultLimits() Limits { return Limits{}.withDefaults() }

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultMaxPixels
	}
	if l.MaxZipEntries <= 0 {
		l.MaxZipEntries = DefaultMaxZipEntries
	}
	if l.MaxZipUncompressed <= 0 {
		l.MaxZipUncompressed = DefaultMaxZipUncompressed
	}
	if l.MaxZipRatio <= 0 {
		l.MaxZipRatio = DefaultMaxZipRatio
	}
	if l.MaxNameRunes <= 0 {
		l.MaxNameRunes = DefaultMaxNameRunes
	}
	return l
}

// Kind is what a file is, decided by its content.
type Kind string

// The kinds an upload may be.
const (
	PNG  Kind = "png"
	JPEG Kind = "jpeg"
	WebP Kind = "webp"
	GIF  Kind = "gif"
	PDF  Kind = "pdf"
	DOCX Kind = "docx"
	XLSX Kind = "xlsx"
	PPTX Kind = "pptx"
	HWP  Kind = "hwp"
	HWPX Kind = "hwpx"
	TXT  Kind = "txt"
)

// ContentType answers the canonical media type a file of kind k is served with.
func (k Kind) ContentType() string {
	switch k {
	case PNG:
		return "image/png"
	case JPEG:
		return "image/jpeg"
	case WebP:
		return "image/webp"
	case GIF:
		return "image/gif"
	case PDF:
		return "application/pdf"
	case DOCX:
		return "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	case XLSX:
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	case PPTX:
		return "application/vnd.openxmlformats-officedocument.presentationml.presentation"
	case HWP:
		return "application/x-hwp"
	case HWPX:
		return "application/hwp+zip"
	case TXT:
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

// IsImage reports whether k is a picture that gets thumbnails.
func (k Kind) IsImage() bool { return k == PNG || k == JPEG || k == WebP || k == GIF }

// Info is what Detect found out about a file.
type Info struct {
	Kind        Kind
	ContentType string // canonical, never the client's
	Width       int    // images only, from the header
	Height      int
}

// headSize is how much of a file's start Detect reads at once: enough for every signature
// and for the markup sniffing of images.
const headSize = 1024

// Detect answers what the file of size bytes read through r is, or an error whose message
// can be shown to the uploader (codes messenger.ETOOLARGE, EUNSUPPORTED or EINVALID; an
// error reading r is returned as it is). The size is checked before anything is read, and an
// image's pixel count before any pixel is decoded.
func Detect(r io.ReaderAt, size int64, limits Limits) (Info, error) {
	limits = limits.withDefaults()
	if size > limits.MaxBytes {
		return Info{}, messenger.Errorf(messenger.ETOOLARGE, "error.file.too_large", humanBytes(limits.MaxBytes))
	}
	if size <= 0 {
		return Info{}, messenger.Errorf(messenger.EINVALID, "error.file.empty")
	}
	head := make([]byte, min(size, headSize))
	if _, err := r.ReadAt(head, 0); err != nil && err != io.EOF {
		return Info{}, err
	}
	if isExecutable(head) {
		return Info{}, messenger.Errorf(messenger.EUNSUPPORTED, "error.upload.program")
	}
	var (
		info Info
		err  error
	)
	switch {
	case bytes.HasPrefix(head, pngSignature):
		info, err = detectImage(r, size, head, PNG, limits)
	case bytes.HasPrefix(head, []byte{0xFF, 0xD8, 0xFF}):
		info, err = detectImage(r, size, head, JPEG, limits)
	case bytes.HasPrefix(head, []byte("GIF87a")), bytes.HasPrefix(head, []byte("GIF89a")):
		info, err = detectImage(r, size, head, GIF, limits)
	case len(head) >= 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "WEBP":
		info, err = detectImage(r, size, head, WebP, limits)
	case isHEIF(head):
		return Info{}, messenger.Errorf(messenger.EUNSUPPORTED, "error.upload.heic")
	case bytes.HasPrefix(head, []byte("%PDF-")):
		info = Info{Kind: PDF}
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		info, err = detectZip(r, size, limits)
	case bytes.HasPrefix(head, cfbSignature):
		info, err = detectCFB(r, size)
	default:
		info, err = detectText(r, size, head)
	}
	if err != nil {
		return Info{}, err
	}
	if info.ContentType == "" {
		info.ContentType = info.Kind.ContentType()
	}
	return info, nil
}

// isExecutable recognises programs by their magic numbers: Windows (MZ), Linux (ELF),
// macOS (Mach-O, 32/64 bit, either byte order, and fat binaries, which share CAFEBABE with
// Java classes — refused too), and scripts (#!).
func isExecutable(head []byte) bool {
	for _, magic := range [][]byte{
		[]byte("MZ"), []byte("\x7fELF"), []byte("#!"),
		{0xFE, 0xED, 0xFA, 0xCE}, {0xFE, 0xED, 0xFA, 0xCF},
		{0xCE, 0xFA, 0xED, 0xFE}, {0xCF, 0xFA, 0xED, 0xFE},
		{0xCA, 0xFE, 0xBA, 0xBE},
	} {
		if bytes.HasPrefix(head, magic) {
			return true
		}
	}
	return false
}

// isHEIF recognises an ISO-BMFF file whose major brand is one of HEIF's (HEIC photos from
// iPhones, AVIF): no decoder exists in the pure-Go stack, so they are refused by name.
func isHEIF(head []byte) bool {
	if len(head) < 12 || string(head[4:8]) != "ftyp" {
		return false
	}
	switch string(head[8:12]) {
	case "heic", "heix", "hevc", "hevx", "heim", "heis", "hevm", "hevs", "mif1", "msf1", "avif", "avis":
		return true
	}
	return false
}

func humanBytes(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
