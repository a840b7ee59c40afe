package views

import (
	"context"
	"hash/fnv"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dreamseed/messenger"
)

// Seoul is the time zone the messenger shows times in; schools of the portal are in Korea.
var Seoul = messenger.Seoul

// ClockTime formats t as a time of day: "오후 3:07" / "3:07 PM".
func ClockTime(ctx context.Context, t time.Time) string {
	t = t.In(Seoul)
	half := "time.am"
	if t.Hour() >= 12 {
		half = "time.pm"
	}
	h := t.Hour() % 12
	if h == 0 {
		h = 12
	}
	return Tf(ctx, half, h, t.Minute())
}

// ListTime formats the time of a conversation's last activity for the list: the time
// today, "어제" yesterday, the day this year, the full date before.
func ListTime(ctx context.Context, t, now time.Time) string {
	t, now = t.In(Seoul), now.In(Seoul)
	switch {
	case sameDay(t, now):
		return ClockTime(ctx, t)
	case sameDay(t, now.AddDate(0, 0, -1)):
		return T(ctx, "time.yesterday")
	case t.Year() == now.Year():
		return t.Format(T(ctx, "time.layout.month_day"))
	default:
		return t.Format(T(ctx, "time.layout.short_date"))
	}
}

// DayLabel formats the day separator of a thread: "2026년 11월 25일 수요일" /
// "Wednesday, November 25, 2026".
func DayLabel(ctx context.Context, t time.Time) string {
	t = t.In(Seoul)
	return Tf(ctx, "time.day_label", T(ctx, "time.weekday."+strconv.Itoa(int(t.Weekday()))), t.Format(T(ctx, "time.layout.date")))
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
	"bg-rose-700", "bg-orange-700", "bg-amber-700", "bg-lime-700",
	"bg-emerald-700", "bg-sky-700", "bg-indigo-600", "bg-fuchsia-700",
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
	at, now := t.In(Seoul), now.In(Seoul)
	d := now.Sub(at)
	switch {
	case d < time.Minute:
		return T(ctx, "last_seen.now")
	case d < time.Hour:
		return Tf(ctx, "last_seen.minutes", int(d.Minutes()))
	case sameDay(at, now):
		return Tf(ctx, "last_seen.hours", int(d.Hours()))
	case sameDay(at, now.AddDate(0, 0, -1)):
		return T(ctx, "last_seen.yesterday")
	case at.Year() == now.Year():
		return Tf(ctx, "last_seen.on", at.Format(T(ctx, "time.layout.month_day")))
	default:
		return Tf(ctx, "last_seen.on", at.Format(T(ctx, "time.layout.medium_date")))
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
