package chat

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestPushSlotAt: every message's sweep runs between Delay and Delay plus the window after
// it; the messages of a window share its sweep, and the next window's runs one window later.
func TestPushSlotAt(t *testing.T) {
	const delay = 5 * time.Second
	base := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		now := base.Add(time.Duration(rng.Int64N(int64(time.Hour))))
		w := pushSlotAt(now, delay)
		if wait := w.at.Sub(now); wait <= delay || wait > 2*delay {
			t.Fatalf("at %v: the sweep runs %v later, want in (%v, %v]", now, wait, delay, 2*delay)
		}
		if w.start.After(now) || now.Sub(w.start) >= delay || w.window != delay {
			t.Fatalf("at %v: window from %v, %v long", now, w.start, w.window)
		}
		end := w.at.Add(-delay) // the window ends here: just before, the same window; at it, the next
		if got := pushSlotAt(end.Add(-time.Nanosecond), delay); got != w {
			t.Fatalf("the window's last instant has sweep time %v, want %v", got.at, w.at)
		}
		if next := pushSlotAt(end, delay); next.at.Sub(w.at) != delay || !next.start.Equal(end) {
			t.Fatalf("the next window's sweep is %v later, from %v; want %v, from %v", next.at.Sub(w.at), next.start, delay, end)
		}
	}
	// A window below a second is a second.
	if w := pushSlotAt(base.Add(300*time.Millisecond), 0); w.at.Sub(base) != time.Second || w.window != time.Second {
		t.Fatalf("no delay: the sweep runs at %v, want a second after %v", w.at, base)
	}
}
