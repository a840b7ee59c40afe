package realtime_test

import (
	"context"
	"slices"
	"testing"

	"github.com/dreamseed/messenger/realtime"
)

// TestAdmitStream: a user's streams beyond the cap evict the oldest, counted across
// both engines (processes); a disconnected stream no longer counts.
func TestAdmitStream(t *testing.T) {
	for _, k := range presenceKinds() {
		t.Run(k.name, func(t *testing.T) { testAdmitStream(t, k) })
	}
}

func testAdmitStream(t *testing.T, k presenceKind) {
	ctx := context.Background()
	a, b := k.new(t, fastPresence)
	admit := func(e realtime.Engine, conn string) []string {
		t.Helper()
		connect(t, e, 7, conn, conn == "s1")
		evicted, err := e.AdmitStream(ctx, 7, conn, 3)
		if err != nil {
			t.Fatal(err)
		}
		return evicted
	}
	for i, e := range []realtime.Engine{a, b, a} {
		if ev := admit(e, []string{"s1", "s2", "s3"}[i]); len(ev) != 0 {
			t.Fatalf("under the cap: evicted %v", ev)
		}
	}
	if ev := admit(b, "s4"); !slices.Equal(ev, []string{"s1"}) {
		t.Errorf("fourth stream evicted %v, want [s1]", ev)
	}
	disconnect(t, a, 7, "s1", false)
	// s2 went away: the fifth stream fits without evicting anybody.
	disconnect(t, b, 7, "s2", false)
	if ev := admit(a, "s5"); len(ev) != 0 {
		t.Errorf("after a disconnect: evicted %v", ev)
	}
	if ev := admit(a, "s6"); !slices.Equal(ev, []string{"s3"}) {
		t.Errorf("sixth stream evicted %v, want [s3]", ev)
	}
	// Another user's streams are theirs.
	connect(t, a, 8, "o1", true)
	if ev, err := a.AdmitStream(ctx, 8, "o1", 1); err != nil || len(ev) != 0 {
		t.Errorf("another user: evicted %v, %v", ev, err)
	}
}

// TestStreamEvicted: a stream AdmitStream evicted is known as evicted in every process
// (a stream whose notice to close was lost asks), until its connection goes; one
// admitted or unknown is not.
func TestStreamEvicted(t *testing.T) {
	for _, k := range presenceKinds() {
		t.Run(k.name, func(t *testing.T) { testStreamEvicted(t, k) })
	}
}

func testStreamEvicted(t *testing.T, k presenceKind) {
	ctx := context.Background()
	a, b := k.new(t, fastPresence)
	evicted := func(e realtime.Engine, conn string) bool {
		t.Helper()
		got, err := e.StreamEvicted(ctx, 9, conn)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	connect(t, a, 9, "e1", true)
	if _, err := a.AdmitStream(ctx, 9, "e1", 1); err != nil {
		t.Fatal(err)
	}
	if evicted(a, "e1") || evicted(b, "unknown") {
		t.Fatal("an admitted or unknown stream counts as evicted")
	}
	connect(t, b, 9, "e2", false)
	if ev, err := b.AdmitStream(ctx, 9, "e2", 1); err != nil || !slices.Equal(ev, []string{"e1"}) {
		t.Fatalf("second stream evicted %v, %v; want [e1]", ev, err)
	}
	if !evicted(a, "e1") || !evicted(b, "e1") {
		t.Error("the evicted stream is not known as evicted in both processes")
	}
	if evicted(a, "e2") {
		t.Error("the newest stream counts as evicted")
	}
	if ev, err := a.StreamEvicted(ctx, 10, "e1"); err != nil || ev {
		t.Errorf("another user's stream e1: evicted %v, %v", ev, err)
	}
	// Once its connection is gone, the next admission forgets it.
	disconnect(t, a, 9, "e1", false)
	connect(t, a, 9, "e3", false)
	if _, err := a.AdmitStream(ctx, 9, "e3", 2); err != nil {
		t.Fatal(err)
	}
	if evicted(b, "e1") {
		t.Error("a disconnected evicted stream is still remembered")
	}
}
