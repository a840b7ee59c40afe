package chat

import (
	"testing"
	"time"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/store"
)

// FuzzCursor: any cursor string decodes without panic into a cursor the database can take
// (a time from 1970 to 9999, a positive id) or an invalid error, and a decoded cursor
// reads back the same once encoded.
func FuzzCursor(f *testing.F) {
	f.Add(encodeCursor(store.ConversationCursor{At: time.Date(2026, 3, 2, 9, 0, 0, 123000, time.UTC), ID: 12}))
	f.Add("LTkyMjMzNzIwMzY4NTQ3NzU4MDguMQ") // -9223372036854775808.1
	f.Add("MC4x")                           // 0.1
	f.Add("")
	f.Add("!!")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor(s)
		if err != nil {
			if messenger.ErrorCode(err) != messenger.EINVALID {
				t.Fatalf("decodeCursor(%q): %v", s, err)
			}
			return
		}
		if c == nil {
			if s != "" {
				t.Fatalf("decodeCursor(%q) = nil, no error", s)
			}
			return
		}
		if c.ID <= 0 || c.At.Year() < 1970 || c.At.Year() > 9999 {
			t.Fatalf("decodeCursor(%q) = %+v: out of range", s, c)
		}
		again, err := decodeCursor(encodeCursor(*c))
		if err != nil || !again.At.Equal(c.At) || again.ID != c.ID {
			t.Fatalf("decodeCursor(%q) = %+v, encoded and decoded again %+v, %v", s, c, again, err)
		}
	})
}
