package views

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Seoul is the time zone the messenger shows times in; schools of the portal are in Korea.
var Seoul = mustLoadLocation("Asia/Seoul")

func mustLoadLocation(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.FixedZone("KST", 9*60*60)
	}
	return loc
}

var weekdaysKo = [...]string{"일요일", "월요일", "화요일", "수요일", "목요일", "금요일", "토요일"}

// ClockTime formats t as a time of day: "오후 3:07" / "3:07 PM".
func ClockTime(ctx context.Context, t time.Time) string {
	t = t.In(Seoul)
	if Locale(ctx) == "en" {
		return t.Format("3:04 PM")
	}
	h := t.Hour()
	half := "오전"
	if h >= 12 {
		half = "오후"
	}
	h %= 12
	if h == 0 {
		h = 12
	}
	return fmt.Sprintf("%s %d:%02d", half, h, t.Minute())
}

// ListTime formats the time of a conversation's last activity for the list: the time
// today, "어제" yesterday, the day this year, the full date before.
func ListTime(ctx context.Context, t, now time.Time) string {
	t, now = t.In(Seoul), now.In(Seoul)
	en := Locale(ctx) == "en"
	switch {
	case sameDay(t, now):
		return ClockTime(ctx, t)
	case sameDay(t, now.AddDate(0, 0, -1)):
		return T(ctx, "time.yesterday")
	case t.Year() == now.Year():
		if en {
			return t.Format("Jan 2")
		}
		return fmt.Sprintf("%d월 %d일", t.Month(), t.Day())
	default:
		if en {
			return t.Format("1/2/2006")
		}
		return fmt.Sprintf("%d. %d. %d.", t.Year(), t.Month(), t.Day())
	}
}

// DayLabel formats the day separator of a thread: "2026년 11월 25일 수요일" /
// "Wednesday, November 25, 2026".
func DayLabel(ctx context.Context, t time.Time) string {
	t = t.In(Seoul)
	if Locale(ctx) == "en" {
		return t.Format("Monday, January 2, 2006")
	}
	return fmt.Sprintf("%d년 %d월 %d일 %s", t.Year(), t.Month(), t.Day(), weekdaysKo[t.Weekday()])
}

func sameDay(a, b time.Time) bool {
	return a.Year() == b.Year() && a.YearDay() == b.YearDay()
}

// Initials answers the short name shown in an avatar: the given name of a Korean name
// ("김민준" → "민준"), the initials of a Western one ("Jane Doe" → "JD").
func Initials(name string) string {
	name = strings.TrimSpace(name)
	if name == "" {
		return "?"
	}
	first, _ := utf8.DecodeRuneInString(name)
	if unicode.Is(unicode.Hangul, first) {
		runes := []rune(strings.ReplaceAll(name, " ", ""))
		if len(runes) >= 3 {
			return string(runes[len(runes)-2:])
		}
		return string(runes)
	}
	words := strings.Fields(name)
	out := string(unicode.ToUpper(first))
	if len(words) > 1 {
		r, _ := utf8.DecodeRuneInString(words[len(words)-1])
		out += string(unicode.ToUpper(r))
	}
	return out
}

var avatarColors = [...]string{
	"bg-rose-500", "bg-orange-500", "bg-amber-500", "bg-lime-600",
	"bg-emerald-600", "bg-sky-600", "bg-indigo-500", "bg-fuchsia-600",
}

// AvatarColor answers a stable background color class for key (a user's portal id).
func AvatarColor(key string) string {
	h := fnv.New32a()
	h.Write([]byte(key))
	return avatarColors[h.Sum32()%uint32(len(avatarColors))]
}

// Badge formats an unread count for a badge: "99+" above 99.
func Badge(n int64) string {
	if n > 99 {
		return "99+"
	}
	return strconv.FormatInt(n, 10)
}

// Itoa formats an int64 for attributes.
func Itoa(n int64) string { return strconv.FormatInt(n, 10) }

// LastSeen formats when someone was last connected: "방금 전 접속", "5분 전 접속",
// "3시간 전 접속", "어제 접속", then the date ("11월 20일 접속") — or "" when unknown.
func LastSeen(ctx context.Context, t *time.Time, now time.Time) string {
	if t == nil {
		return ""
	}
	en := Locale(ctx) == "en"
	at, now := t.In(Seoul), now.In(Seoul)
	d := now.Sub(at)
	switch {
	case d < time.Minute:
		if en {
			return "Active just now"
		}
		return "방금 전 접속"
	case d < time.Hour:
		if en {
			return fmt.Sprintf("Active %d min ago", int(d.Minutes()))
		}
		return fmt.Sprintf("%d분 전 접속", int(d.Minutes()))
	case sameDay(at, now):
		if en {
			return fmt.Sprintf("Active %d h ago", int(d.Hours()))
		}
		return fmt.Sprintf("%d시간 전 접속", int(d.Hours()))
	case sameDay(at, now.AddDate(0, 0, -1)):
		if en {
			return "Active yesterday"
		}
		return "어제 접속"
	case at.Year() == now.Year():
		if en {
			return "Active " + at.Format("Jan 2")
		}
		return fmt.Sprintf("%d월 %d일 접속", at.Month(), at.Day())
	default:
		if en {
			return "Active " + at.Format("Jan 2, 2006")
		}
		return fmt.Sprintf("%d년 %d월 %d일 접속", at.Year(), at.Month(), at.Day())
	}
}

// PresenceLabel is what shows beside a person: online, or when they were last seen.
func PresenceLabel(ctx context.Context, online bool, lastSeen *time.Time, now time.Time) string {
	if online {
		return T(ctx, "presence.online")
	}
	return LastSeen(ctx, lastSeen, now)
}

// TypingText is the typing indicator: "홍길동님이 입력 중...", "홍길동님, 김철수님이 입력 중...",
// "홍길동님 외 2명이 입력 중..." ("" when nobody types).
func TypingText(ctx context.Context, names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return Tf(ctx, "typing.one", names[0])
	case 2:
		return Tf(ctx, "typing.two", names[0], names[1])
	default:
		return Tf(ctx, "typing.many", names[0], len(names)-1)
	}
}
