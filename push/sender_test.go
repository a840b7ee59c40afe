package push_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dreamseed/messenger/push"
	"github.com/dreamseed/messenger/push/pushtest"
)

func newSender(t *testing.T, cfg push.Config) *push.Sender {
	t.Helper()
	if cfg.Keys.Public == "" {
		k, err := push.GenerateKeys()
		if err != nil {
			t.Fatal(err)
		}
		cfg.Keys = k
	}
	if cfg.Subject == "" {
		cfg.Subject = "mailto:admin@school.example"
	}
	s, err := push.NewSender(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sub(s *pushtest.Subscription) push.Subscription {
	return push.Subscription{ID: s.ID, Endpoint: s.Endpoint, P256dh: s.P256dh, Auth: s.Auth}
}

func TestSendIsDecryptedByTheSubscriber(t *testing.T) {
	svc := pushtest.New(t)
	s := newSender(t, push.Config{AllowPrivate: true})
	svc.VAPIDKey = s.PublicKey()
	ps := svc.Subscribe()
	payload := []byte(`{"title":"3학년 1반","body":"김선생: 내일 준비물은 색연필입니다"}`)
	r := s.Send(context.Background(), sub(ps), push.Notification{Payload: payload, Topic: "c42", Urgent: true})
	if r.Outcome != push.Sent || r.Err != nil {
		t.Fatalf("send: %+v", r)
	}
	got := svc.Wait(t, ps, 1, 5*time.Second)[0]
	if string(got.Payload) != string(payload) {
		t.Fatalf("decrypted %q, want %q", got.Payload, payload)
	}
	if got.Topic != "c42" || got.Urgency != "high" || got.TTL != "86400" {
		t.Fatalf("headers: topic %q urgency %q ttl %q", got.Topic, got.Urgency, got.TTL)
	}
	if got.Subject != "mailto:admin@school.example" {
		t.Fatalf("VAPID sub %q", got.Subject)
	}
	if d := time.Until(got.Expires); d <= 0 || d >= 24*time.Hour {
		t.Fatalf("VAPID exp in %v", d)
	}
	// A group's push is not urgent; the largest payload still fits the record.
	big := []byte(strings.Repeat("가", push.MaxPayload/3))
	if r := s.Send(context.Background(), sub(ps), push.Notification{Payload: big, Topic: "c43"}); r.Outcome != push.Sent {
		t.Fatalf("largest payload: %+v", r)
	}
	got = svc.Wait(t, ps, 2, 5*time.Second)[1]
	if string(got.Payload) != string(big) || got.Urgency != "normal" {
		t.Fatalf("second push: %d bytes, urgency %q", len(got.Payload), got.Urgency)
	}
	// One byte more never leaves.
	over := append(big, make([]byte, push.MaxPayload-len(big)+1)...)
	if r := s.Send(context.Background(), sub(ps), push.Notification{Payload: over}); r.Outcome != push.TooLarge {
		t.Fatalf("oversized payload: %+v", r)
	}
	if n := len(svc.Pushes(ps)); n != 2 {
		t.Fatalf("%d pushes arrived, want 2", n)
	}
}

func TestPushServiceAnswers(t *testing.T) {
	svc := pushtest.New(t)
	s := newSender(t, push.Config{AllowPrivate: true})
	for _, tc := range []struct {
		answer  pushtest.Answer
		outcome push.Outcome
		reason  string
		after   time.Duration
	}{
		{pushtest.Answer{Status: 404}, push.Gone, "gone", 0},
		{pushtest.Answer{Status: 410}, push.Gone, "gone", 0},
		{pushtest.Answer{Status: 413}, push.TooLarge, "too_large", 0},
		{pushtest.Answer{Status: 429, RetryAfter: "7"}, push.Retry, "rate_limited", 7 * time.Second},
		{pushtest.Answer{Status: 429, RetryAfter: "86400"}, push.Retry, "rate_limited", push.MaxRetryAfter},
		{pushtest.Answer{Status: 500}, push.Retry, "server_error", 0},
		{pushtest.Answer{Status: 503, RetryAfter: "2"}, push.Retry, "server_error", 2 * time.Second},
		{pushtest.Answer{Status: 400}, push.Failed, "rejected", 0},
	} {
		ps := svc.Subscribe()
		svc.Answer(ps, tc.answer)
		r := s.Send(context.Background(), sub(ps), push.Notification{Payload: []byte("x")})
		if r.Outcome != tc.outcome || r.Reason != tc.reason || r.RetryAfter != tc.after || r.Status != tc.answer.Status {
			t.Errorf("%+v: got %+v", tc.answer, r)
		}
	}
	if errs := svc.Errors(); len(errs) > 0 {
		t.Fatal(errs)
	}
}

func TestHangingPushServiceTimesOut(t *testing.T) {
	svc := pushtest.New(t)
	s := newSender(t, push.Config{AllowPrivate: true, Timeout: 300 * time.Millisecond})
	ps := svc.Subscribe()
	svc.Answer(ps, pushtest.Answer{Hang: true})
	start := time.Now()
	r := s.Send(context.Background(), sub(ps), push.Notification{Payload: []byte("x")})
	if r.Outcome != push.Retry || r.Reason != "timeout" {
		t.Fatalf("hang: %+v", r)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("a hanging push service held the sender %v", d)
	}
	// The next push goes through.
	if r := s.Send(context.Background(), sub(ps), push.Notification{Payload: []byte("y")}); r.Outcome != push.Sent {
		t.Fatalf("after the hang: %+v", r)
	}
}

func TestNoPushReachesAnInternalHost(t *testing.T) {
	svc := pushtest.New(t)
	s := newSender(t, push.Config{})
	ps := svc.Subscribe()
	// The local service is http on loopback: refused before any request.
	if r := s.Send(context.Background(), sub(ps), push.Notification{Payload: []byte("x")}); r.Outcome != push.Failed || r.Reason != "refused_endpoint" {
		t.Fatalf("http loopback endpoint: %+v", r)
	}
	for _, ep := range []string{
		"http://push.example.com/x", "https://127.0.0.1/x", "https://[::1]/x", "https://[::ffff:127.0.0.1]/x",
		"https://169.254.169.254/latest/meta-data", "https://10.0.0.5/x", "https://192.168.1.1/x",
		"https://100.64.0.1/x", "https://localhost/x", "https://a.localhost./x", "https://user:pw@push.example.com/x",
		"ftp://push.example.com/x", "/relative",
	} {
		if err := push.CheckEndpoint(ep, false); err == nil {
			t.Errorf("%s accepted", ep)
		}
	}
	if err := push.CheckEndpoint("https://fcm.googleapis.com/fcm/send/abc", false); err != nil {
		t.Errorf("a public endpoint refused: %v", err)
	}
	// A name that resolves to loopback is refused when dialled, after DNS: an https
	// service on 127.0.0.1 reached as "localhost" (which CheckEndpoint would refuse by name,
	// so the dialer is asked directly).
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("a push reached a loopback service")
	}))
	defer tls.Close()
	port := tls.URL[strings.LastIndex(tls.URL, ":"):]
	_, err := push.Dial(s, "https://localhost"+port+"/push")
	if !errors.Is(err, push.ErrBlockedAddress) {
		t.Fatalf("dial of localhost: %v", err)
	}
}

func TestSenderConfig(t *testing.T) {
	k, _ := push.GenerateKeys()
	other, _ := push.GenerateKeys()
	for _, cfg := range []push.Config{
		{Keys: push.Keys{Public: k.Public, Private: other.Private}, Subject: "mailto:a@b.example"},
		{Keys: push.Keys{Public: "not base64!", Private: k.Private}, Subject: "mailto:a@b.example"},
		{Keys: k, Subject: "admin@school.example"},
		{Keys: k, Subject: "http://school.example"},
		{Keys: k, Subject: ""},
	} {
		if _, err := push.NewSender(cfg, nil); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	if _, err := push.NewSender(push.Config{Keys: k, Subject: "https://school.example/contact"}, nil); err != nil {
		t.Error(err)
	}
}

func TestDevelopmentKeysAreKept(t *testing.T) {
	dir := t.TempDir()
	a, err := push.LoadOrCreateKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := push.LoadOrCreateKeys(dir)
	if err != nil || a != b {
		t.Fatalf("second load: %v, %+v != %+v", err, a, b)
	}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
}
