package views

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dreamseed/messenger"
)

// TestBubbleIsolated: a message's bubble is rendered with dir="auto", so the
// text-direction controls a body may hold reorder nothing outside it, on the page and in
// the live row alike; a link inside is isolated left to right.
func TestBubbleIsolated(t *testing.T) {
	m := messenger.Message{
		ID: 1, Seq: 1, Kind: messenger.MessageText, Body: "see https://a.example/\u202egnp.exe",
		Sender: messenger.User{Sub: "s1", Name: "김민준"}, CreatedAt: time.Now(),
	}
	for _, mine := range []bool{true, false} {
		viewer := "s2"
		if mine {
			viewer = "s1"
		}
		var b strings.Builder
		if err := LiveMessage(m, viewer).Render(context.Background(), &b); err != nil {
			t.Fatal(err)
		}
		html := b.String()
		if !regexp.MustCompile(`<div dir="auto"[^>]*>see <a href="https://a.example/"[^>]* dir="ltr">https://a.example/</a>\x{202e}gnp.exe</div>`).MatchString(html) {
			t.Errorf("mine=%v: bubble not isolated:\n%s", mine, html)
		}
	}
}

// tagPattern matches the only markup messageBody writes: its links.
var tagPattern = regexp.MustCompile(`<a href="[^"<>]*" target="_blank" rel="noopener noreferrer" class="underline underline-offset-2" dir="ltr">|</a>`)

// FuzzLinkify: any text splits into segments that join back into it; every link is an
// http(s) URL with a host and no direction control; rendered, the body holds no markup
// but its links (every other < is escaped).
func FuzzLinkify(f *testing.F) {
	for _, s := range []string{
		"숙제: https://school.example/hw?id=3.", "www.dreamseed.kr 참고", "javascript:alert(1)",
		"(see https://en.wikipedia.org/wiki/Seed_(plant))", "<b>x</b> https://a.example/\"onmouseover=",
		"https://a.example/\u202egnp.exe", "http://[::1]:80/<script>", "WWW.X.Y/%zz", "https://a\x00b.example",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		segs := Linkify(text)
		var joined strings.Builder
		for _, s := range segs {
			joined.WriteString(s.Text)
			if s.Href == "" {
				continue
			}
			u, err := url.Parse(s.Href)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				t.Fatalf("Linkify(%q): link %q is not an http(s) URL with a host", text, s.Href)
			}
			if strings.IndexFunc(s.Text, func(r rune) bool { return (r >= '\u202A' && r <= '\u202E') || (r >= '\u2066' && r <= '\u2069') }) >= 0 {
				t.Fatalf("Linkify(%q): link text %q holds a direction control", text, s.Text)
			}
		}
		if joined.String() != text {
			t.Fatalf("Linkify(%q) joins into %q", text, joined.String())
		}
		var b strings.Builder
		if err := messageBody(text).Render(context.Background(), &b); err != nil {
			t.Fatal(err)
		}
		if rest := tagPattern.ReplaceAllString(b.String(), ""); strings.Contains(rest, "<") {
			t.Fatalf("messageBody(%q) = %q holds markup besides its links", text, b.String())
		}
	})
}
