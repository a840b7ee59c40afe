package jobs_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dreamseed/messenger/internal/syncbuf"
	"github.com/dreamseed/messenger/internal/trace"
	"github.com/dreamseed/messenger/jobs"
)

// jobLines answers the JSON log lines of logs whose msg is msg and whose kind is kind.
func jobLines(t *testing.T, logs *syncbuf.Buffer, msg, kind string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, sc.Text())
		}
		if line["msg"] == msg && line["kind"] == kind {
			out = append(out, line)
		}
	}
	return out
}

// TestJobCarriesTrace: a job enqueued in a context of a trace is worked in that trace: its
// attempts' lines, the failed one's WARN included, carry the inserting request's trace_id;
// a job enqueued outside any trace gets a fresh one of its own.
func TestJobCarriesTrace(t *testing.T) {
	e := newEnv(t)
	logs := &syncbuf.Buffer{}
	logger := slog.New(trace.NewJSON(logs, slog.LevelDebug))
	r := e.started(t, e.runnerLogging(t, logger, jobs.Config{Workers: 2, PollInterval: 20 * time.Millisecond, RetryBase: 10 * time.Millisecond}, nil))

	traceID := trace.NewID()
	ctx := trace.Start(context.Background(), traceID)
	tx, err := e.app.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.InsertTx(ctx, tx, recordArgs{Name: "traced", Fail: 1}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	e.insert(t, r, recordArgs{Name: "untraced"}, true)
	e.waitRuns(t, "traced", 1, 10*time.Second)
	e.waitRuns(t, "untraced", 1, 10*time.Second)

	var own, other int
	deadline := time.Now().Add(5 * time.Second)
	for own < 2 && time.Now().Before(deadline) { // the last attempt's line follows its run
		time.Sleep(20 * time.Millisecond)
		own, other = 0, 0
		for _, l := range jobLines(t, logs, "job worked", "test_record") {
			switch id, _ := l["trace_id"].(string); {
			case id == traceID:
				own++
			case trace.ValidID(id):
				other++
			default:
				t.Fatalf("job line without a valid trace_id: %v", l)
			}
		}
	}
	if own != 2 || other != 1 {
		t.Fatalf("job lines: %d of the request's trace (want 2 attempts), %d of another (want 1)\n%s", own, other, logs.String())
	}
	failed := jobLines(t, logs, "job failed", "test_record")
	if len(failed) != 1 || failed[0]["trace_id"] != traceID || failed[0]["level"] != "WARN" {
		t.Fatalf("failed attempt's lines: %v, want one WARN of trace %s", failed, traceID)
	}
}
