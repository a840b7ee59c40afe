// Package trace gives each request (and each job) a W3C trace id, keeps it in the context
// with the user and the conversation the work is for once they are known, and writes them
// on every log line written with that context (Handler), so that one trace can be followed
// from the proxy through the messenger to the jobs a request enqueued.
package trace

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync/atomic"
)

// Header is the W3C Trace Context request and response header.
const Header = "traceparent"

// fields is what a context knows of the work it serves. The user and conversation are set
// by whoever learns them (the session middleware, a handler reading the path), after the
// context was made, so that every later line of the request has them, its last included.
type fields struct {
	traceID string
	user    atomic.Int64
	conv    atomic.Int64
}

type fieldsKey struct{}

// Start answers a context for work of trace id traceID (see NewID, Parse), with no user or
// conversation yet.
func Start(ctx context.Context, traceID string) context.Context {
	return context.WithValue(ctx, fieldsKey{}, &fields{traceID: traceID})
}

func from(ctx context.Context) *fields {
	f, _ := ctx.Value(fieldsKey{}).(*fields)
	return f
}

// ID answers the trace id of ctx ("" outside a request or job).
func ID(ctx context.Context) string {
	if f := from(ctx); f != nil {
		return f.traceID
	}
	return ""
}

// SetUser records the signed-in user of ctx's work; it does nothing outside one.
func SetUser(ctx context.Context, id int64) {
	if f := from(ctx); f != nil {
		f.user.Store(id)
	}
}

// SetConversation records the conversation ctx's work is for; it does nothing outside one.
func SetConversation(ctx context.Context, id int64) {
	if f := from(ctx); f != nil {
		f.conv.Store(id)
	}
}

// NewID answers a fresh random trace id: 32 lowercase hex digits, never all zeros.
func NewID() string { return randomHex(16) }

// NewSpanID answers a fresh random span (parent) id: 16 lowercase hex digits, never all zeros.
func NewSpanID() string { return randomHex(8) }

func randomHex(n int) string {
	b := make([]byte, n)
	for {
		rand.Read(b)
		for _, c := range b {
			if c != 0 {
				return hex.EncodeToString(b)
			}
		}
	}
}

// Parse reads a traceparent header of version 00 ("00-<trace id>-<parent id>-<flags>", all
// lowercase hex) and answers its trace id and flags; ok is false for anything else,
// including an all-zero trace or parent id, which the specification makes invalid.
func Parse(header string) (traceID, flags string, ok bool) {
	if len(header) != 55 || header[:3] != "00-" || header[35] != '-' || header[52] != '-' {
		return "", "", false
	}
	traceID, parent, flags := header[3:35], header[36:52], header[53:55]
	if !lowerHex(traceID) || !lowerHex(parent) || !lowerHex(flags) || allZero(traceID) || allZero(parent) {
		return "", "", false
	}
	return traceID, flags, true
}

// Format answers the traceparent of a span of trace traceID.
func Format(traceID, spanID, flags string) string {
	return "00-" + traceID + "-" + spanID + "-" + flags
}

// ValidID reports whether id is a trace id as NewID and Parse answer them.
func ValidID(id string) bool { return len(id) == 32 && lowerHex(id) && !allZero(id) }

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func allZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}
