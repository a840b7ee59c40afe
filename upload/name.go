package upload

import (
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/dreamseed/messenger"
)

// DefaultFileName names a file that came without a usable name.
const DefaultFileName = "file"

// maxExtRunes bounds what counts as an extension when a long name is cut: longer
// "extensions" are just part of the name.
const maxExtRunes = 16

// minNameRunes is the shortest limit CleanFileName applies: room for a stem, an extension
// and DefaultFileName.
const minNameRunes = 2 * maxExtRunes

// CleanFileName answers the name to keep for an uploaded file, at most maxRunes characters
// (DefaultMaxNameRunes when maxRunes ≤ 0, and never under minNameRunes). The rule: what an honest client sends is
// repaired, what only a forger sends is refused. Repaired: the name is NFC-normalised (macOS
// sends Hangul decomposed), folders are cut off ("C:\Users\…\a.jpg" from old browsers,
// "../../a.jpg"), surrounding spaces go, a long name is shortened keeping its extension, an
// empty one becomes DefaultFileName. Refused (EINVALID): invalid UTF-8, NUL and other
// control characters (and the line separators U+2028, U+2029), and the text-direction embeddings, overrides and isolates (U+202A–
// U+202E, U+2066–U+2069), whose only use in a file name is to show "photo<U+202E>gnp.exe" as
// "photoexe.png".
func CleanFileName(name string, maxRunes int) (string, error) {
	if maxRunes <= 0 {
		maxRunes = DefaultMaxNameRunes
	}
	maxRunes = max(maxRunes, minNameRunes)
	if !utf8.ValidString(name) {
		return "", messenger.Errorf(messenger.EINVALID, "error.file.name_invalid")
	}
	for _, c := range name {
		if unicode.IsControl(c) || c == '\u2028' || c == '\u2029' {
			return "", messenger.Errorf(messenger.EINVALID, "error.file.name_control")
		}
		if messenger.IsBidiControl(c) {
			return "", messenger.Errorf(messenger.EINVALID, "error.file.name_bidi")
		}
	}
	name = norm.NFC.String(name)
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.TrimSpace(name)
	for len(name) >= 2 && name[1] == ':' && isASCIILetter(name[0]) { // "C:a.jpg"
		name = strings.TrimSpace(name[2:])
	}
	if name == "" || name == "." || name == ".." {
		return DefaultFileName, nil
	}
	if utf8.RuneCountInString(name) > maxRunes {
		name = shorten(name, maxRunes)
	}
	return name, nil
}

// shorten cuts the stem of name so that stem and extension fit in maxRunes.
func shorten(name string, maxRunes int) string {
	ext := path.Ext(name)
	if n := utf8.RuneCountInString(ext); n > maxExtRunes || n >= maxRunes || ext == name {
		ext = ""
	}
	stem := []rune(strings.TrimSuffix(name, ext))
	stem = stem[:maxRunes-utf8.RuneCountInString(ext)]
	// Cutting may leave a base letter without its marks or a lone jamo; normalising again
	// keeps the result NFC, and it never grows in NFC.
	out := norm.NFC.String(strings.TrimSpace(string(stem)) + ext)
	for utf8.RuneCountInString(out) > maxRunes { // NFC of a cut can recompose differently; rare
		r := []rune(out)
		out = norm.NFC.String(string(r[:len(r)-1]))
	}
	if strings.TrimSpace(out) == "" {
		return DefaultFileName
	}
	return out
}

func isASCIILetter(b byte) bool { return (b|0x20) >= 'a' && (b|0x20) <= 'z' }

// ContentDisposition answers a Content-Disposition header value that makes browsers download
// a file called name (a CleanFileName result): an ASCII fallback for old clients, in which
// every other character is "_", and the exact name percent-encoded in filename* (RFC 6266, RFC 8187).
func ContentDisposition(name string) string {
	var ascii, encoded strings.Builder
	for _, c := range name {
		if c >= 0x20 && c < 0x7F && c != '"' && c != '\\' && c != '%' && c != ';' {
			ascii.WriteRune(c)
		} else {
			ascii.WriteByte('_')
		}
	}
	const hex = "0123456789ABCDEF"
	for _, b := range []byte(name) {
		if isAttrChar(b) {
			encoded.WriteByte(b)
		} else {
			encoded.WriteByte('%')
			encoded.WriteByte(hex[b>>4])
			encoded.WriteByte(hex[b&15])
		}
	}
	return `attachment; filename="` + ascii.String() + `"; filename*=UTF-8''` + encoded.String()
}

// isAttrChar: RFC 8187's attr-char, the bytes that need no percent-encoding.
func isAttrChar(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		return true
	}
	return strings.IndexByte("!#$&+-.^_`|~", b) >= 0
}
