package views

import (
	"net/url"
	"regexp"
	"strings"
)

// Segment is a piece of message text: plain text, or a link when Href is set.
type Segment struct {
	Text string
	Href string
}

// linkPattern finds http(s) URLs and bare www. hosts. Only these two forms ever become
// links, so javascript:, data: and other schemes stay text. A text-direction control ends
// a link, so none can make a link's text read as another address.
var linkPattern = regexp.MustCompile(`(?i)\b(?:https?://|www\.)[^\s<>"'\x{202A}-\x{202E}\x{2066}-\x{2069}]+`)

// Linkify splits message text into plain segments and safe http(s) links. Trailing
// punctuation that usually ends a sentence is left out of the link.
func Linkify(text string) []Segment {
	var segs []Segment
	last := 0
	for _, loc := range linkPattern.FindAllStringIndex(text, -1) {
		start, end := loc[0], loc[1]
		raw := strings.TrimRight(text[start:end], ".,;:!?)]}'\"")
		// Keep a closing parenthesis that closes one opened inside the URL (Wikipedia style).
		if strings.Count(raw, "(") > strings.Count(raw, ")") && end > start+len(raw) && text[start+len(raw)] == ')' {
			raw += ")"
		}
		href, ok := safeHref(raw)
		if !ok {
			continue
		}
		if start > last {
			segs = append(segs, Segment{Text: text[last:start]})
		}
		segs = append(segs, Segment{Text: raw, Href: href})
		last = start + len(raw)
	}
	if last < len(text) {
		segs = append(segs, Segment{Text: text[last:]})
	}
	return segs
}

func safeHref(raw string) (string, bool) {
	candidate := raw
	if strings.HasPrefix(strings.ToLower(candidate), "www.") {
		candidate = "https://" + candidate
	}
	u, err := url.Parse(candidate)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", false
	}
	return u.String(), true
}
