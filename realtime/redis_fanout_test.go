package realtime_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/realtime/redistest"
)

// TestRedisFanout: an event for many channels (a message to a group of 300) goes to Redis
// as a few fan-out messages, not one PUBLISH a member, and another process's subscriber
// still gets it on every channel, with the ID its own history holds, in the order published;
// an event for a few channels is still published on each.
func TestRedisFanout(t *testing.T) {
	url := redistest.URL(t)
	prefix := testPrefix(t, url)
	a, b := newRedisPrefixed(t, url, 1000, prefix), newRedisPrefixed(t, url, 1000, prefix)
	ctx := ctxT(t)

	const members = 300 // two history scripts: 256 + 44
	var history, plain, few []string
	for i := range members {
		history = append(history, fmt.Sprintf("%s%d", realtime.HistoryChannelPrefix, 1000+i))
	}
	for i := range 20 {
		plain = append(plain, fmt.Sprintf("zone:%d", i))
	}
	for i := range 3 {
		few = append(few, fmt.Sprintf("%s%d", realtime.HistoryChannelPrefix, 5000+i))
	}
	all := append(append(append([]string{}, history...), plain...), few...)
	// The publish script loaded once, as on any Redis after the first send (a script
	// Redis lacks is sent again after the pipeline's other commands).
	publish(t, a, realtime.HistoryChannelPrefix+"1", realtime.Event{Type: "warm-up"})
	sub := subscribe(t, b, all...)
	head, err := a.Head(ctx, history[members-1])
	if err != nil {
		t.Fatal(err)
	}

	raw := adminClient(t, url).PSubscribe(ctx, prefix+"*")
	defer raw.Close()
	if _, err := raw.Receive(ctx); err != nil {
		t.Fatal(err)
	}

	msg := realtime.Event{Type: "message.new", Data: json.RawMessage(`{"body":"수행평가 안내"}`)}
	typing := realtime.Event{Type: "message.typing", Data: json.RawMessage(`{"typing":true}`), Droppable: true}
	zone := realtime.Event{Type: "message.new", ID: "z1", Data: json.RawMessage(`{"zone":1}`)}
	direct := realtime.Event{Type: "message.new", Data: json.RawMessage(`{"direct":1}`)}
	if err := a.PublishAll(ctx, []realtime.Publication{
		{Channels: history, Event: msg},
		{Channels: history, Event: typing},
		{Channels: plain, Event: zone},
		{Channels: few, Event: direct},
	}); err != nil {
		t.Fatal(err)
	}

	// What went through Redis: 2 + 2 fan-out messages for the group's two events, 1 for
	// the zone's channels, and 3 publishes of the direct event on its own channels.
	byChannel := map[string]int{}
	for range 8 {
		m, err := raw.ReceiveMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		byChannel[strings.TrimPrefix(m.Channel, prefix)]++
	}
	if byChannel["engine:fanout"] != 5 || len(byChannel) != 4 {
		t.Errorf("messages on Redis by channel: %v; want 5 fan-out messages and one on each of %v", byChannel, few)
	}
	select {
	case m := <-raw.Channel():
		t.Errorf("a ninth message on Redis: %s", m.Channel)
	case <-time.After(200 * time.Millisecond):
	}

	// Every channel got its events, in order; each history channel's ID is its own.
	got := map[string][]realtime.Event{}
	for range 2*members + len(plain) + len(few) {
		d := recv(t, sub)
		got[d.Channel] = append(got[d.Channel], d.Event)
	}
	for _, c := range history {
		evs := got[c]
		if len(evs) != 2 || evs[0].Type != "message.new" || string(evs[0].Data) != string(msg.Data) || evs[0].ID == "" ||
			evs[1].Type != "message.typing" || !evs[1].Droppable || evs[1].ID != "" {
			t.Fatalf("%s got %+v, want the message with an ID, then the typing without", c, evs)
		}
	}
	stored, err := b.History(ctx, history[members-1], head)
	if err != nil {
		t.Fatal(err)
	}
	if last := got[history[members-1]][0]; len(stored) != 1 || stored[0].ID != last.ID || string(stored[0].Data) != string(msg.Data) {
		t.Errorf("history after the head: %+v; want the one event delivered, %+v", stored, last)
	}
	for _, c := range plain {
		if evs := got[c]; len(evs) != 1 || evs[0].ID != "z1" || string(evs[0].Data) != string(zone.Data) {
			t.Errorf("%s got %+v, want the zone event as published", c, evs)
		}
	}
	for _, c := range few {
		if evs := got[c]; len(evs) != 1 || evs[0].ID == "" || string(evs[0].Data) != string(direct.Data) {
			t.Errorf("%s got %+v, want the direct event with an ID", c, evs)
		}
	}
}

// TestRedisFanoutBodyOnce: a fanned-out event is kept in Redis once, not once a member
// (each member's history entry names it), every member's history gives it back with its
// own ID among events kept each on their own, and a body trimmed as older than the
// history's TTL makes that history gone rather than silently shorter.
func TestRedisFanoutBodyOnce(t *testing.T) {
	url := redistest.URL(t)
	prefix := testPrefix(t, url)
	a, b := newRedisPrefixed(t, url, 1000, prefix), newRedisPrefixed(t, url, 1000, prefix)
	ctx := ctxT(t)
	admin := adminClient(t, url)

	const members = 40
	var group []string
	for i := range members {
		group = append(group, fmt.Sprintf("%s%d", realtime.HistoryChannelPrefix, 7000+i))
	}
	heads := make([]string, members)
	for i, c := range group {
		h, err := a.Head(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		heads[i] = h
	}
	body := `{"body":"` + strings.Repeat("가", 300) + `"}`
	msg := realtime.Event{Type: "message.new", Data: json.RawMessage(body)}
	alone := realtime.Event{Type: "message.read", Data: json.RawMessage(`{"seq":1}`)}
	if err := a.PublishAll(ctx, []realtime.Publication{
		{Channels: group, Event: msg},
		{Channels: group[:1], Event: alone},
		{Channels: group, Event: msg},
	}); err != nil {
		t.Fatal(err)
	}

	bodies, err := admin.XRange(ctx, a.BodiesKey(group[0]), "-", "+").Result()
	if err != nil || len(bodies) != 2 {
		t.Fatalf("bodies stream: %d entries (%v), want the two fanned-out events once each", len(bodies), err)
	}
	entries, err := admin.XRange(ctx, a.HistoryKey(group[5]), "-", "+").Result()
	if err != nil || len(entries) != 3 { // the head's mark and the two messages
		t.Fatalf("a member's stream: %v, %v", entries, err)
	}
	for i, e := range entries[1:] {
		if _, copied := e.Values["v"]; copied || e.Values["b"] != bodies[i].ID {
			t.Fatalf("a member's entry %v; want the body's id %s, not the body", e.Values, bodies[i].ID)
		}
	}
	if ttl, err := admin.PTTL(ctx, a.BodiesKey(group[0])).Result(); err != nil || ttl <= realtime.HistoryTTL-time.Minute {
		t.Fatalf("bodies stream TTL %v, %v", ttl, err)
	}

	// Another process reads every member's history: the message twice, each with the
	// member's own ID, and the first member's own event between them.
	for i, c := range group {
		got, err := b.History(ctx, c, heads[i])
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"message.new", "message.new"}
		if i == 0 {
			want = []string{"message.new", "message.read", "message.new"}
		}
		var types []string
		for _, ev := range got {
			types = append(types, ev.Type)
			if ev.Type == "message.new" && string(ev.Data) != body {
				t.Fatalf("%s: history gave %s", c, ev.Data)
			}
		}
		if strings.Join(types, ",") != strings.Join(want, ",") || got[0].ID == got[len(got)-1].ID {
			t.Fatalf("%s: history %v (ids %s, %s), want %v", c, types, got[0].ID, got[len(got)-1].ID, want)
		}
		if i == 1 {
			if again, err := b.History(ctx, c, got[0].ID); err != nil || len(again) != 1 || again[0].ID != got[1].ID {
				t.Fatalf("history after the first message: %+v, %v", again, err)
			}
		}
	}

	// The first body trimmed, as the TTL trims it: a history reaching it is gone, one after
	// it is not.
	if err := admin.XDel(ctx, a.BodiesKey(group[0]), bodies[0].ID).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := b.History(ctx, group[2], heads[2]); !errors.Is(err, realtime.ErrHistoryGone) {
		t.Fatalf("history over a trimmed body: %+v, %v; want gone", got, err)
	}
	first := epochOf(heads[5]) + "-" + entries[1].ID
	if got, err := b.History(ctx, group[5], first); err != nil || len(got) != 1 || string(got[0].Data) != body {
		t.Fatalf("history after the trimmed body: %+v, %v", got, err)
	}

	// A publication to a few channels (fanned out, but fewer than the body's own entry
	// pays for) keeps the event in each entry.
	if err := a.PublishAll(ctx, []realtime.Publication{{Channels: group[:10], Event: alone}}); err != nil {
		t.Fatal(err)
	}
	last, err := admin.XRevRangeN(ctx, a.HistoryKey(group[9]), "+", "-", 1).Result()
	if err != nil || len(last) != 1 || last[0].Values["v"] == nil || last[0].Values["b"] != nil {
		t.Fatalf("an entry of a publication to 10: %v, %v; want the event in it", last, err)
	}
	if n, err := admin.XLen(ctx, a.BodiesKey(group[0])).Result(); err != nil || n != 1 {
		t.Fatalf("bodies stream: %d entries, %v; want still the one left", n, err)
	}
}
