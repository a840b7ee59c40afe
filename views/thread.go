package views

import (
	"context"
	"time"

	"github.com/dreamseed/messenger"
)

// groupWindow is how close in time consecutive messages of one sender must be to share
// one name and avatar.
const groupWindow = 5 * time.Minute

// ThreadItem is one row of a thread: a message, preceded by a day separator when it starts
// a new day.
type ThreadItem struct {
	Msg      messenger.Message
	Read     ReadState // an announcement's counts; empty for rows rendered without them
	DayStart bool      // a day separator goes before this message
	Mine     bool
	RunStart bool // first of consecutive messages by one sender: show name and avatar
	RunEnd   bool // last of them: show the time
}

// ThreadItems lays out messages (oldest first) as rows: day separators, and runs of
// consecutive messages by the same sender within five minutes. The browser applies the
// same rules (app.js) to messages that arrive live.
func ThreadItems(msgs []messenger.Message, viewerSub string, read ReadState) []ThreadItem {
	items := make([]ThreadItem, len(msgs))
	for i, m := range msgs {
		it := ThreadItem{Msg: m, Mine: IsMine(m, viewerSub), Read: read}
		it.DayStart = i == 0 || DayKey(msgs[i-1].CreatedAt) != DayKey(m.CreatedAt)
		it.RunStart = it.DayStart || !sameRun(msgs[i-1], m)
		it.RunEnd = i == len(msgs)-1 || !sameRun(m, msgs[i+1]) || DayKey(m.CreatedAt) != DayKey(msgs[i+1].CreatedAt)
		items[i] = it
	}
	return items
}

// LiveItem lays out one message on its own, as it arrives live: the browser joins it to
// its neighbours.
func LiveItem(m messenger.Message, viewerSub string) ThreadItem {
	return ThreadItem{Msg: m, Mine: IsMine(m, viewerSub), DayStart: true, RunStart: true, RunEnd: true}
}

// IsMine reports whether viewer sent m (system notices belong to nobody).
func IsMine(m messenger.Message, viewerSub string) bool {
	return m.Kind != messenger.MessageSystem && m.Sender.Sub == viewerSub
}

// DayKey answers the Seoul calendar day of t, as "2026-11-25".
func DayKey(t time.Time) string { return t.In(Seoul).Format("2006-01-02") }

func sameRun(a, b messenger.Message) bool {
	return a.Kind != messenger.MessageSystem && b.Kind != messenger.MessageSystem &&
		a.Sender.Sub == b.Sender.Sub && b.CreatedAt.Sub(a.CreatedAt) < groupWindow
}

// ReadState is what is known of who read how far in a conversation: each active member's
// watermark, by portal id (the thread's data-marks, from which awareness.js words the
// markers of direct and group conversations). A zone's announcements have the whole zone
// as members: there only the viewer's own watermark is sent to the page, Members counts
// them, and each message's ReadCount says how many read it.
type ReadState struct {
	Kind    string
	Marks   map[string]int64
	Members int64 // announcements only
}

// ReadLabel answers the read markers the server words, an announcement's: "3명이 읽음" on
// mine and, on every one, how many members have not read it; "" when there is nothing to
// show. A direct or group conversation's markers (✓ / ✓✓, "N명이 읽음", the unread count)
// are awareness.js's alone, from data-marks: they change with each member's receipt,
// which the page applies as it comes, where the server would render every row again for
// every member with the thread open. An announcement's counts come from the database
// (the zone is too large for watermarks on the page) and stand as rendered.
func ReadLabel(ctx context.Context, r ReadState, m messenger.Message, mine bool) (label, unreadCount string) {
	if r.Kind != messenger.KindAnnouncement || m.Kind == messenger.MessageSystem {
		return "", ""
	}
	read := int(m.ReadCount)
	if unread := max(0, int(r.Members)-1-read); unread > 0 {
		unreadCount = Badge(int64(unread))
	}
	if mine && read > 0 {
		label = Tf(ctx, "read.count", read)
	}
	return label, unreadCount
}
