package messenger

import "time"

// RunWindow is how close in time consecutive messages of one sender must be to share one
// name and avatar.
const RunWindow = 5 * time.Minute

// Seoul is the time zone the messenger shows times and days in; schools of the portal are
// in Korea.
var Seoul = loadSeoul()

func loadSeoul() *time.Location {
	loc, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		return time.FixedZone("KST", 9*60*60)
	}
	return loc
}

// JoinsRun reports whether m continues the run of prev, the message before it in its
// conversation (seq one less): both sent by one person, neither a system notice, m less
// than RunWindow after prev and on the same Seoul day. A run shows its sender's name and
// avatar on its first message and the time on its last. This is the one place the rule
// is written: pages lay rows out by it, and a message carries its answer
// (Message.JoinsPrevious) to the browser, which only applies it.
func JoinsRun(prev, m Message) bool {
	if prev.Kind == MessageSystem || m.Kind == MessageSystem || prev.Sender.ID == 0 || prev.Sender.ID != m.Sender.ID {
		return false
	}
	// A message's time is its transaction's start, so the next seq may be a little older.
	return m.CreatedAt.Sub(prev.CreatedAt) < RunWindow && sameDay(prev.CreatedAt, m.CreatedAt)
}

func sameDay(a, b time.Time) bool {
	a, b = a.In(Seoul), b.In(Seoul)
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd
}
