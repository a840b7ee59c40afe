package upload

import (
	"mime"
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/dreamseed/messenger"
)

func TestCleanFileName(t *testing.T) {
	nfd := norm.NFD.String("가정통신문.hwp")
	long := strings.Repeat("가", 300) + ".pdf"
	tests := []struct {
		in, want string
	}{
		{"photo.jpg", "photo.jpg"},
		{nfd, "가정통신문.hwp"},
		{"../../etc/passwd", "passwd"},
		{`C:\Users\선생님\Desktop\현장학습 동의서.pdf`, "현장학습 동의서.pdf"},
		{"C:report.docx", "report.docx"},
		{"  spaced name.txt  ", "spaced name.txt"},
		{"", DefaultFileName},
		{"..", DefaultFileName},
		{"folder/", DefaultFileName},
		{long, strings.Repeat("가", DefaultMaxNameRunes-4) + ".pdf"},
		{strings.Repeat("a", 300), strings.Repeat("a", DefaultMaxNameRunes)},
		{strings.Repeat("b", 250) + ".notanextensionbutwords", strings.Repeat("b", DefaultMaxNameRunes)},
	}
	for _, tt := range tests {
		got, err := CleanFileName(tt.in, 0)
		if err != nil || got != tt.want {
			t.Errorf("CleanFileName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestCleanFileNameRefuses(t *testing.T) {
	for _, name := range []string{
		"report\x00.pdf.exe",
		"photo\u202Egnp.exe", // shows as "photoexe.png"
		"photo\u2067gnp\u2069.exe",
		"line\nbreak.txt",
		"bell\a.txt",
		"sep\u2028.txt",
		"bad\xffutf8.txt",
	} {
		got, err := CleanFileName(name, 0)
		if messenger.ErrorCode(err) != messenger.EINVALID {
			t.Errorf("CleanFileName(%q) = %q, %v; want refused", name, got, err)
		}
	}
}

func TestContentDisposition(t *testing.T) {
	name := `가정통신문 "11월" 100%; a\b.pdf`
	h := ContentDisposition(name)
	disposition, params, err := mime.ParseMediaType(h)
	if err != nil {
		t.Fatalf("ParseMediaType(%q): %v", h, err)
	}
	// mime decodes filename* and prefers it, as browsers do.
	if disposition != "attachment" || params["filename"] != name {
		t.Fatalf("parsed %q %q, want attachment %q", disposition, params, name)
	}
	fallback := h[strings.Index(h, `filename="`)+len(`filename="`) : strings.Index(h, `";`)]
	if fallback != `_____ _11__ 100__ a_b.pdf` {
		t.Fatalf("ASCII fallback %q", fallback)
	}
	encoded := h[strings.Index(h, "UTF-8''")+len("UTF-8''"):]
	if decoded, err := url.PathUnescape(encoded); err != nil || decoded != name {
		t.Fatalf("filename* %q decodes to %q, %v", encoded, decoded, err)
	}
}

func FuzzCleanFileName(f *testing.F) {
	for _, s := range []string{"photo.jpg", "../../x", `C:\a\b.txt`, "a\x00b", "photo\u202Egnp.exe", strings.Repeat("가", 300) + ".pdf", norm.NFD.String("한글.hwp"), "C: C:x", "   ", "." + strings.Repeat("e\u0301", 150)} {
		f.Add(s, 0)
		f.Add(s, 10)
	}
	f.Fuzz(func(t *testing.T, name string, maxRunes int) {
		maxRunes %= 300
		got, err := CleanFileName(name, maxRunes)
		if err != nil {
			if messenger.ErrorCode(err) != messenger.EINVALID {
				t.Fatalf("error %v", err)
			}
			return
		}
		limit := maxRunes
		if limit <= 0 {
			limit = DefaultMaxNameRunes
		}
		limit = max(limit, minNameRunes)
		if got == "" || !utf8.ValidString(got) || !norm.NFC.IsNormalString(got) || utf8.RuneCountInString(got) > limit {
			t.Fatalf("CleanFileName(%q, %d) = %q: empty, invalid, not NFC or too long", name, maxRunes, got)
		}
		if strings.ContainsAny(got, `/\`) || got != strings.TrimSpace(got) || got == "." || got == ".." {
			t.Fatalf("CleanFileName(%q) = %q keeps a path or spaces", name, got)
		}
		for _, c := range got {
			if unicode.IsControl(c) || messenger.IsBidiControl(c) {
				t.Fatalf("CleanFileName(%q) = %q keeps %U", name, got, c)
			}
		}
		if again, err := CleanFileName(got, maxRunes); err != nil || again != got {
			t.Fatalf("CleanFileName is not idempotent: %q → %q → %q, %v", name, got, again, err)
		}
		if _, params, err := mime.ParseMediaType(ContentDisposition(got)); err != nil || params["filename"] != got {
			t.Fatalf("ContentDisposition(%q) parses to %q, %v", got, params, err)
		}
	})
}
