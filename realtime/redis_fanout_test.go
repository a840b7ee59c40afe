package realtime_test

import (
	"encoding/json"
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
