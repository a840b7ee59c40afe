package realtime_test

import (
	"testing"

	"github.com/dreamseed/messenger/realtime"
)

// payload is a typed value an event carries.
type payload struct{ Body string }

// TestEventValueInProcess: the typed value an event is published with reaches the
// subscribers of the publishing process, live and from history, on both engines; the
// subscribers of another process get the same data without it (they decode the data).
func TestEventValueInProcess(t *testing.T) {
	value := &payload{Body: "안녕하세요"}
	ev := realtime.Event{Type: "message.new", Data: []byte(`{"body":"안녕하세요"}`), Value: value}
	typing := realtime.Event{Type: "message.typing", Data: []byte(`{}`), Value: value, Droppable: true}

	// check: got is sent as published, with the value want.
	check := func(t *testing.T, what string, got, sent realtime.Event, want any) {
		t.Helper()
		if got.Type != sent.Type || string(got.Data) != string(sent.Data) || got.Value != want {
			t.Errorf("%s: %s %s with value %v, want %s %s with value %v", what, got.Type, got.Data, got.Value, sent.Type, sent.Data, want)
		}
	}
	run := func(t *testing.T, publisher, other realtime.Engine) {
		user, zone := userChannel(t), "zone:test-"+userChannel(t)
		mine := subscribe(t, publisher, user, zone)
		var theirs *realtime.Subscription
		if other != nil {
			theirs = subscribe(t, other, user, zone)
		}
		for _, c := range []string{user, zone} {
			for _, e := range []realtime.Event{ev, typing} {
				if err := publisher.Publish(ctxT(t), c, e); err != nil {
					t.Fatal(err)
				}
				check(t, "the publisher's subscriber, "+c+" "+e.Type, recv(t, mine).Event, e, value)
				if theirs != nil {
					check(t, "another process's subscriber, "+c+" "+e.Type, recv(t, theirs).Event, e, nil)
				}
			}
		}
		head, err := publisher.Head(ctxT(t), user)
		if err != nil {
			t.Fatal(err)
		}
		if err := publisher.Publish(ctxT(t), user, ev); err != nil {
			t.Fatal(err)
		}
		recv(t, mine)
		missed, err := publisher.History(ctxT(t), user, head)
		if err != nil || len(missed) != 1 {
			t.Fatalf("history: %v, %v", missed, err)
		}
		check(t, "the publisher's history", missed[0], ev, value)
		if other != nil {
			missed, err := other.History(ctxT(t), user, head)
			if err != nil || len(missed) != 1 {
				t.Fatalf("history of another process: %v, %v", missed, err)
			}
			check(t, "another process's history", missed[0], ev, nil)
		}
	}
	t.Run("memory", func(t *testing.T) {
		m := realtime.NewMemory(0)
		t.Cleanup(func() { m.Close() })
		run(t, m, nil)
	})
	t.Run("redis", func(t *testing.T) {
		a, b, _ := redisPair(t, 0)
		run(t, a, b)
	})
}
