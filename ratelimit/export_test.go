package ratelimit

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SetClock makes m read the time from now.
func SetClock(m *Memory, now func() time.Time) { m.now = now }

// Failures is the counter of failed checks.
func (l *Limits) Failures() prometheus.Counter { return l.failures }
