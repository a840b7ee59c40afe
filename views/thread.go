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
	Read     ReadState // empty for rows rendered without it: app.js fills the markers in
	DayStart bool      // a day separator goes before this message
	Mine     bool
	RunStart bool // first of consecutive messages by one sender: show name and avatar
	RunEnd   bool // last of them: show the time
	// Live marks a row sent on its own (an event, a send's answer): it carries what the
	// list's row needs (sender's name, preview, time), which a thread page leaves out.
	Live bool
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
	return ThreadItem{Msg: m, Mine: IsMine(m, viewerSub), DayStart: true, RunStart: true, RunEnd: true, Live: true}
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
// watermark, by portal id. A zone's announcements have the whole zone as members: there
// only the viewer's own watermark is sent to the page, Members counts them, and each
// message's ReadCount says how many read it.
type ReadState struct {
	Kind    string
	Marks   map[string]int64
	Members int64 // announcements only
}

// Readers answers how many members other than its sender have read message m, and how
// many have not yet.
func (r ReadState) Readers(m messenger.Message) (read, unread int) {
	if r.Kind == messenger.KindAnnouncement {
		read = int(m.ReadCount)
		return read, max(0, int(r.Members)-1-read)
	}
	for sub, seq := range r.Marks {
		if sub == m.Sender.Sub {
			continue
		}
		if seq >= m.Seq {
			read++
		} else {
			unread++
		}
	}
	return read, unread
}

// ReadLabel answers the read marker of a message: on my messages "✓" / "✓✓" in a direct
// conversation and "3명이 읽음" in a group; on every group message the count of members who
// have not read it (KakaoTalk's number), "" when there is nothing to show.
func ReadLabel(ctx context.Context, r ReadState, m messenger.Message, mine bool) (label, unreadCount string) {
	if m.Kind == messenger.MessageSystem || r.Marks == nil {
		return "", ""
	}
	read, unread := r.Readers(m)
	if r.Kind == messenger.KindDirect {
		if !mine {
			return "", ""
		}
		if read > 0 {
			return "✓✓", ""
		}
		return "✓", ""
	}
	if unread > 0 {
		unreadCount = Badge(int64(unread))
	}
	if mine && read > 0 {
		label = Tf(ctx, "read.count", read)
	}
	return label, unreadCount
}
