package handlers

import (
	"math/big"
	"net/url"
	"strings"
	"testing"

	"github.com/dreamseed/messenger"
)

// sseEvent is one event as a browser's EventSource dispatches it.
type sseEvent struct {
	Type, Data, LastEventID string
}

// sseParse reads a complete event stream the way the WHATWG HTML standard's EventSource
// does ("Parsing an event stream", "Interpreting an event stream"): lines end with CRLF,
// a lone CR or a lone LF; a blank line dispatches; "data" values are joined with LF and
// lose one trailing LF; an "id" holding NUL is ignored; "retry" takes only ASCII digits;
// an event not ended by a blank line is dropped. lastID is the last event ID the stream
// starts with; retry answers the last reconnection time set (-1: none).
func sseParse(stream, lastID string) (events []sseEvent, retry int) {
	retry = -1
	var data strings.Builder
	eventType := ""
	idBuffer := lastID
	for len(stream) > 0 {
		i := strings.IndexAny(stream, "\r\n")
		if i < 0 {
			break // no line end: an incomplete line, dropped at the end of the stream
		}
		line := stream[:i]
		switch {
		case strings.HasPrefix(stream[i:], "\r\n"):
			stream = stream[i+2:]
		default:
			stream = stream[i+1:]
		}
		if line == "" {
			// Dispatch.
			lastID = idBuffer
			d := data.String()
			data.Reset()
			if d == "" {
				eventType = ""
				continue
			}
			d = strings.TrimSuffix(d, "\n")
			typ := eventType
			if typ == "" {
				typ = "message"
			}
			events = append(events, sseEvent{Type: typ, Data: d, LastEventID: lastID})
			eventType = ""
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			eventType = value
		case "data":
			data.WriteString(value)
			data.WriteByte('\n')
		case "id":
			if !strings.ContainsRune(value, 0) {
				idBuffer = value
			}
		case "retry":
			if value != "" && strings.Trim(value, "0123456789") == "" {
				n := 0
				for _, c := range value {
					n = n*10 + int(c-'0')
					if n > 1<<30 {
						n = 1 << 30
					}
				}
				retry = n
			}
		}
	}
	return events, retry
}

// wantFrame is what a client must see of frame(event, id, data): the data with every line
// end made LF, the event name and id without the characters an SSE field cannot carry.
func wantFrame(event, id, data, lastID string) sseEvent {
	want := sseEvent{Type: sseField(event), Data: sseData(data), LastEventID: sseField(id)}
	if want.Type == "" {
		want.Type = "message"
	}
	if want.LastEventID == "" {
		want.LastEventID = lastID
	}
	return want
}

func sseData(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

func checkFrame(t *testing.T, event, id, data string) {
	t.Helper()
	const lastID = "before"
	raw := frame(event, id, data)
	got, retry := sseParse(raw, lastID)
	want := wantFrame(event, id, data, lastID)
	if len(got) != 1 || got[0] != want {
		t.Fatalf("frame(%q, %q, %q) = %q\nparsed as %q\nwant one %q", event, id, data, raw, got, want)
	}
	if retry != -1 {
		t.Fatalf("frame(%q, %q, %q) = %q sets retry %d", event, id, data, raw, retry)
	}
	if strings.Contains(strings.ReplaceAll(raw, "\r\n", ""), "\r") {
		t.Fatalf("frame(%q, %q, %q) = %q holds a bare CR", event, id, data, raw)
	}
}

// TestFrame: whatever a message holds, the stream carries it as one event with its own
// id; a body with bare CRs cannot add fields (an id, a retry, another event) of its own.
func TestFrame(t *testing.T) {
	tests := []struct{ event, id, data string }{
		{"message.new", "abc-1", "hello"},
		{"message.new", "abc-1", "two\nlines"},
		{"message.new", "abc-1", "crlf\r\nlines\r\n"},
		{"message.new", "abc-2", "hello\rid: evil-9\rretry: 60000\r\revent: resync\rdata: x\r\r"},
		{"message.new", "abc-2", "\r"},
		{"message.new", "abc-2", ""},
		{"message.new", "", "no id"},
		{"message.new", "abc-3\rretry: 1", "id with a CR"},
		{"resync\n\nevent: x", "abc-4\ndata: y", "names with line ends"},
		{"message.new", "nul\x00id", "an id with NUL is one a browser ignores"},
		{"message.new", "abc-5", " leading space\n\n:comment\ndata: fake"},
	}
	for _, tt := range tests {
		checkFrame(t, tt.event, tt.id, tt.data)
	}
}

// FuzzFrame drives the frame writer with arbitrary event names, ids and data and reads
// the result with a spec-conformant parser: always exactly one event, equal to the input
// (line ends made LF), with its own id, never a retry, never a bare CR.
func FuzzFrame(f *testing.F) {
	f.Add("message.new", "abc-1", "hello")
	f.Add("message.new", "abc-2", "hello\rid: evil-9\rretry: 60000\r\revent: resync\r")
	f.Add("message.typing", "", "a\r\nb\n\rc\r")
	f.Add("", "\x00", "data: x\n\n")
	f.Add("x\ny", "1\r2", ":\r\n\r\n")
	f.Fuzz(func(t *testing.T, event, id, data string) {
		checkFrame(t, event, id, data)
	})
}

// FuzzPageParams: any query parses without panic into a page within bounds (seqs not
// negative, a limit from 0, the default, to maxPageLimit) or an invalid error, and the
// numbers given are the numbers read.
func FuzzPageParams(f *testing.F) {
	f.Add("", "", "")
	f.Add("10", "", "50")
	f.Add("", "99", "100000")
	f.Add("-1", "+5", "9223372036854775808")
	f.Add("0x10", " 1", "1e3")
	f.Fuzz(func(t *testing.T, after, before, limit string) {
		q := url.Values{}
		for name, v := range map[string]string{"after_seq": after, "before_seq": before, "limit": limit} {
			if v != "" {
				q.Set(name, v)
			}
		}
		p, err := parsePage(q)
		if err != nil {
			if messenger.ErrorCode(err) != messenger.EINVALID {
				t.Fatalf("parsePage(%v): %v", q, err)
			}
			return
		}
		if p.AfterSeq < 0 || p.BeforeSeq < 0 || p.Limit < 0 || p.Limit > maxPageLimit {
			t.Fatalf("parsePage(%v) = %+v: out of bounds", q, p)
		}
		if p.After != (after != "") {
			t.Fatalf("parsePage(%v) = %+v: After wrong", q, p)
		}
		for _, n := range []struct {
			given string
			read  int64
		}{{after, p.AfterSeq}, {before, p.BeforeSeq}, {limit, min(int64(p.Limit), maxPageLimit)}} {
			want, ok := new(big.Int).SetString(n.given, 10)
			if n.given != "" && (!ok || want.Cmp(big.NewInt(n.read)) != 0) && !(n.given == limit && want.Cmp(big.NewInt(maxPageLimit)) > 0) {
				t.Fatalf("parsePage(%v) = %+v: %q read as %d", q, p, n.given, n.read)
			}
		}
	})
}
