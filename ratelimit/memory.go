package ratelimit

import (
	"context"
	"sync"
	"time"
)

// MemoryMaxBuckets bounds the memory limiter: at it, buckets that are full again are
// forgotten, and if that leaves more than three quarters, all of them (every key then
// starts with a full burst, as a new user would).
const MemoryMaxBuckets = 100_000

// Memory is the Limiter of one process. Idle buckets are forgotten once they have
// refilled, so memory follows the number of users active in the last minute or so.
type Memory struct {
	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
	now       func() time.Time
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was right
	full   time.Time // from then on the bucket is full again and can be forgotten
}

// NewMemory answers an empty memory limiter.
func NewMemory() *Memory {
	return &Memory{buckets: make(map[string]*bucket), now: time.Now}
}

// sweepEvery is how often Take looks for buckets to forget.
const sweepEvery = time.Minute

// Take implements Limiter.
func (m *Memory) Take(_ context.Context, key string, r Rate) (bool, time.Duration, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.Sub(m.lastSweep) >= sweepEvery || len(m.buckets) >= MemoryMaxBuckets {
		m.sweep(now)
	}
	b, ok := m.buckets[key]
	if !ok {
		b = &bucket{tokens: float64(r.Burst), at: now}
		m.buckets[key] = b
	}
	b.tokens = min(float64(r.Burst), b.tokens+now.Sub(b.at).Seconds()*r.PerSecond)
	b.at = now
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) / r.PerSecond * float64(time.Second)), nil
	}
	b.tokens--
	b.full = now.Add(time.Duration((float64(r.Burst) - b.tokens) / r.PerSecond * float64(time.Second)))
	return true, 0, nil
}

// sweep forgets the buckets that are full again; a map still near its bound starts over,
// so that the next sweep is not due at the next new key.
func (m *Memory) sweep(now time.Time) {
	m.lastSweep = now
	for k, b := range m.buckets {
		if !now.Before(b.full) {
			delete(m.buckets, k)
		}
	}
	if len(m.buckets) > MemoryMaxBuckets*3/4 {
		clear(m.buckets)
	}
}

// Len answers how many buckets the limiter holds.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.buckets)
}
