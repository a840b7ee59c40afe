package jobs

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/dreamseed/messenger/internal/trace"
)

// metadataTrace is the key of a job's metadata that holds the trace id of the request that
// enqueued it.
const metadataTrace = "trace_id"

// traceMiddleware carries a request's trace into the jobs it enqueues: an inserted job
// keeps the trace id of the inserting context in its metadata, and a worked job's context
// has that trace (a fresh one for a job enqueued outside any request), so that the job's
// log lines carry the same trace_id as the request's. Each attempt is logged at DEBUG.
type traceMiddleware struct {
	river.MiddlewareDefaults
	logger *slog.Logger
}

// InsertMany writes the context's trace id into each job's metadata.
func (*traceMiddleware) InsertMany(ctx context.Context, params []*rivertype.JobInsertParams,
	doInner func(context.Context) ([]*rivertype.JobInsertResult, error)) ([]*rivertype.JobInsertResult, error) {
	if id := trace.ID(ctx); id != "" {
		for _, p := range params {
			p.Metadata = withTrace(p.Metadata, id)
		}
	}
	return doInner(ctx)
}

// Work runs the job in a context of the trace its metadata names.
func (m *traceMiddleware) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	ctx = trace.Start(ctx, jobTrace(job.Metadata))
	start := time.Now()
	err := doInner(ctx)
	if m.logger.Enabled(ctx, slog.LevelDebug) {
		attrs := []slog.Attr{slog.String("kind", job.Kind), slog.Int64("job", job.ID), slog.Int("attempt", job.Attempt),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000)}
		if err != nil {
			attrs = append(attrs, slog.String("error", err.Error()))
		}
		m.logger.LogAttrs(ctx, slog.LevelDebug, "job worked", attrs...)
	}
	return err
}

// withTrace answers metadata (a JSON object, or empty) with the trace id set; metadata that
// is not an object is left as it is.
func withTrace(metadata []byte, id string) []byte {
	m := map[string]any{}
	if len(metadata) > 0 {
		if err := json.Unmarshal(metadata, &m); err != nil || m == nil {
			return metadata
		}
	}
	m[metadataTrace] = id
	out, err := json.Marshal(m)
	if err != nil {
		return metadata
	}
	return out
}

// jobTrace answers the trace id a job's metadata holds, or a fresh one.
func jobTrace(metadata []byte) string {
	var m struct {
		TraceID string `json:"trace_id"`
	}
	if json.Unmarshal(metadata, &m) == nil && trace.ValidID(m.TraceID) {
		return m.TraceID
	}
	return trace.NewID()
}
