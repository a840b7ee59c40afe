package messenger

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestCleanBody(t *testing.T) {
	flood := "z" + strings.Repeat("\u0301", MaxCombiningRun+1)
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"안녕하세요", "안녕하세요", true},
		{"  숙제 \n\n", "숙제", true},
		{"one\rtwo\r\nthree", "one\ntwo\nthree", true},
		{"hello\rid: evil\rretry: 60000\r\r", "hello\nid: evil\nretry: 60000", true},
		{"a\tb", "a\tb", true},
		{"abc \u202edcb", "abc \u202edcb", true}, // kept, rendered isolated
		{"👨\u200d👩\u200d👧\u200d👦 1\ufe0f\u20e3", "👨\u200d👩\u200d👧\u200d👦 1\ufe0f\u20e3", true}, // ZWJ and keycap sequences
		{"ệ" + strings.Repeat("\u0301", MaxCombiningRun-1), "ệ" + strings.Repeat("\u0301", MaxCombiningRun-1), true},
		{"e" + strings.Repeat("\u0301", MaxCombiningRun), "e" + strings.Repeat("\u0301", MaxCombiningRun), true},
		{flood, "", false},
		// A joiner or a variation selector between marks does not start a new stack.
		{"a" + strings.Repeat(strings.Repeat("\u0301", MaxCombiningRun)+"\u200d", 12), "", false},
		{"a" + strings.Repeat(strings.Repeat("\u0301", MaxCombiningRun)+"\ufe0f", 2), "", false},
		{"one\u2028two\u2029three", "one\ntwo\nthree", true},
		{"a\x00b", "", false},
		{"\x1b[2J", "", false},
		{"x\x7f", "", false},
		{"x\u0085y", "", false},
		{"x\u009by", "", false},
		{"\xff", "", false},
		{"", "", false},
		{" \n\t\r\n ", "", false},
		{"\u200b\u200c\u200d\u2060\ufeff", "", false},
		{"\u3164\u115f\u1160\uffa0\u2800\u3000", "", false},
		{"\u202e\u2066", "", false},
		{"\u0301\u0302", "", false},
		{strings.Repeat("가", MaxMessageLength), strings.Repeat("가", MaxMessageLength), true},
		{strings.Repeat("가", MaxMessageLength+1), "", false},
	}
	for _, tt := range tests {
		got, err := CleanBody(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("CleanBody(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && ErrorCode(err) != EINVALID {
			t.Errorf("CleanBody(%q) error code %q, want invalid", tt.in, ErrorCode(err))
		}
	}
}

func TestCleanTitle(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{" 3학년 2반 ", "3학년 2반", true},
		{"", "", true},
		{"\u200b \u3164", "", true}, // shows nothing: untitled
		{strings.Repeat("반", MaxTitleLength), strings.Repeat("반", MaxTitleLength), true},
		{strings.Repeat("반", MaxTitleLength+1), "", false},
		{"반\n공지", "", false},
		{"반\u2028공지", "", false},
		{"반\u2029공지", "", false},
		{"반\r", "반", true}, // trimmed away
		{"반\t공지", "", false},
		{"반\x00", "", false},
		{"반\u0085공지", "", false},
		{"반 \u202egnp.exe", "", false},
		{"\u202a반", "", false},
		{"\u2066반\u2069", "", false},
		{"\u200f반", "\u200f반", true}, // a direction mark stays
		{"반" + strings.Repeat("\u0300", MaxCombiningRun+1), "", false},
		{"\xc3", "", false},
	}
	for _, tt := range tests {
		got, err := CleanTitle(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("CleanTitle(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{
		"김민준":                                "김민준",
		"  김민준\t선생님\r\n":                     "김민준 선생님",
		"\u202e김민준\u202c":                    "김민준",
		"\u2067Jane\u2069 Doe":               "Jane Doe",
		"a\x00b\x1bc\u0085d":                 "abcd",
		"\u200b\u202e\x00":                   "",
		"":                                   "",
		"Zoë" + strings.Repeat("\u0308", 20): "Zoë" + strings.Repeat("\u0308", MaxCombiningRun),
		"bad\xffutf8":                        "bad\ufffdutf8",
		"a" + strings.Repeat(strings.Repeat("\u0301", 6)+"\u200d", 3): "a" + strings.Repeat("\u0301", 6) + "\u200d" + strings.Repeat("\u0301", 2) + "\u200d\u200d",
	} {
		if got := CleanName(in); got != want {
			t.Errorf("CleanName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidID(t *testing.T) {
	for in, want := range map[string]bool{
		"portal-77": true, "teacher@school.example": true, "학생-1": true,
		"a\x00": false, "a\nb": false, "\u0085": false, "\xff": false,
		"a\u2028b": false, "evil\u202e@school.example": false, "\u2066x": false,
	} {
		if got := ValidID(in); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", in, got, want)
		}
	}
}

// checkClean holds what every cleaned text promises: valid UTF-8, no control character
// but those allowed, no combining-mark flood, no leading or trailing space, and
// something that shows.
func checkClean(t *testing.T, fn, in, out, allowed string) {
	t.Helper()
	switch {
	case !utf8.ValidString(out):
		t.Fatalf("%s(%q) = %q: not UTF-8", fn, in, out)
	case hasControl(out, allowed):
		t.Fatalf("%s(%q) = %q holds a control character", fn, in, out)
	case combiningFlood(out):
		t.Fatalf("%s(%q) = %q stacks too many combining marks", fn, in, out)
	case out != strings.TrimSpace(out):
		t.Fatalf("%s(%q) = %q is not trimmed", fn, in, out)
	case out != "" && IsBlank(out):
		t.Fatalf("%s(%q) = %q shows nothing", fn, in, out)
	}
}

// FuzzCleanBody: a body CleanBody accepts holds no C0/C1 control but tab and LF, no CR,
// shows something, is within the length limit, and is cleaned already (cleaning it again
// changes nothing); a body it refuses gets the invalid code.
func FuzzCleanBody(f *testing.F) {
	for _, s := range []string{"안녕", "a\r\nb\rc", "\x00", "\u200b", "e\u0301\u0301", "\u202eabc", "\t x \n", "\xff\xfe", "z" + strings.Repeat("\u0300", 9)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := CleanBody(in)
		if err != nil {
			if ErrorCode(err) != EINVALID || out != "" {
				t.Fatalf("CleanBody(%q) = %q, %v", in, out, err)
			}
			return
		}
		checkClean(t, "CleanBody", in, out, "\t\n")
		if out == "" || utf8.RuneCountInString(out) > MaxMessageLength {
			t.Fatalf("CleanBody(%q) = %q: empty or too long", in, out)
		}
		if again, err := CleanBody(out); err != nil || again != out {
			t.Fatalf("CleanBody(CleanBody(%q)) = %q, %v; want %q", in, again, err, out)
		}
	})
}

// FuzzCleanTitle: a title CleanTitle accepts is one line without controls or
// text-direction controls, and cleaning it again changes nothing.
func FuzzCleanTitle(f *testing.F) {
	for _, s := range []string{"3학년 2반", "\u202e", "a\nb", " \u3164 ", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := CleanTitle(in)
		if err != nil {
			if ErrorCode(err) != EINVALID || out != "" {
				t.Fatalf("CleanTitle(%q) = %q, %v", in, out, err)
			}
			return
		}
		checkClean(t, "CleanTitle", in, out, "")
		if strings.IndexFunc(out, IsBidiControl) >= 0 || utf8.RuneCountInString(out) > MaxTitleLength {
			t.Fatalf("CleanTitle(%q) = %q", in, out)
		}
		if again, err := CleanTitle(out); err != nil || again != out {
			t.Fatalf("CleanTitle(CleanTitle(%q)) = %q, %v; want %q", in, again, err, out)
		}
	})
}

// FuzzCleanName: a cleaned name is one line of single spaces without controls or
// text-direction controls, keeps every letter it was given, and is cleaned already.
func FuzzCleanName(f *testing.F) {
	for _, s := range []string{"김민준", "\u202e김\u202c", "a\tb\r\nc", "\x00\x01", "Zoë\u0308\u0308"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := CleanName(in)
		checkClean(t, "CleanName", in, out, "")
		if strings.IndexFunc(out, IsBidiControl) >= 0 || strings.Contains(out, "  ") {
			t.Fatalf("CleanName(%q) = %q", in, out)
		}
		if CleanName(out) != out {
			t.Fatalf("CleanName(%q) = %q is not clean itself", in, out)
		}
		if out != "" {
			kept := make(map[rune]bool)
			for _, r := range out {
				kept[r] = true
			}
			for _, r := range strings.ToValidUTF8(in, "\uFFFD") {
				if unicode.IsLetter(r) && !kept[r] {
					t.Fatalf("CleanName(%q) = %q lost %q", in, out, r)
				}
			}
		}
	})
}
