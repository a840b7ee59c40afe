package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	webpush "github.com/SherClockHolmes/webpush-go"
	"github.com/prometheus/client_golang/prometheus"
)

// Limits of a push.
const (
	// RecordSize is the encrypted body's size: webpush-go pads every payload to it, and
	// Firefox for Android refuses more than about 3,000 bytes.
	RecordSize = 3000
	// MaxPayload is the largest payload that fits RecordSize: 16 bytes of salt, 4 of record
	// size, 1 + 65 of key, the padding delimiter and the 16-byte AES-GCM tag.
	MaxPayload = RecordSize - 16 - 4 - 1 - 65 - 1 - 16
	// TTL is how long a push service keeps a push for a device that is offline.
	TTL = 24 * time.Hour
	// DefaultTimeout bounds one request to a push service, connection included.
	DefaultTimeout = 10 * time.Second
	// MaxRetryAfter caps a push service's Retry-After.
	MaxRetryAfter = time.Hour
)

// Config is what a Sender needs.
type Config struct {
	Keys    Keys
	Subject string // mailto:… or https://…, the VAPID JWT's sub
	// AllowPrivate lets endpoints be http and reach loopback, private and link-local
	// addresses (MESSENGER_PUSH_ALLOW_PRIVATE; tests and development only).
	AllowPrivate bool
	Timeout      time.Duration // one request; DefaultTimeout when 0
}

// CheckSubject answers whether s can be the VAPID subject: a mailto: address or an https URL.
func CheckSubject(s string) error {
	switch {
	case strings.HasPrefix(s, "mailto:") && strings.Contains(s, "@") && !strings.ContainsAny(s, " \r\n"):
		return nil
	case strings.HasPrefix(s, "https://"):
		if u, err := url.Parse(s); err == nil && u.Host != "" {
			return nil
		}
	}
	return fmt.Errorf("the VAPID subject must be mailto:address or an https URL, not %q", s)
}

// Subscription is a browser's push subscription: where to post, and its keys (base64url).
type Subscription struct {
	ID       string
	Endpoint string
	P256dh   string
	Auth     string
}

// Notification is one push: a payload (at most MaxPayload bytes, encrypted for the
// subscription), the Topic a newer push of the same one replaces while undelivered (at
// most 32 base64url characters) and whether it is urgent.
type Notification struct {
	Payload []byte
	Topic   string
	Urgent  bool
}

// Outcome is what a push service's answer means for the subscription.
type Outcome int

const (
	Sent     Outcome = iota // accepted (2xx)
	Gone                    // 404/410: the subscription is dead, delete it
	TooLarge                // 413 (or larger than MaxPayload): send a shorter payload
	Retry                   // 429, 5xx, a timeout or a network error: try again later
	Failed                  // anything else: give up on this push (the subscription stays)
)

// Result is the outcome of one push. RetryAfter is the push service's Retry-After (0 when
// it gave none), Reason the metric's label of a failure.
type Result struct {
	Outcome    Outcome
	Status     int
	RetryAfter time.Duration
	Reason     string
	Err        error
}

// Sender posts pushes. It is safe for concurrent use.
type Sender struct {
	cfg     Config
	client  *http.Client
	metrics *metrics
}

// ErrBlockedAddress is the dial error of an address a push may not reach.
var ErrBlockedAddress = errors.New("push: the endpoint's address is not public")

// NewSender checks cfg and builds a sender whose metrics are registered on reg (nil: none).
func NewSender(cfg Config, reg prometheus.Registerer) (*Sender, error) {
	if err := cfg.Keys.Validate(); err != nil {
		return nil, fmt.Errorf("push: %w", err)
	}
	cfg.Keys = cfg.Keys.normalized()
	if err := CheckSubject(cfg.Subject); err != nil {
		return nil, fmt.Errorf("push: %w", err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	m := newMetrics()
	if reg != nil {
		if err := m.register(reg); err != nil {
			return nil, err
		}
	}
	return &Sender{cfg: cfg, client: newClient(cfg), metrics: m}, nil
}

// PublicKey is the VAPID public key browsers subscribe with (applicationServerKey).
func (s *Sender) PublicKey() string { return s.cfg.Keys.Public }

// newClient is an HTTP client that dials only public addresses (unless allowed), checked
// after DNS resolution on the address actually dialled (a name that resolves to 127.0.0.1
// or to 169.254.169.254 is refused), uses no proxy from the environment and follows no
// redirect.
func newClient(cfg Config) *http.Client {
	dialer := &net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}
	if !cfg.AllowPrivate {
		dialer.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !publicAddr(ap.Addr()) {
				return fmt.Errorf("%w: %s", ErrBlockedAddress, address)
			}
			return nil
		}
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// sharedSpace is 100.64.0.0/10 (carrier-grade NAT), not public either.
var sharedSpace = netip.MustParsePrefix("100.64.0.0/10")

// publicAddr reports whether a push may reach a: not loopback, private, link-local
// (169.254.0.0/16: cloud metadata), multicast, unspecified or shared.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsValid() && !a.IsLoopback() && !a.IsPrivate() && !a.IsLinkLocalUnicast() &&
		!a.IsLinkLocalMulticast() && !a.IsInterfaceLocalMulticast() && !a.IsMulticast() &&
		!a.IsUnspecified() && !sharedSpace.Contains(a)
}

// CheckEndpoint answers whether a subscription's endpoint may be posted to: an absolute
// https URL without credentials (http too when private addresses are allowed), whose host,
// when it is an address, is public. Names are checked again when dialled.
func CheckEndpoint(endpoint string, allowPrivate bool) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || u.User != nil || len(endpoint) > 2048 {
		return errors.New("the push endpoint is not a URL")
	}
	if u.Scheme != "https" && !(allowPrivate && u.Scheme == "http") {
		return errors.New("the push endpoint must be https")
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil && !publicAddr(a) {
		return ErrBlockedAddress
	}
	if h := strings.ToLower(strings.TrimSuffix(host, ".")); h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return ErrBlockedAddress
	}
	return nil
}

// Send encrypts n for sub and posts it, answering what the push service said.
func (s *Sender) Send(ctx context.Context, sub Subscription, n Notification) Result {
	r := s.send(ctx, sub, n)
	if r.Outcome == Sent {
		s.metrics.sent.Inc()
	} else {
		s.metrics.failures.WithLabelValues(r.Reason).Inc()
	}
	return r
}

func (s *Sender) send(ctx context.Context, sub Subscription, n Notification) Result {
	if err := CheckEndpoint(sub.Endpoint, s.cfg.AllowPrivate); err != nil {
		return Result{Outcome: Failed, Reason: "refused_endpoint", Err: err}
	}
	if len(n.Payload) > MaxPayload {
		return Result{Outcome: TooLarge, Reason: "too_large", Err: fmt.Errorf("push: payload of %d bytes", len(n.Payload))}
	}
	opts := &webpush.Options{
		HTTPClient: s.client,
		RecordSize: RecordSize,
		// webpush-go prefixes mailto: to anything that is not https: give it the bare address.
		Subscriber:      strings.TrimPrefix(s.cfg.Subject, "mailto:"),
		Topic:           n.Topic,
		TTL:             int(TTL / time.Second),
		Urgency:         webpush.UrgencyNormal,
		VAPIDPublicKey:  s.cfg.Keys.Public,
		VAPIDPrivateKey: s.cfg.Keys.Private,
		VapidExpiration: time.Now().Add(12 * time.Hour),
	}
	if n.Urgent {
		opts.Urgency = webpush.UrgencyHigh
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	resp, err := webpush.SendNotificationWithContext(ctx, n.Payload, &webpush.Subscription{
		Endpoint: sub.Endpoint, Keys: webpush.Keys{P256dh: sub.P256dh, Auth: sub.Auth},
	}, opts)
	if err != nil {
		return dialFailure(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return answer(resp)
}

// dialFailure classifies an error before any answer: a refused address is final, a timeout
// or a network error is retried, a key that does not decode is final.
func dialFailure(err error) Result {
	var ne net.Error
	switch {
	case errors.Is(err, ErrBlockedAddress):
		return Result{Outcome: Failed, Reason: "refused_address", Err: err}
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return Result{Outcome: Retry, Reason: "timeout", Err: err}
	case errors.As(err, &ne), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return Result{Outcome: Retry, Reason: "network", Err: err}
	case errors.Is(err, context.Canceled):
		return Result{Outcome: Retry, Reason: "canceled", Err: err}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return Result{Outcome: Retry, Reason: "network", Err: err}
	}
	return Result{Outcome: Failed, Reason: "invalid_subscription", Err: err}
}

// answer classifies a push service's status.
func answer(resp *http.Response) Result {
	st := resp.StatusCode
	r := Result{Status: st}
	switch {
	case st >= 200 && st < 300:
		r.Outcome = Sent
	case st == http.StatusNotFound || st == http.StatusGone:
		r.Outcome, r.Reason = Gone, "gone"
	case st == http.StatusRequestEntityTooLarge:
		r.Outcome, r.Reason = TooLarge, "too_large"
	case st == http.StatusTooManyRequests:
		r.Outcome, r.Reason = Retry, "rate_limited"
		r.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	case st >= 500:
		r.Outcome, r.Reason = Retry, "server_error"
		r.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	default:
		r.Outcome, r.Reason = Failed, "rejected"
	}
	if r.Outcome != Sent {
		r.Err = fmt.Errorf("push: the push service answered %d", st)
	}
	return r
}

// retryAfter reads Retry-After (seconds or an HTTP date), capped at MaxRetryAfter.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		d = time.Duration(max(n, 0)) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), MaxRetryAfter)
}
