package realtime_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/realtime/redistest"
)

// redisPair returns two engines (processes) sharing a private key prefix.
func redisPair(t *testing.T, queueSize int) (a, b *realtime.Redis, url string) {
	t.Helper()
	url = redistest.URL(t)
	prefix := testPrefix(t, url)
	return newRedisPrefixed(t, url, queueSize, prefix), newRedisPrefixed(t, url, queueSize, prefix), url
}

func epochOf(id string) string {
	e, _, _ := strings.Cut(id, "-")
	return e
}

// TestRedisHistoryEpochChange: a Redis that lost its data (here: only our
// test keys are deleted) gets a new epoch, and every older ID is gone.
func TestRedisHistoryEpochChange(t *testing.T) {
	a, b, url := redisPair(t, 0)
	admin := adminClient(t, url)
	ctx := ctxT(t)
	c := userChannel(t)
	s := subscribe(t, b, c)
	ids := publishIDs(t, a, s, c, 0, 3)
	if got, err := admin.Get(ctx, a.EpochKey()).Result(); err != nil || got != epochOf(ids[0]) {
		t.Fatalf("epoch key %s = %q, %v; IDs %v", a.EpochKey(), got, err, ids)
	}

	// Epoch lost, streams kept.
	if err := admin.Del(ctx, a.EpochKey()).Err(); err != nil {
		t.Fatal(err)
	}
	expectGone(t, b, c, ids[1]) // no epoch at all
	newIDs := publishIDs(t, a, s, c, 3, 2)
	if epochOf(newIDs[0]) == epochOf(ids[0]) {
		t.Fatalf("epoch survived its deletion: %v %v", ids, newIDs)
	}
	if epochOf(newIDs[0]) != epochOf(newIDs[1]) {
		t.Fatalf("epoch changed without data loss: %v", newIDs)
	}
	for _, id := range ids {
		expectGone(t, b, c, id)
	}
	expectHistory(t, b, c, newIDs[0], 4, newIDs[1:])
	// An entry of the old epoch under the new epoch's name is not
	// trusted either: the stream spans both epochs there.
	_, oldPos, _ := strings.Cut(ids[0], "-")
	expectGone(t, b, c, epochOf(newIDs[0])+"-"+oldPos)

	// Everything lost.
	if err := admin.Del(ctx, a.EpochKey(), a.HistoryKey(c)).Err(); err != nil {
		t.Fatal(err)
	}
	expectGone(t, b, c, newIDs[1])
	latest := publishIDs(t, b, s, c, 5, 2) // published by the other process
	if e := epochOf(latest[0]); e == epochOf(newIDs[0]) || e == epochOf(ids[0]) {
		t.Fatalf("epoch reused: %v %v %v", ids, newIDs, latest)
	}
	expectGone(t, a, c, newIDs[1])
	expectHistory(t, a, c, latest[0], 6, latest[1:])
}

// TestRedisHistoryWireFormat pins what other processes see: the live event
// carries its ID, the stream keeps the event and its epoch and expires.
func TestRedisHistoryWireFormat(t *testing.T) {
	a, _, url := redisPair(t, 0)
	admin := adminClient(t, url)
	ctx := ctxT(t)
	c := userChannel(t)

	prefix := strings.TrimSuffix(a.EpochKey(), "epoch:2")
	raw := admin.Subscribe(ctx, prefix+c)
	defer raw.Close()
	if _, err := raw.Receive(ctx); err != nil { // subscribe confirmation
		t.Fatal(err)
	}
	s := subscribe(t, a, c)
	publish(t, a, c, realtime.Event{Type: "message.new", ID: "x", Data: json.RawMessage(`{ "a": "</b>" }`)})
	publish(t, a, c, realtime.Event{Type: "message.typing", ID: "y", Data: json.RawMessage(`{"u":1}`), Droppable: true})
	id := recv(t, s).Event.ID
	_ = recv(t, s)

	for _, want := range []string{
		`{"t":"message.new","i":"` + id + `","d":{"a":"\u003c/b\u003e"}}`,
		`{"t":"message.typing","d":{"u":1},"x":true}`,
	} {
		msg, err := raw.ReceiveMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if msg.Payload != want {
			t.Fatalf("payload %s, want %s", msg.Payload, want)
		}
	}

	entries, err := admin.XRange(ctx, a.HistoryKey(c), "-", "+").Result()
	if err != nil || len(entries) != 1 {
		t.Fatalf("stream: %v, %v", entries, err)
	}
	if got := epochOf(id) + "-" + entries[0].ID; got != id {
		t.Fatalf("ID %s, stream entry %s", id, entries[0].ID)
	}
	if e, v := entries[0].Values["e"], entries[0].Values["v"]; e != epochOf(id) || v != `{"t":"message.new","d":{"a":"\u003c/b\u003e"}}` {
		t.Fatalf("stream entry %v", entries[0].Values)
	}
	ttl, err := admin.PTTL(ctx, a.HistoryKey(c)).Result()
	if err != nil || ttl <= realtime.HistoryTTL-time.Minute || ttl > realtime.HistoryTTL {
		t.Fatalf("stream TTL %v, %v", ttl, err)
	}
	if ttl, err := admin.TTL(ctx, a.EpochKey()).Result(); err != nil || ttl != -1 {
		t.Fatalf("epoch TTL %v, %v; want none", ttl, err)
	}
}

// TestRedisHistoryTrimLength: streams stay near HistoryMaxLen entries.
func TestRedisHistoryTrimLength(t *testing.T) {
	const n = realtime.HistoryMaxLen + 500
	a, b, url := redisPair(t, 2*n)
	admin := adminClient(t, url)
	c := userChannel(t)
	s := subscribe(t, b, c)
	ids := publishIDs(t, a, s, c, 0, n)
	l, err := admin.XLen(ctxT(t), a.HistoryKey(c)).Result()
	if err != nil || l < realtime.HistoryMaxLen || l > realtime.HistoryMaxLen+200 {
		t.Fatalf("stream length %d, %v", l, err)
	}
	expectGone(t, b, c, ids[0])
	first := n - realtime.HistoryMaxLen
	expectHistory(t, b, c, ids[first], first+1, ids[first+1:])
}

// TestRedisNoScriptFallback: a Redis without the script loaded (restart,
// SCRIPT FLUSH) is handled without publishing twice; simulated by calling
// the script under a digest Redis does not know, so the shared Redis's
// script cache is left alone.
func TestRedisNoScriptFallback(t *testing.T) {
	a, b, _ := redisPair(t, 0)
	realtime.ForgetScript(a)
	c1, c2 := userChannel(t), userChannel(t)
	s := subscribe(t, b, c1, c2)
	ids := publishIDs(t, a, s, c1, 0, 2)
	expectHistory(t, b, c1, ids[0], 1, ids[1:])
	if err := a.PublishMany(ctxT(t), []string{c1, c2}, numbered(2)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if d := recv(t, s); string(d.Event.Data) != `{"n":2}` || d.Event.ID == "" {
			t.Fatalf("got %+v", d)
		}
	}
	expectNext(t, a, s, c1)
	expectNext(t, a, s, c2)

	// A batch whose every script call is refused is sent again in full, in order.
	before := ids[len(ids)-1]
	if err := a.PublishAll(ctxT(t), []realtime.Publication{
		{Channels: []string{c1}, Event: numbered(3)}, {Channels: []string{c1, c2}, Event: numbered(4)},
		{Channels: []string{c1}, Event: numbered(5)},
	}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 4 {
		if d := recv(t, s); d.Channel == c1 {
			got = append(got, string(d.Event.Data))
		}
	}
	if want := []string{`{"n":3}`, `{"n":4}`, `{"n":5}`}; !slices.Equal(got, want) {
		t.Fatalf("c1 got %v, want %v", got, want)
	}
	if h := history(t, b, c1, before); len(h) < 4 || string(h[len(h)-1].Data) != `{"n":5}` {
		t.Fatalf("history of c1 after the batch: %+v", h)
	}
}

// TestRedisHistoryAcrossFormats: a process of the history's previous format (its epoch
// under "epoch", each event copied into the entry) shares the Redis during a rolling
// deploy. Its IDs are gone to this engine and this engine's to it, and its entry in a
// stream makes a later resume here gone, so no event is ever skipped across versions.
func TestRedisHistoryAcrossFormats(t *testing.T) {
	a, b, url := redisPair(t, 0)
	admin := adminClient(t, url)
	ctx := ctxT(t)
	c := userChannel(t)
	oldEpoch := strings.TrimSuffix(a.EpochKey(), ":2")
	if err := admin.Set(ctx, oldEpoch, "old", 0).Err(); err != nil {
		t.Fatal(err)
	}
	oldAdd := func() string {
		t.Helper()
		sid, err := admin.XAdd(ctx, &redis.XAddArgs{Stream: a.HistoryKey(c), Values: []any{"e", "old", "v", `{"t":"message.new","d":{}}`}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		return "old-" + sid
	}
	oldID := oldAdd()
	head, err := a.Head(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if epochOf(head) == "old" {
		t.Fatalf("the new format took the old epoch: %s", head)
	}
	if got, err := b.History(ctx, c, oldID); !errors.Is(err, realtime.ErrHistoryGone) {
		t.Fatalf("history after an old format's ID: %+v, %v; want gone", got, err)
	}
	publish(t, a, c, realtime.Event{Type: "message.new", Data: json.RawMessage(`{"n":1}`)})
	oldAdd() // the old process's event after it
	if got, err := b.History(ctx, c, head); !errors.Is(err, realtime.ErrHistoryGone) {
		t.Fatalf("history over the old format's entry: %+v, %v; want gone", got, err)
	}
}
