package upload

import (
	"bytes"
	"encoding/binary"
	"io"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/dreamseed/messenger"
)

// detectText accepts plain text: UTF-8 (with or without a BOM) or UTF-16 with a BOM, with
// no NUL and no control character but tab, CR, LF and form feed. Text whose first visible
// character is "<" is refused as markup (HTML, SVG, XML are scriptable in a browser); a
// note rarely starts with one, and anything else unknown is refused as unsupported.
func detectText(r io.ReaderAt, size int64, head []byte) (Info, error) {
	unsupported := messenger.Errorf(messenger.EUNSUPPORTED, "error.upload.kind")
	var (
		order   binary.ByteOrder
		skip    int64
		charset = "utf-8"
	)
	switch {
	case bytes.HasPrefix(head, []byte{0xEF, 0xBB, 0xBF}):
		skip = 3
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}):
		order, skip, charset = binary.LittleEndian, 2, "utf-16le"
	case bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		order, skip, charset = binary.BigEndian, 2, "utf-16be"
	}
	if order != nil && (size-skip)%2 != 0 {
		return Info{}, unsupported
	}
	var (
		first   = true
		ok      = true
		markup  = false
		high    rune // a UTF-16 high surrogate waiting for its low half
		carry   []byte
		buf     = make([]byte, 32<<10)
		offset  = skip
		visitOK = func(c rune) {
			if !allowedTextRune(c) {
				ok = false
			}
			if first && !isSpace(c) {
				first, markup = false, c == '<'
			}
		}
	)
	for offset < size && ok {
		n, err := r.ReadAt(buf[:min(int64(len(buf)), size-offset)], offset)
		if n == 0 && err != nil {
			return Info{}, err
		}
		offset += int64(n)
		chunk := append(carry, buf[:n]...)
		carry = nil
		if order != nil {
			for i := 0; i+1 < len(chunk) && ok; i += 2 {
				u := rune(order.Uint16(chunk[i:]))
				switch {
				case high != 0:
					if !utf16.IsSurrogate(u) || u < 0xDC00 {
						ok = false
					}
					visitOK(utf16.DecodeRune(high, u))
					high = 0
				case u >= 0xD800 && u < 0xDC00:
					high = u
				case u >= 0xDC00 && u < 0xE000:
					ok = false
				default:
					visitOK(u)
				}
			}
			if len(chunk)%2 == 1 {
				carry = chunk[len(chunk)-1:]
			}
			continue
		}
		for i := 0; i < len(chunk) && ok; {
			c, w := utf8.DecodeRune(chunk[i:])
			if c == utf8.RuneError && w <= 1 {
				if !utf8.FullRune(chunk[i:]) && offset < size {
					carry = append([]byte(nil), chunk[i:]...)
					break
				}
				ok = false
				break
			}
			visitOK(c)
			i += w
		}
	}
	if !ok || high != 0 || len(carry) > 0 {
		return Info{}, unsupported
	}
	if markup {
		return Info{}, messenger.Errorf(messenger.EUNSUPPORTED, "error.upload.markup")
	}
	return Info{Kind: TXT, ContentType: "text/plain; charset=" + charset}, nil
}

// allowedTextRune: printable text, tab, LF, CR and form feed; never NUL, another C0 or C1
// control, DEL, or a noncharacter.
func allowedTextRune(c rune) bool {
	switch {
	case c == '\t', c == '\n', c == '\r', c == '\f':
		return true
	case c < 0x20, c >= 0x7F && c <= 0x9F, c == 0xFFFE, c == 0xFFFF:
		return false
	}
	return true
}

func isSpace(c rune) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == 0xFEFF
}
