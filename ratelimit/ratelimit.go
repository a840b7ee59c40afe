// Package ratelimit keeps the per-user token buckets that stop a script, never a person:
// each action (sending, typing, read marks, creating conversations, inviting, signing in)
// has a rate and a burst, and a Limiter holds the buckets, in memory for one process or in
// Redis for several.
package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dreamseed/messenger"
)

// Rate is a token bucket's size: Burst tokens at most, refilled at PerSecond. The zero
// Rate is no limit.
type Rate struct {
	PerSecond float64
	Burst     int
}

// Off reports whether r limits nothing.
func (r Rate) Off() bool { return r.PerSecond <= 0 || r.Burst <= 0 }

// String writes r as ParseRate reads it.
func (r Rate) String() string {
	if r.Off() {
		return "off"
	}
	return strconv.FormatFloat(r.PerSecond, 'f', -1, 64) + ":" + strconv.Itoa(r.Burst)
}

// refill answers how long an empty bucket takes to be full again: after that an idle
// bucket is the same as none.
func (r Rate) refill() time.Duration {
	return time.Duration(float64(r.Burst) / r.PerSecond * float64(time.Second))
}

// ParseRate reads "PER_SECOND:BURST" (e.g. "30:60", "0.5:10") or "off".
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if s == "off" {
		return Rate{}, nil
	}
	per, burst, ok := strings.Cut(s, ":")
	r := Rate{}
	var err1, err2 error
	r.PerSecond, err1 = strconv.ParseFloat(per, 64)
	r.Burst, err2 = strconv.Atoi(burst)
	if !ok || err1 != nil || err2 != nil || math.IsNaN(r.PerSecond) || math.IsInf(r.PerSecond, 0) ||
		r.PerSecond <= 0 || r.Burst < 1 || r.Burst > 1_000_000 {
		return Rate{}, fmt.Errorf("%q is not PER_SECOND:BURST (e.g. 30:60) or off", s)
	}
	return r, nil
}

// Limiter holds token buckets by key.
type Limiter interface {
	// Take takes one token from the bucket key, which holds r. When the bucket is empty it
	// answers false and how long until a token is back.
	Take(ctx context.Context, key string, r Rate) (ok bool, retryAfter time.Duration, err error)
}

// Action names what a bucket counts; each user (or address) has one bucket per action.
type Action string

// The limited actions.
const (
	Send          Action = "send"
	Typing        Action = "typing"
	Read          Action = "read"
	Create        Action = "create"
	Invite        Action = "invite"
	SignInAddress Action = "signin_ip"   // refused sign-ins per client address
	SignInSubject Action = "signin_sub"  // sign-ins per portal user (iss and sub)
	PushTicket    Action = "push_ticket" // one-time tickets of the push opt-in window
)

// Actions lists every action, in the order docs/configuration.md lists their variables.
var Actions = []Action{Send, Typing, Read, Create, Invite, SignInAddress, SignInSubject, PushTicket}

// Rates is the bucket size of each action; an action without one is not limited.
type Rates map[Action]Rate

// DefaultRates answers the sizes no person meets: docs/configuration.md says why each is safe.
func DefaultRates() Rates {
	return Rates{
		Send:          {PerSecond: 30, Burst: 60},
		Typing:        {PerSecond: 5, Burst: 10},
		Read:          {PerSecond: 10, Burst: 30},
		Create:        {PerSecond: 1, Burst: 20},
		Invite:        {PerSecond: 1, Burst: 20},
		SignInAddress: {PerSecond: 20, Burst: 300},
		SignInSubject: {PerSecond: 1, Burst: 10},
		PushTicket:    {PerSecond: 1, Burst: 10},
	}
}

// Error is the answer to a request past its limit: a domain error with the code
// rate_limited, and how long to wait.
type Error struct {
	Action     Action
	RetryAfter time.Duration
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("rate limited: %s, retry after %s", e.Action, e.RetryAfter)
}

// Unwrap answers the domain error, so that messenger.ErrorCode sees rate_limited.
func (e *Error) Unwrap() error {
	return messenger.Errorf(messenger.ERATELIMITED, "error.rate_limited.retry", e.Seconds())
}

// Seconds is RetryAfter in whole seconds, at least 1: the Retry-After header's value.
func (e *Error) Seconds() int {
	return max(1, int(math.Ceil(e.RetryAfter.Seconds())))
}

// Limits applies Rates with a Limiter. A nil *Limits limits nothing. A limiter that
// fails lets the request through: the limits must never stop the messenger.
type Limits struct {
	limiter  Limiter
	rates    Rates
	logger   *slog.Logger
	limited  *prometheus.CounterVec
	failures prometheus.Counter
	warned   atomic.Int64 // unix nanos of the last warning, so a Redis outage logs once in a while
	resting  atomic.Int64 // unix nanos until which a failed limiter is not asked
}

// limiterTimeout bounds one bucket check: a slow limiter lets the request through rather
// than hold it. After a failure the limiter rests for limiterRest, so that a Redis that
// does not answer delays one request a second, not every one.
const (
	limiterTimeout = 250 * time.Millisecond
	limiterRest    = time.Second
)

// New answers Limits applying rates with limiter.
func New(limiter Limiter, rates Rates, logger *slog.Logger) *Limits {
	l := &Limits{
		limiter: limiter,
		rates:   rates,
		logger:  logger,
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "messenger_rate_limited_total",
			Help: "Requests refused with 429 because their user or address was past a rate limit, by action.",
		}, []string{"action"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "messenger_rate_limit_errors_total",
			Help: "Rate limit checks that failed (Redis unreachable or slow) and let the request through.",
		}),
	}
	for a, r := range rates {
		if !r.Off() {
			l.limited.WithLabelValues(string(a)) // every series from the start, at zero
		}
	}
	return l
}

// Allow takes a token of action from who's bucket (a user id, an address, a subject):
// nil when there was one, an *Error when the bucket is empty.
func (l *Limits) Allow(ctx context.Context, action Action, who string) error {
	if l == nil {
		return nil
	}
	r, ok := l.rates[action]
	if !ok || r.Off() || time.Now().UnixNano() < l.resting.Load() {
		return nil
	}
	checkCtx, cancel := context.WithTimeout(ctx, limiterTimeout)
	defer cancel()
	allowed, wait, err := l.limiter.Take(checkCtx, string(action)+":"+who, r)
	if err != nil {
		if ctx.Err() != nil {
			return nil // the client went away; the limiter is not to blame
		}
		l.failures.Inc()
		now := time.Now().UnixNano()
		l.resting.Store(now + int64(limiterRest))
		if last := l.warned.Load(); now-last > int64(time.Minute) && l.warned.CompareAndSwap(last, now) {
			l.logger.Warn("rate limit check failed; letting requests through",
				slog.String("action", string(action)), slog.String("error", err.Error()))
		}
		return nil
	}
	if allowed {
		return nil
	}
	l.limited.WithLabelValues(string(action)).Inc()
	return &Error{Action: action, RetryAfter: wait}
}

// Describe implements prometheus.Collector.
func (l *Limits) Describe(ch chan<- *prometheus.Desc) {
	l.limited.Describe(ch)
	l.failures.Describe(ch)
}

// Collect implements prometheus.Collector.
func (l *Limits) Collect(ch chan<- prometheus.Metric) {
	l.limited.Collect(ch)
	l.failures.Collect(ch)
}
