package chat

import (
	"testing"
	"time"

	"github.com/dreamseed/messenger"
)

// TestLastMessages: a conversation's last message is the one of the highest seq stored,
// whatever order the batches published in, and the memory stays bounded.
func TestLastMessages(t *testing.T) {
	var l lastMessages
	if l.get(1) != nil {
		t.Fatal("a conversation never stored in has a last message")
	}
	at := time.Date(2026, 11, 30, 8, 40, 0, 0, time.UTC)
	l.stored(messenger.Message{ConversationID: 1, Seq: 5, Kind: messenger.MessageText, Sender: messenger.User{ID: 7}, CreatedAt: at})
	l.stored(messenger.Message{ConversationID: 1, Seq: 4, Sender: messenger.User{ID: 8}})
	got := l.get(1)
	if got == nil || got.Seq != 5 || got.Sender.ID != 7 || got.Kind != messenger.MessageText || !got.CreatedAt.Equal(at) {
		t.Fatalf("last of 1 = %+v, want seq 5 by 7 at %v", got, at)
	}
	for c := int64(2); c <= maxRunTails+1; c++ {
		l.stored(messenger.Message{ConversationID: c, Seq: 1})
	}
	if n := len(l.m); n > maxRunTails {
		t.Errorf("%d conversations remembered, want at most %d", n, maxRunTails)
	}
}
