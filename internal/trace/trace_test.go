package trace_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dreamseed/messenger/internal/trace"
)

func TestParse(t *testing.T) {
	const id = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, tc := range []struct {
		header string
		ok     bool
	}{
		{"00-" + id + "-00f067aa0ba902b7-01", true},
		{"00-" + id + "-00f067aa0ba902b7-00", true},
		{"", false},
		{"garbage", false},
		{"01-" + id + "-00f067aa0ba902b7-01", false},                  // only version 00
		{"00-" + strings.ToUpper(id) + "-00f067aa0ba902b7-01", false}, // lowercase only
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
		{"00-" + id + "-0000000000000000-01", false},
		{"00-" + id + "-00f067aa0ba902b7-01-extra", false},
		{"00_" + id + "-00f067aa0ba902b7-01", false},
		{"00-" + id[:31] + "g-00f067aa0ba902b7-01", false},
	} {
		got, flags, ok := trace.Parse(tc.header)
		if ok != tc.ok || ok && (got != id || flags != tc.header[53:]) {
			t.Errorf("Parse(%q) = %q, %q, %v; want ok %v", tc.header, got, flags, ok, tc.ok)
		}
	}
	for range 100 {
		id, span := trace.NewID(), trace.NewSpanID()
		if got, _, ok := trace.Parse(trace.Format(id, span, "01")); !ok || got != id || !trace.ValidID(id) {
			t.Fatalf("a new id does not parse back: %s %s", id, span)
		}
	}
}

// TestHandler: a line logged with a traced context carries its trace id, user and
// conversation once known, each key once, whatever the call site or logger.With gave.
func TestHandler(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(trace.NewJSON(&buf, slog.LevelInfo))
	lines := func() []map[string]any {
		var out []map[string]any
		for _, raw := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			if strings.Count(raw, `"trace_id"`) > 1 || strings.Count(raw, `"user_id"`) > 1 || strings.Count(raw, `"conversation_id"`) > 1 {
				t.Errorf("a key twice: %s", raw)
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(raw), &m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
		buf.Reset()
		return out
	}

	logger.Info("outside", slog.Time("next_run_at", time.Unix(1<<62, 0))) // River's "never"
	if l := lines()[0]; l["trace_id"] != nil || l["user_id"] != nil || l["next_run_at"] == nil {
		t.Errorf("a line outside a trace has fields: %v", l)
	}

	ctx := trace.Start(context.Background(), "4bf92f3577b34da6a3ce929d0e0e4736")
	logger.InfoContext(ctx, "anonymous")
	trace.SetUser(ctx, 7)
	trace.SetConversation(ctx, 42)
	logger.InfoContext(ctx, "known")
	logger.With(slog.Int64("user_id", 7)).InfoContext(ctx, "with user")
	logger.InfoContext(ctx, "explicit", slog.Int64("conversation_id", 42))
	got := lines()
	if l := got[0]; l["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" || l["user_id"] != nil || l["conversation_id"] != nil {
		t.Errorf("before the user is known: %v", l)
	}
	for _, l := range got[1:] {
		if l["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" || l["user_id"] != 7.0 || l["conversation_id"] != 42.0 {
			t.Errorf("%s: %v", l["msg"], l)
		}
	}
}

func TestFailureLevel(t *testing.T) {
	for err, want := range map[error]slog.Level{
		context.Canceled: slog.LevelWarn,
		fmt.Errorf("query: %w", context.DeadlineExceeded):         slog.LevelWarn,
		errors.New("dial tcp 127.0.0.1:6379: connection refused"): slog.LevelError,
	} {
		if got := trace.FailureLevel(err); got != want {
			t.Errorf("FailureLevel(%v) = %v, want %v", err, got, want)
		}
	}
}
