package realtime

import (
	"strconv"
	"strings"
	"sync"
	"time"
)

// localValueTTL is how long a process keeps the typed value of an event it published:
// long enough for its own subscribers to get the event back from Redis, live or from
// history a little later; after it they decode the data, as other processes do.
const localValueTTL = 30 * time.Second

// localValues keeps the typed values (Event.Value) of the events this process published
// on Redis, which carries only their data. Each published event names its value with a
// token of this engine (the wire's "o"); the engine gives the value back to the events
// Redis delivers to it, so that the subscribers of the publishing process never decode
// what they published themselves.
type localValues struct {
	origin string // random per engine: another process's tokens never match

	mu    sync.Mutex
	n     uint64
	m     map[string]localValue
	sweep time.Time // when the next keep drops the values kept too long
}

type localValue struct {
	v  any
	at time.Time
}

func newLocalValues() *localValues {
	return &localValues{origin: newEpoch(), m: make(map[string]localValue)}
}

// keep keeps v for localValueTTL and answers its token.
func (l *localValues) keep(v any) string {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.After(l.sweep) {
		for token, kept := range l.m {
			if now.Sub(kept.at) > localValueTTL {
				delete(l.m, token)
			}
		}
		l.sweep = now.Add(localValueTTL)
	}
	l.n++
	token := l.origin + "." + strconv.FormatUint(l.n, 10)
	l.m[token] = localValue{v: v, at: now}
	return token
}

// get answers the value of token, or nil: none given, another process's, or dropped.
func (l *localValues) get(token string) any {
	if token == "" || !strings.HasPrefix(token, l.origin+".") {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m[token].v
}
