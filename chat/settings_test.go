package chat

import (
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/unicode/norm"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/store"
)

// TestInQuietHours: a window that wraps midnight holds on both sides of it, in the user's
// zone, and says when it ends; one inside a day holds inside it only.
func TestInQuietHours(t *testing.T) {
	seoul := Location("Asia/Seoul")
	night := Settings{Quiet: &QuietHours{From: 21 * 60, To: 8 * 60}, TimeZone: "Asia/Seoul"}
	lunch := Settings{Quiet: &QuietHours{From: 12 * 60, To: 13 * 60}, TimeZone: "America/New_York"}
	at := func(loc *time.Location, d, h, m int) time.Time { return time.Date(2026, 3, d, h, m, 0, 0, loc) }
	ny := Location("America/New_York")
	cases := []struct {
		name  string
		s     Settings
		now   time.Time
		quiet bool
		until time.Time
	}{
		{"before the window", night, at(seoul, 2, 20, 59), false, time.Time{}},
		{"its first minute", night, at(seoul, 2, 21, 0), true, at(seoul, 3, 8, 0)},
		{"before midnight", night, at(seoul, 2, 23, 30), true, at(seoul, 3, 8, 0)},
		{"after midnight", night, at(seoul, 3, 2, 0), true, at(seoul, 3, 8, 0)},
		{"its end", night, at(seoul, 3, 8, 0), false, time.Time{}},
		{"the same instant seen in UTC", night, at(seoul, 3, 2, 0).UTC(), true, at(seoul, 3, 8, 0)},
		{"inside a day, in the user's zone", lunch, at(ny, 2, 12, 30), true, at(ny, 2, 13, 0)},
		{"Seoul's noon is not New York's", lunch, at(seoul, 2, 12, 30), false, time.Time{}},
		{"no window", Settings{TimeZone: "Asia/Seoul"}, at(seoul, 2, 23, 0), false, time.Time{}},
	}
	for _, c := range cases {
		quiet, until := InQuietHours(c.s, c.now)
		if quiet != c.quiet || !until.Equal(c.until) {
			t.Errorf("%s: %v until %v, want %v until %v", c.name, quiet, until, c.quiet, c.until)
		}
	}
}

// TestEffectiveSettings: the school's role default applies until the user chooses; a user
// who turned quiet hours off has none even where their role has a default.
func TestEffectiveSettings(t *testing.T) {
	c := DefaultNotifyConfig()
	if s := c.Effective(messenger.RoleTeacher, store.DefaultUserSettings()); s.Quiet == nil || s.Quiet.String() != "21:00-08:00" || !s.QuietDefault {
		t.Errorf("a teacher who never chose: %+v", s)
	}
	if s := c.Effective(messenger.RoleParent, store.DefaultUserSettings()); s.Quiet != nil {
		t.Errorf("a parent who never chose: %+v", s.Quiet)
	}
	off := store.DefaultUserSettings()
	off.QuietCustom = true
	if s := c.Effective(messenger.RoleTeacher, off); s.Quiet != nil {
		t.Errorf("a teacher who turned it off: %+v", s.Quiet)
	}
	if q, err := ParseQuietHours("22:30-06:15"); err != nil || q.From != 22*60+30 || q.To != 6*60+15 {
		t.Errorf("ParseQuietHours: %+v, %v", q, err)
	}
	for _, bad := range []string{"21:00", "25:00-08:00", "08:00-08:00", "9pm-8am"} {
		if _, err := ParseQuietHours(bad); err == nil {
			t.Errorf("ParseQuietHours(%q) accepted", bad)
		}
	}
}

// TestKeywords: keywords match after NFC and without Latin case; a list or a word over the
// caps is refused with its limit named, never cut silently.
func TestKeywords(t *testing.T) {
	c := DefaultNotifyConfig()
	kw, err := CleanKeywords([]string{"  숙제 ", "Field Trip", "숙제", "", "\t"}, c)
	if err != nil || strings.Join(kw, "|") != "숙제|field trip" {
		t.Fatalf("CleanKeywords: %q, %v", kw, err)
	}
	decomposed := norm.NFD.String("내일 숙제 있어요")
	if !MatchKeywords(kw, decomposed) {
		t.Error("Korean typed decomposed does not match")
	}
	if !MatchKeywords(kw, "The FIELD TRIP is on Friday") {
		t.Error("Latin in another case does not match")
	}
	if MatchKeywords(kw, "급식 메뉴") {
		t.Error("a message without the words matches")
	}
	if !MatchKeywords(nil, "anything") {
		t.Error("no keywords must let every message through")
	}
	// A keyword typed decomposed is stored composed.
	if kw, _ := CleanKeywords([]string{norm.NFD.String("한글")}, c); kw[0] != "한글" {
		t.Errorf("stored %q, want NFC", kw[0])
	}

	many := make([]string, 1000)
	for i := range many {
		many[i] = "w" + strings.Repeat("x", i%40) + string(rune('a'+i%26))
	}
	if _, err := CleanKeywords(many, c); !errors.Is(err, ErrTooManyKeywords) || !strings.Contains(messenger.ErrorMessage(err), "50") {
		t.Errorf("1000 keywords: %v", err)
	}
	if _, err := CleanKeywords([]string{strings.Repeat("가", 10240)}, c); !errors.Is(err, ErrKeywordTooLong) || messenger.ErrorCode(err) != messenger.ETOOLARGE {
		t.Errorf("a 10 KB keyword: %v (%s)", err, messenger.ErrorCode(err))
	}
	if _, err := CleanKeywords([]string{"a\u202eb"}, c); !errors.Is(err, ErrKeywordCharacter) {
		t.Errorf("a text-direction control: %v", err)
	}
}

// TestLoadZone: IANA names only.
func TestLoadZone(t *testing.T) {
	for _, ok := range []string{"Asia/Seoul", "UTC", "America/Argentina/Buenos_Aires"} {
		if _, err := LoadZone(ok); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Local", "Mars/Olympus", "../../etc/passwd", "Asia/Seoul\n", strings.Repeat("A", 70)} {
		if _, err := LoadZone(bad); !errors.Is(err, ErrUnknownZone) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
