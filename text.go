package messenger

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// The rules for text people write, in one place: message bodies (CleanBody), group titles
// (CleanTitle), names from the portal (CleanName) and ids (ValidID). Every path that
// stores such text goes through one of them, so no control character reaches a page, a
// stream or another client.

// MaxTitleLength is the longest group title, in characters.
const MaxTitleLength = 100

// MaxCombiningRun is the most combining marks allowed in a row. Real writing stacks a few
// (Vietnamese two, Hebrew with points and cantillation four or five, Tibetan a handful, an
// emoji keycap two); "Zalgo" text stacks dozens to draw over the lines around it. A fixed
// sanity rule, like Unicode's own Stream-Safe Text Format (UAX #15, 30 non-starters),
// only tighter, so it is not configured.
const MaxCombiningRun = 8

// CleanBody answers a message body fit to store, or an invalid error saying why not: CR,
// CRLF and the Unicode line and paragraph separators (U+2028, U+2029) become LF; other
// control characters but tab and LF are refused; combining-mark
// floods are refused; leading and trailing space goes; a body that shows nothing (only
// spaces, zero-width and other invisible characters) is empty. Text-direction controls
// are kept: pages render each body isolated, so they cannot reach beyond it.
func CleanBody(body string) (string, error) {
	if !utf8.ValidString(body) {
		return "", Errorf(EINVALID, "error.body.invalid")
	}
	body = lineEnds.Replace(body)
	if hasControl(body, "\t\n") {
		return "", Errorf(EINVALID, "error.body.control")
	}
	if combiningFlood(body) {
		return "", Errorf(EINVALID, "error.body.combining", MaxCombiningRun)
	}
	body = strings.TrimSpace(body)
	if IsBlank(body) {
		return "", Errorf(EINVALID, "error.body.empty")
	}
	if utf8.RuneCountInString(body) > MaxMessageLength {
		return "", Errorf(EINVALID, "error.body.too_long", MaxMessageLength)
	}
	return body, nil
}

// CleanTitle answers a group title fit to store ("" when it shows nothing: the caller
// decides whether a group may go untitled), or an invalid error: a title is one line
// without control characters, text-direction controls or combining-mark floods, at most
// MaxTitleLength characters.
func CleanTitle(title string) (string, error) {
	if !utf8.ValidString(title) {
		return "", Errorf(EINVALID, "error.title.invalid")
	}
	title = strings.TrimSpace(title)
	switch {
	case hasControl(title, ""), strings.ContainsAny(title, "\u2028\u2029"):
		return "", Errorf(EINVALID, "error.title.control")
	case strings.IndexFunc(title, IsBidiControl) >= 0:
		return "", Errorf(EINVALID, "error.title.bidi")
	case combiningFlood(title):
		return "", Errorf(EINVALID, "error.title.combining", MaxCombiningRun)
	case utf8.RuneCountInString(title) > MaxTitleLength:
		return "", Errorf(EINVALID, "error.title.too_long", MaxTitleLength)
	case IsBlank(title):
		return "", nil
	}
	return title, nil
}

// CleanName answers a person's name from the portal as it is shown ("" when nothing of it
// shows). The portal is trusted with names, so what a title would be refused for is
// cleaned away instead of locking the person out: tabs and line ends become spaces, runs
// of spaces one, other control and text-direction characters are dropped, and combining
// marks beyond MaxCombiningRun in a row are cut.
func CleanName(name string) string {
	name = strings.ToValidUTF8(name, "\uFFFD")
	var b strings.Builder
	run := 0
	for _, r := range name {
		switch {
		case r == '\t' || r == '\n' || r == '\r' || r == '\u2028' || r == '\u2029':
			r = ' '
		case unicode.IsControl(r) || IsBidiControl(r):
			continue
		}
		if isCombining(r) {
			if run++; run > MaxCombiningRun {
				continue
			}
		} else if !ignorable(r) {
			run = 0
		}
		b.WriteRune(r)
	}
	name = strings.Join(strings.Fields(b.String()), " ")
	if IsBlank(name) {
		return ""
	}
	return name
}

// ValidID reports whether s can be an id (a portal user, organization or zone id, an
// e-mail address): valid UTF-8 without control characters, line separators or
// text-direction controls.
func ValidID(s string) bool {
	return utf8.ValidString(s) && !hasControl(s, "") && !strings.ContainsAny(s, "\u2028\u2029") &&
		strings.IndexFunc(s, IsBidiControl) < 0
}

// IsBlank reports whether s shows nothing: it holds only spaces, format characters
// (zero-width spaces and joiners, direction marks, the byte order mark), default-ignorable
// characters (the Hangul fillers), the blank braille pattern, variation selectors and
// combining marks with nothing to combine with.
func IsBlank(s string) bool {
	for _, r := range s {
		if !invisible(r) {
			return false
		}
	}
	return true
}

func invisible(r rune) bool {
	return unicode.IsSpace(r) || r == '\u2800' || isCombining(r) ||
		ignorable(r)
}

// lineEnds makes every line end of a body LF.
var lineEnds = strings.NewReplacer("\r\n", "\n", "\r", "\n", "\u2028", "\n", "\u2029", "\n")

// hasControl reports whether s holds a C0 or C1 control character (or DEL) other than
// those in allowed.
func hasControl(s, allowed string) bool {
	return strings.IndexFunc(s, func(r rune) bool {
		return unicode.IsControl(r) && !strings.ContainsRune(allowed, r)
	}) >= 0
}

// IsBidiControl reports the explicit text-direction embeddings, overrides and isolates
// (U+202A–U+202E, U+2066–U+2069), which reorder the text after them. The marks (LRM,
// RLM, ALM) only give a direction to their place, and stay.
func IsBidiControl(r rune) bool {
	return (r >= '\u202A' && r <= '\u202E') || (r >= '\u2066' && r <= '\u2069')
}

// ignorable reports the invisible format characters (Cf, default-ignorables, variation
// selectors) that do not break a run of combining marks.
func ignorable(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector)
}

func isCombining(r rune) bool {
	return unicode.In(r, unicode.Mn, unicode.Me)
}

// combiningFlood reports whether s stacks more than MaxCombiningRun combining marks in a
// row. Invisible format characters between them (a zero-width joiner, a variation
// selector) do not end the run: renderers stack the marks all the same.
func combiningFlood(s string) bool {
	run := 0
	for _, r := range s {
		if !isCombining(r) {
			if !ignorable(r) {
				run = 0
			}
			continue
		}
		if run++; run > MaxCombiningRun {
			return true
		}
	}
	return false
}
