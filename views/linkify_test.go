package views

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLinkify(t *testing.T) {
	tests := []struct {
		in   string
		want []Segment
	}{
		{"안녕하세요", []Segment{{Text: "안녕하세요"}}},
		{"숙제: https://school.example/hw?id=3.", []Segment{{Text: "숙제: "}, {Text: "https://school.example/hw?id=3", Href: "https://school.example/hw?id=3"}, {Text: "."}}},
		{"www.dreamseed.kr 참고", []Segment{{Text: "www.dreamseed.kr", Href: "https://www.dreamseed.kr"}, {Text: " 참고"}}},
		{"javascript:alert(1)", []Segment{{Text: "javascript:alert(1)"}}},
		{"(see https://en.wikipedia.org/wiki/Seed_(plant))", []Segment{{Text: "(see "}, {Text: "https://en.wikipedia.org/wiki/Seed_(plant)", Href: "https://en.wikipedia.org/wiki/Seed_(plant)"}, {Text: ")"}}},
		{"http://", []Segment{{Text: "http://"}}},
		{"https://a.example/\u202egnp.exe", []Segment{{Text: "https://a.example/", Href: "https://a.example/"}, {Text: "\u202egnp.exe"}}},
		{"<b>x</b> https://a.example/\"onmouseover=", []Segment{{Text: "<b>x</b> "}, {Text: "https://a.example/", Href: "https://a.example/"}, {Text: "\"onmouseover="}}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, Linkify(tt.in)); diff != "" {
			t.Errorf("Linkify(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestInitials(t *testing.T) {
	for in, want := range map[string]string{"김민준": "민준", "이현": "이현", "Jane Doe": "JD", "jane": "J", " ": "?", "남궁 민수": "민수"} {
		if got := Initials(in); got != want {
			t.Errorf("Initials(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNegotiateLocale(t *testing.T) {
	tests := []struct{ user, accept, want string }{
		{"en", "ko-KR", "en"},
		{"", "en-US,en;q=0.9,ko;q=0.8", "en"},
		{"", "ko-KR,ko;q=0.9,en;q=0.8", "ko"},
		{"", "fr-FR,de", "ko"},
		{"", "", "ko"},
	}
	for _, tt := range tests {
		if got := NegotiateLocale(tt.user, tt.accept); got != tt.want {
			t.Errorf("NegotiateLocale(%q, %q) = %q, want %q", tt.user, tt.accept, got, tt.want)
		}
	}
}
