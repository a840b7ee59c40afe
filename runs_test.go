package messenger_test

import (
	"testing"
	"time"

	"github.com/dreamseed/messenger"
)

// TestJoinsRun: a message continues the run of the one before it only when one person
// sent both, neither is a system notice, it came less than five minutes later and on the
// same Seoul day.
func TestJoinsRun(t *testing.T) {
	kim := messenger.User{ID: 1, Sub: "kim"}
	lee := messenger.User{ID: 2, Sub: "lee"}
	at := time.Date(2026, 11, 25, 14, 0, 0, 0, messenger.Seoul)
	msg := func(u messenger.User, kind string, t time.Time) messenger.Message {
		return messenger.Message{Sender: u, Kind: kind, CreatedAt: t}
	}
	text, file, system := messenger.MessageText, messenger.MessageFile, messenger.MessageSystem
	for _, tt := range []struct {
		name       string
		prev, m    messenger.Message
		wantJoined bool
	}{
		{"same sender a minute later", msg(kim, text, at), msg(kim, text, at.Add(time.Minute)), true},
		{"same sender, same instant (one batch)", msg(kim, text, at), msg(kim, text, at), true},
		{"a file after a text", msg(kim, text, at), msg(kim, file, at.Add(time.Minute)), true},
		{"just under five minutes", msg(kim, text, at), msg(kim, text, at.Add(messenger.RunWindow-time.Millisecond)), true},
		{"five minutes", msg(kim, text, at), msg(kim, text, at.Add(messenger.RunWindow)), false},
		{"someone else", msg(kim, text, at), msg(lee, text, at.Add(time.Second)), false},
		{"after a system notice", msg(kim, system, at), msg(kim, text, at.Add(time.Second)), false},
		{"a system notice", msg(kim, text, at), msg(kim, system, at.Add(time.Second)), false},
		{"no message before", messenger.Message{}, msg(kim, text, at), false},
		// Times are each transaction's start: the next seq may be a little older.
		{"a little older", msg(kim, text, at), msg(kim, text, at.Add(-time.Millisecond)), true},
		{"a new Seoul day", msg(kim, text, time.Date(2026, 11, 25, 23, 59, 0, 0, messenger.Seoul)),
			msg(kim, text, time.Date(2026, 11, 26, 0, 1, 0, 0, messenger.Seoul)), false},
		// 23:59 and 00:01 UTC are 08:59 and 09:01 in Seoul: one day there.
		{"a new UTC day, one Seoul day", msg(kim, text, time.Date(2026, 11, 25, 23, 59, 0, 0, time.UTC)),
			msg(kim, text, time.Date(2026, 11, 26, 0, 1, 0, 0, time.UTC)), true},
	} {
		if got := messenger.JoinsRun(tt.prev, tt.m); got != tt.wantJoined {
			t.Errorf("%s: JoinsRun = %v, want %v", tt.name, got, tt.wantJoined)
		}
	}
}
