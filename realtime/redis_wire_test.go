package realtime

import (
	"encoding/json"
	"testing"
)

// TestDecodeEvent: what a publisher encodes — whole, or in the parts the publish script
// joins around the ID it assigns — decodes to the same event and origin that
// encoding/json reads from it, nested fields of the same names in the data included; what
// is not a wire event is refused.
func TestDecodeEvent(t *testing.T) {
	events := []struct {
		ev     Event
		origin string
	}{
		{Event{Type: "message.new", ID: "17-1700000000000-0", Data: json.RawMessage(`{"id":5,"t":"x","d":{"i":"no"},"body":"\"quoted\" 한글 \u2028"}`)}, "p1:42"},
		{Event{Type: "message.typing", Data: json.RawMessage(`{"user_id":3}`), Droppable: true}, ""},
		{Event{Type: "resync"}, ""},
		{Event{Type: "presence", Data: json.RawMessage(`[1,2,{"x":true}]`)}, "p2:1"},
	}
	for _, c := range events {
		whole, err := encodeEvent(c.ev, c.origin)
		if err != nil {
			t.Fatal(err)
		}
		head, body, err := encodeEventParts(c.ev, c.origin)
		if err != nil {
			t.Fatal(err)
		}
		scripted := head + `,"i":"` + c.ev.ID + `"` + body // as publishScript joins them
		for _, payload := range []string{string(whole), scripted} {
			got, origin, err := decodeEvent(payload)
			var w wireEvent
			if jerr := json.Unmarshal([]byte(payload), &w); jerr != nil || err != nil {
				t.Fatalf("%s: decodeEvent %v, encoding/json %v", payload, err, jerr)
			}
			if got.Type != w.Type || got.ID != w.ID || string(got.Data) != string(w.Data) || got.Droppable != w.Droppable || origin != w.Origin {
				t.Errorf("%s: decoded %+v (data %s) origin %q; encoding/json reads %+v", payload, got, got.Data, origin, w)
			}
			if got.Type != c.ev.Type || string(got.Data) != string(c.ev.Data) || got.Droppable != c.ev.Droppable || origin != c.origin {
				t.Errorf("%s: decoded %+v, published %+v", payload, got, c.ev)
			}
		}
	}
	for _, bad := range []string{``, `not json`, `[1,2]`, `{"i":"1"}`, `{"t":1}`, `{"t":"x","i":2}`,
		`{"t":"x","x":"yes"}`, `{"t":"x","o":{}}`, `{"t":"x","d":{"a":1}`} {
		if ev, _, err := decodeEvent(bad); err == nil {
			t.Errorf("decodeEvent(%q) = %+v, want an error", bad, ev)
		}
	}
}
