package main

import (
	"io"
	"strings"
	"testing"

	"github.com/dreamseed/messenger/internal/sse"
)

func TestPlanConversations(t *testing.T) {
	plan, err := planConversations(100, "auto", 10)
	if err != nil {
		t.Fatal(err)
	}
	var direct, group int
	in := map[int32]map[string]int{}
	for _, p := range plan {
		switch p.Kind {
		case "direct":
			direct++
		case "group":
			group++
			if len(p.Members) != 10 || p.Title == "" {
				t.Errorf("group %+v", p)
			}
		}
		for _, m := range p.Members {
			if in[m] == nil {
				in[m] = map[string]int{}
			}
			in[m][p.Kind]++
		}
	}
	if direct != 50 || group != 10 {
		t.Errorf("direct %d group %d, want 50 10", direct, group)
	}
	for u := range int32(100) {
		if in[u]["direct"] != 1 || in[u]["group"] != 1 {
			t.Errorf("user %d is in %v, want one direct and one group", u, in[u])
		}
	}
}

func TestGroupCount(t *testing.T) {
	for _, c := range []struct {
		spec string
		want int
	}{{"auto", 10}, {"", 10}, {"0", 0}, {"0.5", 5}, {"3", 3}, {"25", 25}} {
		if got, err := groupCount(c.spec, 100, 10); err != nil || got != c.want {
			t.Errorf("groupCount(%q) = %d, %v; want %d", c.spec, got, err, c.want)
		}
	}
	for _, bad := range []string{"-1", "many", "2.5"} {
		if _, err := groupCount(bad, 100, 10); err == nil {
			t.Errorf("groupCount(%q): no error", bad)
		}
	}
	if _, err := planConversations(5, "1", 10); err == nil {
		t.Error("a group larger than the users: no error")
	}
}

func TestSSEReader(t *testing.T) {
	stream := ": hello\r\n\r\n" +
		"id: 1\nevent: message.new\ndata: {\"id\":1}\n\n" +
		"event: resync\ndata: {}\n\n" +
		": heartbeat\n" +
		"id: 3\ndata: line one\ndata:line two\n\n" +
		"retry: 1000\n\n" +
		"event: partial\ndata: never dispatched"
	rd := sse.NewReader(strings.NewReader(stream))
	comments := 0
	rd.OnComment = func() { comments++ }
	var got []sse.Event
	for {
		ev, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev)
	}
	want := []sse.Event{
		{ID: "1", HasID: true, Type: "message.new", Data: `{"id":1}`},
		{Type: "resync", Data: "{}"},
		{ID: "3", HasID: true, Type: "message", Data: "line one\nline two"},
	}
	if len(got) != len(want) {
		t.Fatalf("events = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if comments != 2 {
		t.Errorf("comments = %d, want 2", comments)
	}
}
