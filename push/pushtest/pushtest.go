// Package pushtest is a real push service for tests, over HTTP on loopback: it hands out
// subscriptions (a P-256 key pair and an auth secret, as a browser makes them), checks each
// push's VAPID Authorization (RFC 8292: the JWT's ES256 signature with the key it names,
// aud, exp under 24 hours, sub), DECRYPTS its aes128gcm body with the subscription's
// private key (RFC 8291, stdlib only) and keeps what it received. It answers 201, or
// whatever a test asks of it: 404, 410, 413, 429 with Retry-After, 500, or no answer at all
// (a push service that hangs).
package pushtest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Subscription is what a browser's PushSubscription holds, with its private key kept here.
type Subscription struct {
	ID       string
	Endpoint string
	P256dh   string // base64url, the uncompressed public key
	Auth     string // base64url, 16 bytes
	key      *ecdh.PrivateKey
	auth     []byte
}

// Answer is how the service answers one push: a status (201 when 0), a Retry-After
// value, or Hang: no answer until the client gives up.
type Answer struct {
	Status     int
	RetryAfter string
	Hang       bool
}

// Push is one request the service received and could read.
type Push struct {
	Subscription string // its ID
	Payload      []byte // decrypted
	Topic        string
	Urgency      string
	TTL          string
	Status       int // what the service answered
	Subject      string
	Expires      time.Time
	At           time.Time
}

// Server is the push service.
type Server struct {
	URL    string
	srv    *httptest.Server
	mu     sync.Mutex
	subs   map[string]*Subscription
	answer map[string][]Answer
	pushes []Push
	errs   []error
	notify chan struct{}
	hang   chan struct{}
	n      int
	// VAPIDKey, when set, is the only VAPID public key (base64url) accepted.
	VAPIDKey string
}

// New starts a push service, closed when the test ends.
func New(t testing.TB) *Server {
	s := &Server{subs: map[string]*Subscription{}, answer: map[string][]Answer{},
		notify: make(chan struct{}, 1), hang: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(func() {
		close(s.hang)
		s.srv.Close()
	})
	return s
}

// Subscribe makes a new subscription, as a browser would.
func (s *Server) Subscribe() *Subscription {
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	id := fmt.Sprintf("s%d", s.n)
	sub := &Subscription{ID: id, Endpoint: s.URL + "/push/" + id,
		P256dh: base64.RawURLEncoding.EncodeToString(key.PublicKey().Bytes()),
		Auth:   base64.RawURLEncoding.EncodeToString(auth), key: key, auth: auth}
	s.subs[id] = sub
	return sub
}

// Answer queues answers for a subscription's next pushes, in order; then 201 again.
func (s *Server) Answer(sub *Subscription, a ...Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer[sub.ID] = append(s.answer[sub.ID], a...)
}

// Pushes answers every push received so far (to sub only, when it is not nil).
func (s *Server) Pushes(sub *Subscription) []Push {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Push
	for _, p := range s.pushes {
		if sub == nil || p.Subscription == sub.ID {
			out = append(out, p)
		}
	}
	return out
}

// Errors answers the pushes the service refused as malformed (bad VAPID, undecryptable).
func (s *Server) Errors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

// Wait waits until sub (nil: any) has received n pushes, or fails the test after timeout.
func (s *Server) Wait(t testing.TB, sub *Subscription, n int, timeout time.Duration) []Push {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if p := s.Pushes(sub); len(p) >= n {
			return p
		}
		if errs := s.Errors(); len(errs) > 0 {
			t.Fatalf("pushtest: refused pushes: %v", errs)
		}
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("pushtest: %d pushes after %v, want %d", len(s.Pushes(sub)), timeout, n)
		}
		select {
		case <-s.notify:
		case <-time.After(min(left, 50*time.Millisecond)):
		}
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutPrefix(r.URL.Path, "/push/")
	s.mu.Lock()
	sub := s.subs[id]
	var a Answer
	if q := s.answer[id]; len(q) > 0 {
		a, s.answer[id] = q[0], q[1:]
	}
	s.mu.Unlock()
	if !ok || sub == nil || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	p, err := s.read(r, sub)
	if err != nil {
		s.mu.Lock()
		s.errs = append(s.errs, err)
		s.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if a.Hang {
		select {
		case <-r.Context().Done():
		case <-s.hang:
		}
		return
	}
	p.Status = a.Status
	if p.Status == 0 {
		p.Status = http.StatusCreated
	}
	s.mu.Lock()
	s.pushes = append(s.pushes, p)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
	if a.RetryAfter != "" {
		w.Header().Set("Retry-After", a.RetryAfter)
	}
	w.WriteHeader(p.Status)
}

// read checks a push's headers and VAPID token and decrypts its body.
func (s *Server) read(r *http.Request, sub *Subscription) (Push, error) {
	p := Push{Subscription: sub.ID, Topic: r.Header.Get("Topic"), Urgency: r.Header.Get("Urgency"),
		TTL: r.Header.Get("TTL"), At: time.Now()}
	if ce := r.Header.Get("Content-Encoding"); ce != "aes128gcm" {
		return p, fmt.Errorf("Content-Encoding %q", ce)
	}
	if p.TTL == "" {
		return p, errors.New("no TTL")
	}
	claims, err := s.vapid(r.Header.Get("Authorization"))
	if err != nil {
		return p, err
	}
	p.Subject, p.Expires = claims.Sub, time.Unix(claims.Exp, 0)
	body, err := io.ReadAll(io.LimitReader(r.Body, 8192))
	if err != nil {
		return p, err
	}
	if len(body) > 4096 {
		return p, fmt.Errorf("a body of %d bytes", len(body))
	}
	p.Payload, err = Decrypt(body, sub.key, sub.auth)
	return p, err
}

type claims struct {
	Aud string `json:"aud"`
	Exp int64  `json:"exp"`
	Sub string `json:"sub"`
}

// vapid checks an Authorization header "vapid t=<JWT>, k=<public key>" (RFC 8292).
func (s *Server) vapid(h string) (claims, error) {
	var c claims
	rest, ok := strings.CutPrefix(h, "vapid ")
	if !ok {
		return c, fmt.Errorf("Authorization %q is not vapid", h)
	}
	var token, key string
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			token = v
		case "k":
			key = v
		}
	}
	if s.VAPIDKey != "" && key != s.VAPIDKey {
		return c, errors.New("vapid: not the expected public key")
	}
	pubBytes, err := base64.RawURLEncoding.DecodeString(key)
	if err != nil {
		return c, fmt.Errorf("vapid k: %w", err)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pubBytes)
	if err != nil {
		return c, fmt.Errorf("vapid k: %w", err)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return c, errors.New("vapid t is not a JWT")
	}
	header, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	payload, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err := errors.Join(err1, err2, err3); err != nil || len(sig) != 64 {
		return c, fmt.Errorf("vapid t: %v", err)
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(header, &hdr); err != nil || hdr.Alg != "ES256" {
		return c, fmt.Errorf("vapid alg %q", hdr.Alg)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	var rr, ss = new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(pub, digest[:], rr, ss) {
		return c, errors.New("vapid: bad signature")
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return c, fmt.Errorf("vapid claims: %w", err)
	}
	if c.Aud != s.URL {
		return c, fmt.Errorf("vapid aud %q, want %q", c.Aud, s.URL)
	}
	now := time.Now()
	if exp := time.Unix(c.Exp, 0); !exp.After(now) || exp.Sub(now) >= 24*time.Hour {
		return c, fmt.Errorf("vapid exp %v is not within 24 hours", exp)
	}
	if !strings.HasPrefix(c.Sub, "mailto:") && !strings.HasPrefix(c.Sub, "https://") ||
		strings.HasPrefix(c.Sub, "mailto:mailto:") {
		return c, fmt.Errorf("vapid sub %q", c.Sub)
	}
	return c, nil
}

// Decrypt reads an aes128gcm body (RFC 8188) encrypted for a Web Push subscription (RFC
// 8291) with the subscription's private key and auth secret: one record, its padding
// removed.
func Decrypt(body []byte, key *ecdh.PrivateKey, auth []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("aes128gcm: short header")
	}
	salt, rs, idlen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if len(body) < 21+idlen || idlen != 65 {
		return nil, errors.New("aes128gcm: the key id is not a P-256 key")
	}
	asPublic, ciphertext := body[21:21+idlen], body[21+idlen:]
	if rs < 18 || uint32(len(ciphertext)) > rs {
		return nil, fmt.Errorf("aes128gcm: a record of %d bytes with rs %d", len(ciphertext), rs)
	}
	peer, err := ecdh.P256().NewPublicKey(asPublic)
	if err != nil {
		return nil, err
	}
	secret, err := key.ECDH(peer)
	if err != nil {
		return nil, err
	}
	prkKey, err := hkdf.Extract(sha256.New, secret, auth)
	if err != nil {
		return nil, err
	}
	info := "WebPush: info\x00" + string(key.PublicKey().Bytes()) + string(asPublic)
	ikm, err := hkdf.Expand(sha256.New, prkKey, info, 32)
	if err != nil {
		return nil, err
	}
	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, err
	}
	cek, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, err
	}
	nonce, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, nonce, ciphertext, nil)
	if err != nil {
		return nil, fmt.Errorf("aes128gcm: %w", err)
	}
	// The last record ends with the delimiter 2, then zero padding.
	end := len(plain) - 1
	for end >= 0 && plain[end] == 0 {
		end--
	}
	if end < 0 || plain[end] != 2 {
		return nil, errors.New("aes128gcm: no last-record delimiter")
	}
	return plain[:end], nil
}
