package trace

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"
)

// The keys Handler writes.
const (
	KeyTrace        = "trace_id"
	KeyUser         = "user_id"
	KeyConversation = "conversation_id"
)

// Handler wraps a slog.Handler and adds to each record logged with a context of Start its
// trace_id, and its user_id and conversation_id once known, so that call sites only pass
// the context (logger.InfoContext(ctx, …)). A key the line already has (an attribute of
// the call or of logger.With) is not written twice. The fields go into the open group, if
// any: the messenger's loggers open none.
type Handler struct {
	inner slog.Handler
	has   keys // the keys logger.With gave already
}

// keys is a set of the three keys.
type keys uint8

const (
	hasTrace keys = 1 << iota
	hasUser
	hasConversation
)

func keyOf(k string) keys {
	switch k {
	case KeyTrace:
		return hasTrace
	case KeyUser:
		return hasUser
	case KeyConversation:
		return hasConversation
	}
	return 0
}

// NewHandler answers a Handler writing to inner.
func NewHandler(inner slog.Handler) *Handler { return &Handler{inner: inner} }

// NewJSON answers the messenger's log handler: a Handler writing JSON lines to w, at level
// and above.
func NewJSON(w io.Writer, level slog.Leveler) *Handler {
	return NewHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: jsonTime}))
}

// jsonTime writes a time JSON cannot hold (a year outside 0–9999: River logs "never" as the
// largest time) as a string, which slog would otherwise write as two strings in a row, and
// the line would not be JSON.
func jsonTime(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindTime {
		if y := a.Value.Time().Year(); y < 0 || y > 9999 {
			a.Value = slog.StringValue(a.Value.Time().Format(time.RFC3339Nano))
		}
	}
	return a
}

// Enabled answers inner's: a disabled level costs no context lookup.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

// Handle adds the context's fields the record lacks and hands it on.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	f := from(ctx)
	if f == nil {
		return h.inner.Handle(ctx, r)
	}
	has := h.has
	r.Attrs(func(a slog.Attr) bool {
		has |= keyOf(a.Key)
		return true
	})
	var add [3]slog.Attr
	n := 0
	if has&hasTrace == 0 {
		add[n] = slog.String(KeyTrace, f.traceID)
		n++
	}
	if id := f.user.Load(); id != 0 && has&hasUser == 0 {
		add[n] = slog.Int64(KeyUser, id)
		n++
	}
	if id := f.conv.Load(); id != 0 && has&hasConversation == 0 {
		add[n] = slog.Int64(KeyConversation, id)
		n++
	}
	r.AddAttrs(add[:n]...)
	return h.inner.Handle(ctx, r)
}

// WithAttrs answers a Handler whose lines carry attrs, and which remembers which of its
// keys they give.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	has := h.has
	for _, a := range attrs {
		has |= keyOf(a.Key)
	}
	return &Handler{inner: h.inner.WithAttrs(attrs), has: has}
}

// WithGroup answers a Handler whose later attributes go into group name.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{inner: h.inner.WithGroup(name), has: h.has}
}

// FailureLevel answers the level of a failed call to the database or the network: ERROR,
// except for a timeout or a context that ended (the client went away), which are WARN: the
// client goes away on its own, and a timeout is retried or recovered from.
func FailureLevel(err error) slog.Level {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return slog.LevelWarn
	}
	return slog.LevelError
}
