package digest_test

import (
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
)

// latin finds the Latin words of a text; brands and the people's names of the test are
// not words of a language.
var latin = regexp.MustCompile(`[A-Za-z]{2,}`)

var notWords = map[string]bool{"DreamSeed": true, "Joon": true, "Mina": true, "Sora": true}

// The digest reads in one language: no Hangul in an English one, no English in a Korean
// one (its links aside).
func TestDigestSpeaksOneLanguage(t *testing.T) {
	e := newEnv(t)
	r := e.runner(e.svc)
	teacher := e.user("t-w", "Joon", "joon@example.com", "ko")
	for lang, name := range map[string]string{"ko": "Mina", "en": "Sora"} {
		reader := e.user("p-"+lang, name, lang+"@example.com", lang)
		e.away(reader)
		e.send(teacher, reader, bodies(6, "1234")...)
	}
	e.enqueue(r)
	for _, lang := range []string{"ko", "en"} {
		got := e.mp.WaitFor(t, lang+"@example.com", 1, 10*time.Second)[0]
		for _, field := range strings.Fields(got.Subject + " " + got.Text) {
			if strings.Contains(field, "://") {
				continue
			}
			hangul := strings.IndexFunc(field, func(r rune) bool { return unicode.Is(unicode.Hangul, r) }) >= 0
			if lang == "en" && hangul {
				t.Errorf("the English digest says %q:\n%s", field, got.Text)
			}
			for _, w := range latin.FindAllString(field, -1) {
				if lang == "ko" && !notWords[w] {
					t.Errorf("the Korean digest says %q:\n%s", w, got.Text)
				}
			}
		}
	}
}
