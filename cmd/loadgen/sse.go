package main

import (
	"bufio"
	"io"
	"strings"
)

// sseEvent is one dispatched server-sent event.
type sseEvent struct {
	ID    string
	Type  string // "message" when the stream names none
	Data  string
	HasID bool
}

// sseReader parses a text/event-stream as the HTML standard describes it: fields
// "event", "data" (several lines join with "\n"), "id"; lines starting with ":" are
// comments (heartbeats); an empty line dispatches.
type sseReader struct {
	sc        *bufio.Scanner
	onComment func()
	onLine    func() // any line at all: the stream is alive
}

func newSSEReader(r io.Reader) *sseReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	return &sseReader{sc: sc}
}

// next answers the next event; io.EOF (or the read error) when the stream ends.
func (r *sseReader) next() (sseEvent, error) {
	var ev sseEvent
	var data strings.Builder
	hasData := false
	for r.sc.Scan() {
		line := r.sc.Text()
		if r.onLine != nil {
			r.onLine()
		}
		if line == "" {
			if !hasData && ev.Type == "" {
				ev = sseEvent{}
				continue
			}
			ev.Data = data.String()
			if ev.Type == "" {
				ev.Type = "message"
			}
			return ev, nil
		}
		if line[0] == ':' {
			if r.onComment != nil {
				r.onComment()
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
			}
		}
	}
	if err := r.sc.Err(); err != nil {
		return sseEvent{}, err
	}
	return sseEvent{}, io.EOF
}
