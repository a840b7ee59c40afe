package views

import (
	"context"
	"time"

	"github.com/dreamseed/messenger"
)

// ThreadItem is one row of a thread: a message, preceded by a day separator when it starts
// a new day.
type ThreadItem struct {
	Msg      messenger.Message
	Read     ReadState // an announcement's counts; empty for rows rendered without them
	DayStart bool      // a day separator goes before this message
	Mine     bool
	RunStart bool // first of a run (messenger.JoinsRun): show name and avatar
	RunEnd   bool // last of it: show the time
}

// ThreadItems lays out messages (oldest first, seqs in a row) as rows: day separators,
// and runs of one sender (messenger.JoinsRun), each message's JoinsPrevious as the store
// gave it. The first row starts a run here; the browser joins it to the row shown before
// it when that is the message it continues (app.js relayout, applying the same flag).
func ThreadItems(msgs []messenger.Message, viewerSub string, read ReadState) []ThreadItem {
	items := make([]ThreadItem, len(msgs))
	for i, m := range msgs {
		it := ThreadItem{Msg: m, Mine: IsMine(m, viewerSub), Read: read}
		it.DayStart = i == 0 || DayKey(msgs[i-1].CreatedAt) != DayKey(m.CreatedAt)
		it.RunStart = i == 0 || !joins(msgs[i-1], m)
		it.RunEnd = i == len(msgs)-1 || !joins(m, msgs[i+1])
		items[i] = it
	}
	return items
}

// joins reports whether b continues a's run: b joins the message before it, and that is a.
func joins(a, b messenger.Message) bool { return b.JoinsPrevious && b.Seq == a.Seq+1 }

// LiveItem lays out one message on its own, as it arrives live: a run of one, carrying
// whether it joins the message before it, which the browser applies to the rows around it.
func LiveItem(m messenger.Message, viewerSub string) ThreadItem {
	return ThreadItem{Msg: m, Mine: IsMine(m, viewerSub), DayStart: true, RunStart: true, RunEnd: true}
}

// IsMine reports whether viewer sent m (system notices belong to nobody).
func IsMine(m messenger.Message, viewerSub string) bool {
	return m.Kind != messenger.MessageSystem && m.Sender.Sub == viewerSub
}

// DayKey answers the Seoul calendar day of t, as "2026-11-25".
func DayKey(t time.Time) string { return t.In(Seoul).Format("2006-01-02") }

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
	read, unread := readCounts(r, m, mine)
	if unread > 0 {
		unreadCount = Badge(int64(unread))
	}
	if read > 0 {
		label = Tf(ctx, "read.count", read)
	}
	return label, unreadCount
}

// readCounts answers the counts of ReadLabel: how many read the message (mine only) and
// how many members have not; zero for what shows neither (not an announcement, or a
// system notice).
func readCounts(r ReadState, m messenger.Message, mine bool) (read, unread int) {
	if r.Kind != messenger.KindAnnouncement || m.Kind == messenger.MessageSystem {
		return 0, 0
	}
	unread = max(0, int(r.Members)-1-int(m.ReadCount))
	if mine {
		read = int(m.ReadCount)
	}
	return read, unread
}

// SpokenHead is who sent a message and when, as a screen reader reads it before the
// message: "김선영, 오후 3:04" ("나, …" for mine); the time alone for a system notice.
func SpokenHead(ctx context.Context, it ThreadItem) string {
	when := ClockTime(ctx, it.Msg.CreatedAt)
	switch {
	case it.Msg.Kind == messenger.MessageSystem:
		return when
	case it.Mine:
		return T(ctx, "msg.sr.me") + ", " + when
	default:
		return it.Msg.Sender.Name + ", " + when
	}
}

// SpokenRead is the read state said after SpokenHead (", 2명이 읽음, 3명 안 읽음") as far
// as the server words it, ReadLabel's in words: an announcement's; awareness.js words the
// others'.
func SpokenRead(ctx context.Context, it ThreadItem) string {
	read, unread := readCounts(it.Read, it.Msg, it.Mine)
	out := ""
	if read > 0 {
		out += ", " + Tf(ctx, "read.count", read)
	}
	if unread > 0 {
		out += ", " + Tf(ctx, "read.sr.unread", unread)
	}
	return out
}
