package views

import (
	"time"

	"github.com/dreamseed/messenger"
)

// groupWindow is how close in time consecutive messages of one sender must be to share
// one name and avatar.
const groupWindow = 5 * time.Minute

// ThreadItem is one row of a thread: a message, preceded by a day separator when it starts
// a new day.
type ThreadItem struct {
	Msg        messenger.Message
	DayStart   bool // a day separator goes before this message
	Mine       bool
	FirstInRun bool // first of consecutive messages by one sender: show name and avatar
	LastInRun  bool // last of them: show the time
}

// ThreadItems lays out messages (oldest first) as rows: day separators, and runs of
// consecutive messages by the same sender within five minutes.
func ThreadItems(msgs []messenger.Message, viewerID int64) []ThreadItem {
	items := make([]ThreadItem, len(msgs))
	for i, m := range msgs {
		it := ThreadItem{Msg: m, Mine: m.Sender.ID == viewerID && m.Kind != messenger.MessageSystem}
		if i == 0 || !sameDay(msgs[i-1].CreatedAt.In(Seoul), m.CreatedAt.In(Seoul)) {
			it.DayStart = true
		}
		it.FirstInRun = it.DayStart || !sameRun(msgs[i-1], m)
		it.LastInRun = i == len(msgs)-1 || !sameRun(m, msgs[i+1]) ||
			!sameDay(m.CreatedAt.In(Seoul), msgs[i+1].CreatedAt.In(Seoul))
		items[i] = it
	}
	return items
}

func sameRun(a, b messenger.Message) bool {
	return a.Kind != messenger.MessageSystem && b.Kind != messenger.MessageSystem &&
		a.Sender.ID == b.Sender.ID && b.CreatedAt.Sub(a.CreatedAt) < groupWindow
}
