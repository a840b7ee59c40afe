package chat

import (
	"sync"
	"time"

	"github.com/dreamseed/messenger"
)

// maxRunTails bounds the conversations lastMessages remembers; past it, it starts over.
const maxRunTails = 1 << 16

// lastMessages remembers the last message this process stored in each conversation (what
// messenger.JoinsRun reads of it), so that a send knows whether its message continues the
// run of the one before without a read: the store reads that message only when the one
// remembered is not just before (another process or a file stored one since, or this
// process never stored one there).
type lastMessages struct {
	mu sync.Mutex
	m  map[int64]runTail
}

type runTail struct {
	seq, sender int64
	kind        string
	at          time.Time
}

// get answers the last message remembered of conv, or nil.
func (l *lastMessages) get(conv int64) *messenger.Message {
	l.mu.Lock()
	t, ok := l.m[conv]
	l.mu.Unlock()
	if !ok {
		return nil
	}
	return &messenger.Message{ConversationID: conv, Seq: t.seq, Kind: t.kind,
		Sender: messenger.User{ID: t.sender}, CreatedAt: t.at}
}

// stored remembers m as its conversation's last message, unless a later one is.
func (l *lastMessages) stored(m messenger.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.m[m.ConversationID]; ok && t.seq >= m.Seq {
		return
	}
	if l.m == nil || len(l.m) >= maxRunTails {
		l.m = make(map[int64]runTail)
	}
	l.m[m.ConversationID] = runTail{seq: m.Seq, sender: m.Sender.ID, kind: m.Kind,
		at: m.CreatedAt}
}
