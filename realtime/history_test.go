package realtime_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dreamseed/messenger/realtime"
)

// userChannel returns a channel that keeps history, private to one test.
func userChannel(t *testing.T) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "user:test-" + hex.EncodeToString(b[:])
}

func numbered(n int) realtime.Event {
	return realtime.Event{
		Type: "message.new",
		ID:   "ignored-" + strconv.Itoa(n), // the engine assigns history IDs
		Data: json.RawMessage(`{"n":` + strconv.Itoa(n) + `}`),
	}
}

// publishIDs publishes n numbered events to a history channel and returns
// the IDs the subscription s (of channel) received them with, checking they
// strictly increase.
func publishIDs(t *testing.T, pub realtime.Engine, s *realtime.Subscription, channel string, first, n int) []string {
	t.Helper()
	for i := range n {
		publish(t, pub, channel, numbered(first+i))
	}
	ids := make([]string, n)
	for i := range n {
		d := recv(t, s)
		want := numbered(first + i)
		if d.Channel != channel || d.Event.Type != want.Type || string(d.Event.Data) != string(want.Data) {
			t.Fatalf("delivery %d: got %s %+v (data %s), want %s data %s", i, d.Channel, d.Event, d.Event.Data, channel, want.Data)
		}
		if d.Event.ID == "" || strings.HasPrefix(d.Event.ID, "ignored-") {
			t.Fatalf("delivery %d: engine did not assign an ID: %q", i, d.Event.ID)
		}
		if i > 0 {
			if c, ok := realtime.CompareEventIDs(ids[i-1], d.Event.ID); !ok || c >= 0 {
				t.Fatalf("IDs not increasing: %q then %q (compare %d, ok %v)", ids[i-1], d.Event.ID, c, ok)
			}
		}
		ids[i] = d.Event.ID
	}
	return ids
}

func history(t *testing.T, e realtime.Engine, channel, afterID string) []realtime.Event {
	t.Helper()
	evs, err := e.History(ctxT(t), channel, afterID)
	if err != nil {
		t.Fatalf("History(%s, %q): %v", channel, afterID, err)
	}
	if evs == nil {
		t.Fatalf("History(%s, %q) returned nil, want a (possibly empty) slice", channel, afterID)
	}
	return evs
}

// expectHistory checks that History after afterID is exactly the numbered
// events first.. with the given IDs.
func expectHistory(t *testing.T, e realtime.Engine, channel, afterID string, first int, ids []string) {
	t.Helper()
	evs := history(t, e, channel, afterID)
	if len(evs) != len(ids) {
		t.Fatalf("History(%q) has %d events, want %d", afterID, len(evs), len(ids))
	}
	for i, ev := range evs {
		want := numbered(first + i)
		if ev.ID != ids[i] || ev.Type != want.Type || string(ev.Data) != string(want.Data) || ev.Droppable {
			t.Fatalf("History(%q)[%d] = %+v (data %s), want id %q data %s", afterID, i, ev, ev.Data, ids[i], want.Data)
		}
	}
}

func expectGone(t *testing.T, e realtime.Engine, channel, afterID string) {
	t.Helper()
	evs, err := e.History(ctxT(t), channel, afterID)
	if !errors.Is(err, realtime.ErrHistoryGone) {
		t.Fatalf("History(%s, %q) = %d events, %v; want ErrHistoryGone", channel, afterID, len(evs), err)
	}
}

// idWithPosition keeps the epoch of id and replaces every number of its
// position by n, whatever the engine's position format.
func idWithPosition(id string, n uint64) string {
	parts := strings.Split(id, "-")
	for i := 1; i < len(parts); i++ {
		parts[i] = strconv.FormatUint(n, 10)
	}
	return strings.Join(parts, "-")
}

func testHistoryResume(t *testing.T, k engineKind) {
	pub, sub := k.new(t, 0)
	c := userChannel(t)
	s := subscribe(t, sub, c)
	ids := publishIDs(t, pub, s, c, 0, 10)

	// Both processes read the same history, which agrees with live delivery.
	for _, e := range []realtime.Engine{pub, sub} {
		expectHistory(t, e, c, ids[2], 3, ids[3:])
		expectHistory(t, e, c, ids[0], 1, ids[1:])
		expectHistory(t, e, c, ids[9], 10, nil) // newest: empty, no error
	}
	// A later publish extends the same history.
	more := publishIDs(t, pub, s, c, 10, 1)
	expectHistory(t, sub, c, ids[9], 10, more)
	if cmp, ok := realtime.CompareEventIDs(ids[9], more[0]); !ok || cmp != -1 {
		t.Fatalf("CompareEventIDs(%q, %q) = %d, %v", ids[9], more[0], cmp, ok)
	}
	if cmp, ok := realtime.CompareEventIDs(more[0], more[0]); !ok || cmp != 0 {
		t.Fatalf("CompareEventIDs(x, x) = %d, %v", cmp, ok)
	}
	// History is per channel (another channel of the same epoch: on a cluster, each
	// bucket of channels has its own).
	other := realtime.SameEpochChannel(c)
	expectHistory(t, sub, other, idWithPosition(ids[0], 0), 0, nil)
	expectNext(t, pub, s, c)
}

func testHistoryGone(t *testing.T, k engineKind) {
	pub, sub := k.new(t, 0)
	c := userChannel(t)
	s := subscribe(t, sub, c)
	ids := publishIDs(t, pub, s, c, 0, 3)
	epoch, _, _ := strings.Cut(ids[0], "-")

	for _, bad := range []string{
		"", "nonsense", "-", "-1", epoch, epoch + "-", epoch + "--1",
		ids[0] + "-", ids[0] + "x", ids[0] + "-1-2", "x" + ids[0],
		strings.Replace(ids[0], "-", "-0", 1), // leading zero: not an ID we issued
		strings.Replace(ids[0], "-", "-+", 1),
		strings.Replace(ids[0], epoch, "0123456789abcdef", 1), // another epoch
		idWithPosition(ids[0], 1<<62),                         // never assigned
	} {
		expectGone(t, sub, c, bad)
	}
	ctx := ctxT(t)
	if _, err := sub.History(ctx, "", ids[0]); !errors.Is(err, realtime.ErrInvalidChannel) {
		t.Fatalf("History on empty channel: %v", err)
	}
	// Channels other than user:… keep no history.
	expectGone(t, sub, uniq(t)("conversation:1"), ids[0])

	// The IDs of another process (Memory) or another Redis are gone, and
	// the other way round.
	iso := k.isolated(t)
	is := subscribe(t, iso, c)
	isoIDs := publishIDs(t, iso, is, c, 100, 2)
	if _, ok := realtime.CompareEventIDs(ids[0], isoIDs[0]); ok {
		t.Fatalf("IDs of two epochs compare: %q, %q", ids[0], isoIDs[0])
	}
	expectGone(t, pub, c, isoIDs[0])
	expectGone(t, sub, c, isoIDs[0])
	expectGone(t, iso, c, ids[0])
	expectHistory(t, iso, c, isoIDs[0], 101, isoIDs[1:])
	expectHistory(t, sub, c, ids[0], 1, ids[1:]) // unaffected

	// A channel without history: nothing is known after a real position,
	// but "before anything" of the current epoch has nothing after it.
	never := realtime.SameEpochChannel(c)
	expectGone(t, sub, never, ids[0])
	expectHistory(t, sub, never, idWithPosition(ids[0], 0), 0, nil)

	// Closed engines refuse.
	_ = iso.Close()
	if _, err := iso.History(ctx, c, isoIDs[0]); !errors.Is(err, realtime.ErrClosed) {
		t.Fatalf("History after Close: %v", err)
	}
}

func testHistoryTrimmed(t *testing.T, k engineKind) {
	const retention, n = 10, 300
	t.Parallel() // its engines are its own, tuned for it alone
	pub, sub := k.tuned(t, 2*n, realtime.Tuning{HistoryMaxLen: retention})
	c := userChannel(t)
	s := subscribe(t, sub, c)
	ids := publishIDs(t, pub, s, c, 0, n)

	expectGone(t, sub, c, ids[0])
	expectGone(t, sub, c, ids[n/2])
	// The last `retention` events are always retained (Redis trims
	// approximately, keeping at least that many).
	expectHistory(t, sub, c, ids[n-retention], n-retention+1, ids[n-retention+1:])
	expectHistory(t, sub, c, ids[n-1], n, nil)
	if _, isMemory := sub.(*realtime.Memory); isMemory {
		// Memory trims exactly: after the last dropped event nothing is
		// missing, before it something is.
		expectHistory(t, sub, c, ids[n-retention-1], n-retention, ids[n-retention:])
		expectGone(t, sub, c, ids[n-retention-2])
	}
}

func testHistoryExpired(t *testing.T, k engineKind) {
	const ttl = time.Second
	t.Parallel() // its engines are its own, tuned for it alone
	pub, sub := k.tuned(t, 0, realtime.Tuning{HistoryTTL: ttl})
	c := userChannel(t)
	s := subscribe(t, sub, c)
	ids := publishIDs(t, pub, s, c, 0, 2)
	expectHistory(t, sub, c, ids[0], 1, ids[1:])

	time.Sleep(ttl + ttl/2)
	expectGone(t, sub, c, ids[0])
	expectGone(t, sub, c, ids[1])

	// The channel starts over with IDs that are still increasing.
	later := publishIDs(t, pub, s, c, 2, 2)
	if cmp, ok := realtime.CompareEventIDs(ids[1], later[0]); !ok || cmp != -1 {
		t.Fatalf("ID after expiry %q not after %q", later[0], ids[1])
	}
	expectGone(t, sub, c, ids[0])
	expectHistory(t, sub, c, later[0], 3, later[1:])
}

func testHistoryDroppable(t *testing.T, k engineKind) {
	pub, sub := k.new(t, 0)
	c := userChannel(t)
	conv := uniq(t)("conversation:1")
	s := subscribe(t, sub, c, conv)

	first := publishIDs(t, pub, s, c, 0, 1)
	typing := realtime.Event{Type: "message.typing", ID: "7", Data: json.RawMessage(`{"user":7}`), Droppable: true}
	publish(t, pub, c, typing)
	// Not resumable, so no ID...
	expect(t, s, c, realtime.Event{Type: typing.Type, Data: typing.Data, Droppable: true})
	// ...while channels without history pass IDs through as before.
	publish(t, pub, conv, typing)
	expect(t, s, conv, typing)
	second := publishIDs(t, pub, s, c, 1, 1)
	// Not in history either.
	expectHistory(t, sub, c, first[0], 1, second)
	expectNext(t, pub, s, c)
}

// testHistoryConcurrentPublishers: publishers in both processes race on one
// channel; every subscriber sees the same strictly increasing IDs, in the
// order History lists them.
func testHistoryConcurrentPublishers(t *testing.T, k engineKind) {
	const publishers, perPublisher = 4, 100
	const total = publishers * perPublisher
	pub, sub := k.new(t, 2*total)
	c := userChannel(t)
	watchers := []*realtime.Subscription{subscribe(t, sub, c), subscribe(t, pub, c)}
	ctx := ctxT(t)

	var wg sync.WaitGroup
	errc := make(chan error, publishers)
	for p := range publishers {
		e := pub
		if p%2 == 1 {
			e = sub
		}
		wg.Go(func() {
			for i := range perPublisher {
				ev := realtime.Event{Type: "message.new", Data: json.RawMessage(`{"p":` + strconv.Itoa(p) + `,"i":` + strconv.Itoa(i) + `}`)}
				if err := e.Publish(ctx, c, ev); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}

	var seen [][]realtime.Event
	for w, s := range watchers {
		evs := make([]realtime.Event, total)
		last := make([]int, publishers)
		for i := range last {
			last[i] = -1
		}
		for i := range total {
			evs[i] = recv(t, s).Event
			if i > 0 {
				if cmp, ok := realtime.CompareEventIDs(evs[i-1].ID, evs[i].ID); !ok || cmp != -1 {
					t.Fatalf("watcher %d: %q then %q", w, evs[i-1].ID, evs[i].ID)
				}
			}
			var d struct{ P, I int }
			if err := json.Unmarshal(evs[i].Data, &d); err != nil {
				t.Fatal(err)
			}
			if d.I != last[d.P]+1 {
				t.Fatalf("watcher %d: publisher %d: event %d after %d", w, d.P, d.I, last[d.P])
			}
			last[d.P] = d.I
		}
		seen = append(seen, evs)
	}
	hist := history(t, sub, c, seen[0][0].ID)
	if len(hist) != total-1 {
		t.Fatalf("History has %d events, want %d", len(hist), total-1)
	}
	for i := range total {
		a, b := seen[0][i], seen[1][i]
		if a.ID != b.ID || string(a.Data) != string(b.Data) {
			t.Fatalf("watchers disagree at %d: %s %s / %s %s", i, a.ID, a.Data, b.ID, b.Data)
		}
		if i > 0 {
			if h := hist[i-1]; h.ID != a.ID || string(h.Data) != string(a.Data) {
				t.Fatalf("History disagrees at %d: %s %s, delivered %s %s", i, h.ID, h.Data, a.ID, a.Data)
			}
		}
	}
}

func testPublishMany(t *testing.T, k engineKind) {
	pub, sub := k.new(t, 0)
	ctx := ctxT(t)
	u1, u2, u3 := userChannel(t), userChannel(t), userChannel(t)
	conv := uniq(t)("conversation:1")
	all := subscribe(t, sub, u1, u2, u3, conv)
	only1 := subscribe(t, sub, u1)

	// An ID to resume from on each user channel.
	before := map[string]string{}
	for _, u := range []string{u1, u2, u3} {
		publish(t, pub, u, numbered(0))
		before[u] = recv(t, all).Event.ID
	}
	_ = recv(t, only1)

	e := realtime.Event{Type: "message.new", ID: "given", Data: json.RawMessage(`{"m":1}`)}
	if err := pub.PublishMany(ctx, []string{u1, u2, conv, u1, u3, u2}, e); err != nil {
		t.Fatalf("PublishMany: %v", err)
	}
	got := map[string]realtime.Event{}
	for range 4 {
		d := recv(t, all)
		if _, dup := got[d.Channel]; dup {
			t.Fatalf("%s delivered twice", d.Channel)
		}
		if d.Event.Type != e.Type || string(d.Event.Data) != string(e.Data) {
			t.Fatalf("got %+v", d.Event)
		}
		got[d.Channel] = d.Event
	}
	if got[conv].ID != "given" {
		t.Fatalf("channel without history: ID %q, want the given one", got[conv].ID)
	}
	for _, u := range []string{u1, u2, u3} {
		id := got[u].ID
		if cmp, ok := realtime.CompareEventIDs(before[u], id); !ok || cmp != -1 {
			t.Fatalf("%s: ID %q not after %q", u, id, before[u])
		}
		h := history(t, sub, u, before[u])
		if len(h) != 1 || h[0].ID != id || string(h[0].Data) != `{"m":1}` {
			t.Fatalf("%s: History = %+v, want the one event with ID %q", u, h, id)
		}
	}
	if d := recv(t, only1); d.Channel != u1 || d.Event.ID != got[u1].ID {
		t.Fatalf("only1 got %+v", d)
	}

	// Droppable: delivered everywhere, without ID on history channels.
	typing := realtime.Event{Type: "message.typing", ID: "t", Data: json.RawMessage(`{"u":1}`), Droppable: true}
	if err := pub.PublishMany(ctx, []string{u1, conv}, typing); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		d := recv(t, all)
		want := typing
		if d.Channel == u1 {
			want.ID = ""
		}
		if d.Event.ID != want.ID || !d.Event.Droppable {
			t.Fatalf("droppable on %s: got %+v", d.Channel, d.Event)
		}
	}
	if d := recv(t, only1); d.Event.Type != typing.Type || d.Event.ID != "" {
		t.Fatalf("only1 got %+v", d)
	}
	if h := history(t, sub, u1, got[u1].ID); len(h) != 0 {
		t.Fatalf("droppable stored in history: %+v", h)
	}

	// Nothing, or an invalid name, publishes nothing.
	if err := pub.PublishMany(ctx, nil, e); err != nil {
		t.Fatalf("PublishMany(nil): %v", err)
	}
	if err := pub.PublishMany(ctx, []string{u1, ""}, e); !errors.Is(err, realtime.ErrInvalidChannel) {
		t.Fatalf("PublishMany with an empty name: %v", err)
	}
	if err := pub.PublishMany(ctx, []string{u1}, realtime.Event{Type: "x", Data: json.RawMessage(`{`)}); err == nil {
		t.Fatal("PublishMany of invalid JSON succeeded")
	}
	// Every channel got exactly what was checked above.
	expectNext(t, pub, all, conv)
	marker := publishIDs(t, pub, all, u1, 1000, 1)
	if d := recv(t, only1); d.Event.ID != marker[0] {
		t.Fatalf("only1 got %+v, want the marker %s", d, marker[0])
	}
}

// testPublishManyLarge: more channels than one Redis script handles.
func testPublishManyLarge(t *testing.T, k engineKind) {
	const n = 600
	pub, sub := k.new(t, 2*n)
	channels := make([]string, n)
	for i := range channels {
		channels[i] = userChannel(t)
	}
	s := subscribe(t, sub, channels...)
	e := realtime.Event{Type: "message.new", Data: json.RawMessage(`{"big":true}`)}
	start := time.Now()
	if err := pub.PublishMany(ctxT(t), channels, e); err != nil {
		t.Fatal(err)
	}
	t.Logf("PublishMany to %d channels took %v", n, time.Since(start))
	ids := map[string]string{}
	for range n {
		d := recv(t, s)
		if _, dup := ids[d.Channel]; dup {
			t.Fatalf("%s delivered twice", d.Channel)
		}
		ids[d.Channel] = d.Event.ID
	}
	for _, c := range []string{channels[0], channels[n/2], channels[n-1]} {
		if ids[c] == "" {
			t.Fatalf("%s: no delivery", c)
		}
		expectHistory(t, sub, c, ids[c], 0, nil) // stored, and the newest
	}
	expectNext(t, pub, s, channels[n-1])
}

// testHistoryHead: a consumer that caught up by other means resumes from Head exactly:
// on an empty channel, between events (also from another process), and not after the
// history expired; a later Head is after an earlier one.
func testHistoryHead(t *testing.T, k engineKind) {
	const ttl = 2 * time.Second
	t.Parallel() // its engines are its own, tuned for it alone
	pub, sub := k.tuned(t, 0, realtime.Tuning{HistoryTTL: ttl})
	ctx := context.Background()
	head := func(e realtime.Engine, c string) string {
		t.Helper()
		id, err := e.Head(ctx, c)
		if err != nil {
			t.Fatalf("Head(%s): %v", c, err)
		}
		return id
	}
	c := userChannel(t)
	s := subscribe(t, sub, c)

	empty := head(sub, c)
	expectHistory(t, pub, c, empty, 0, nil)
	ids := publishIDs(t, pub, s, c, 0, 3)
	expectHistory(t, sub, c, empty, 0, ids)

	mid := head(sub, c)
	if cmp, ok := realtime.CompareEventIDs(ids[2], mid); !ok || cmp > 0 {
		t.Errorf("Head %q is before the last event %q", mid, ids[2])
	}
	expectHistory(t, pub, c, mid, 3, nil)
	more := publishIDs(t, pub, s, c, 3, 2)
	expectHistory(t, pub, c, mid, 3, more)
	if cmp, ok := realtime.CompareEventIDs(mid, more[0]); !ok || cmp != -1 {
		t.Errorf("the event %q after Head %q does not compare after it", more[0], mid)
	}

	// An idle channel's head stays resumable for the retention time, then is gone.
	idle := userChannel(t)
	idleHead := head(sub, idle)
	time.Sleep(ttl / 2)
	expectHistory(t, pub, idle, idleHead, 0, nil)
	time.Sleep(ttl + ttl/2)
	expectGone(t, pub, idle, idleHead)

	if _, err := sub.Head(ctx, "zone:1"); !errors.Is(err, realtime.ErrHistoryGone) {
		t.Errorf("Head of a channel without history: %v, want ErrHistoryGone", err)
	}
}

// testPublishAll: a batch of publications arrives on each channel in the order given, with
// history IDs in that order, and one invalid publication fails the whole call before any
// event goes out.
func testPublishAll(t *testing.T, k engineKind) {
	pub, sub := k.new(t, 0)
	ctx := ctxT(t)
	u1, u2 := userChannel(t), userChannel(t)
	conv := uniq(t)("conversation:1")
	s1, s2 := subscribe(t, sub, u1, conv), subscribe(t, sub, u2)
	publish(t, pub, u1, numbered(0))
	start := recv(t, s1).Event.ID

	pubs := []realtime.Publication{
		{Channels: []string{u1, u2}, Event: numbered(1)},
		{Channels: []string{u1, conv, u1}, Event: numbered(2)},
		{Channels: []string{u2}, Event: numbered(3)},
		{Channels: []string{u2, u1}, Event: numbered(4)},
	}
	if err := pub.PublishAll(ctx, pubs); err != nil {
		t.Fatalf("PublishAll: %v", err)
	}
	var ids []string
	for _, want := range []struct{ channel, data string }{
		{u1, `{"n":1}`}, {u1, `{"n":2}`}, {conv, `{"n":2}`}, {u1, `{"n":4}`},
	} {
		d := recv(t, s1)
		if d.Channel != want.channel || string(d.Event.Data) != want.data {
			t.Fatalf("s1 got %s %s, want %s %s", d.Channel, d.Event.Data, want.channel, want.data)
		}
		if d.Channel == u1 {
			ids = append(ids, d.Event.ID)
		}
	}
	for _, want := range []string{`{"n":1}`, `{"n":3}`, `{"n":4}`} {
		if d := recv(t, s2); string(d.Event.Data) != want {
			t.Fatalf("s2 got %s, want %s", d.Event.Data, want)
		}
	}
	h := history(t, sub, u1, start)
	if len(h) != 3 {
		t.Fatalf("history of u1: %d events, want 3", len(h))
	}
	for i, e := range h {
		if e.ID != ids[i] {
			t.Fatalf("history of u1: %v, want the delivered IDs %v in order", h, ids)
		}
	}

	// One invalid channel or event: nothing of the batch goes out.
	for _, bad := range [][]realtime.Publication{
		{{Channels: []string{u1}, Event: numbered(5)}, {Channels: []string{""}, Event: numbered(6)}},
		{{Channels: []string{u1}, Event: numbered(5)}, {Channels: []string{u2}, Event: realtime.Event{Type: "x", Data: json.RawMessage(`{"n":`)}}},
	} {
		if err := pub.PublishAll(ctx, bad); err == nil {
			t.Fatalf("PublishAll(%+v) succeeded", bad)
		}
	}
	expectNext(t, pub, s1, conv)
	if err := pub.PublishAll(ctx, nil); err != nil {
		t.Fatalf("PublishAll(nil): %v", err)
	}
}
