// Package sse reads text/event-stream responses, for the benchmark programs.
package sse

import (
	"bufio"
	"io"
	"strings"
)

// Event is one dispatched server-sent event.
type Event struct {
	ID    string
	Type  string // "message" when the stream names none
	Data  string
	HasID bool
}

// Reader parses a text/event-stream as the HTML standard describes it: fields
// "event", "data" (several lines join with "\n"), "id"; lines starting with ":" are
// comments (heartbeats); an empty line dispatches.
type Reader struct {
	// LastID is the stream's last event ID as an EventSource keeps it: set by every id
	// field, also of a frame that dispatches nothing (an id alone moves the position).
	LastID    string
	sc        *bufio.Scanner
	OnComment func()
	OnLine    func() // any line at all: the stream is alive
}

// NewReader reads events from r; lines may be up to 4 MiB.
func NewReader(r io.Reader) *Reader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	return &Reader{sc: sc}
}

// Next answers the next event; io.EOF (or the read error) when the stream ends.
func (r *Reader) Next() (Event, error) {
	var ev Event
	var data strings.Builder
	hasData := false
	for r.sc.Scan() {
		line := r.sc.Text()
		if r.OnLine != nil {
			r.OnLine()
		}
		if line == "" {
			if !hasData && ev.Type == "" {
				ev = Event{}
				continue
			}
			ev.Data = data.String()
			if ev.Type == "" {
				ev.Type = "message"
			}
			return ev, nil
		}
		if line[0] == ':' {
			if r.OnComment != nil {
				r.OnComment()
			}
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			ev.Type = value
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.WriteString(value)
			hasData = true
		case "id":
			if !strings.ContainsRune(value, 0) {
				ev.ID, ev.HasID = value, true
				r.LastID = value
			}
		}
	}
	if err := r.sc.Err(); err != nil {
		return Event{}, err
	}
	return Event{}, io.EOF
}
