package chat

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestPushWindowAt: every message's job runs between Delay and Delay plus the window after
// it; the messages of a window share its time, the next window's is one window later and
// falls in another of River's unique periods; and the conversations' windows end spread
// over the window, not all at once.
func TestPushWindowAt(t *testing.T) {
	const delay = 5 * time.Second
	base := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(1, 2))
	for conv := int64(1); conv <= 2000; conv++ {
		now := base.Add(time.Duration(rng.Int64N(int64(time.Hour))))
		w := pushWindowAt(conv, now, delay)
		if w.conv != conv {
			t.Fatalf("conversation %d: window of %d", conv, w.conv)
		}
		wait := w.at.Sub(now)
		if wait <= delay || wait > 2*delay {
			t.Fatalf("conversation %d at %v: the job runs %v later, want in (%v, %v]", conv, now, wait, delay, 2*delay)
		}
		end := w.at.Add(-delay) // the window ends here: just before, the same window; at it, the next
		if got := pushWindowAt(conv, end.Add(-time.Nanosecond), delay); got != w {
			t.Fatalf("conversation %d: the window's last instant has job time %v, want %v", conv, got.at, w.at)
		}
		next := pushWindowAt(conv, end, delay)
		if next.at.Sub(w.at) != delay {
			t.Fatalf("conversation %d: the next window's job is %v later, want %v", conv, next.at.Sub(w.at), delay)
		}
		if next.at.Truncate(delay).Equal(w.at.Truncate(delay)) {
			t.Fatalf("conversation %d: two windows in one unique period", conv)
		}
	}
	// The conversations' window ends spread over the window: in each tenth of it, about a tenth.
	var tenths [10]int
	for conv := int64(1); conv <= 2000; conv++ {
		end := pushWindowAt(conv, base, delay).at.Add(-delay)
		tenths[int(end.Sub(base)*10/delay)%10]++
	}
	for i, n := range tenths {
		if n < 150 || n > 250 {
			t.Fatalf("%d of 2,000 conversations' windows end in tenth %d of the window, want about 200: %v", n, i, tenths)
		}
	}
	// A window below a second is a second.
	if w := pushWindowAt(7, base, 0); w.at.Sub(base) <= 0 || w.at.Sub(base) > time.Second {
		t.Fatalf("no delay: the job runs %v later, want within a second", w.at.Sub(base))
	}
}
