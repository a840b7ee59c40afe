package pushtest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dreamseed/messenger/push"
	"github.com/dreamseed/messenger/push/pushtest"
)

// vapid signs claims with a fresh key as a VAPID Authorization header.
func vapid(t *testing.T, claims map[string]any) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"typ": "JWT", "alg": "ES256"})
	c, _ := json.Marshal(claims)
	signing := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	digest := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	pub, _ := key.PublicKey.Bytes()
	return "vapid t=" + signing + "." + enc.EncodeToString(sig) + ", k=" + enc.EncodeToString(pub)
}

// TestPushtestRefuses: the receiver is a check, not a sink: a wrong VAPID token, an expiry a
// day or more ahead, a doubled mailto: and a body it cannot decrypt are refused and reported.
func TestPushtestRefuses(t *testing.T) {
	svc := pushtest.New(t)
	sub := svc.Subscribe()
	good := map[string]any{"aud": svc.URL, "exp": time.Now().Add(time.Hour).Unix(), "sub": "mailto:a@b.example"}
	for name, auth := range map[string]string{
		"not vapid":     "Bearer x",
		"wrong aud":     vapid(t, map[string]any{"aud": "https://elsewhere.example", "exp": good["exp"], "sub": good["sub"]}),
		"exp 25h":       vapid(t, map[string]any{"aud": svc.URL, "exp": time.Now().Add(25 * time.Hour).Unix(), "sub": good["sub"]}),
		"expired":       vapid(t, map[string]any{"aud": svc.URL, "exp": time.Now().Add(-time.Minute).Unix(), "sub": good["sub"]}),
		"mailto twice":  vapid(t, map[string]any{"aud": svc.URL, "exp": good["exp"], "sub": "mailto:mailto:a@b.example"}),
		"bad body":      vapid(t, good),
		"bad signature": strings.Replace(vapid(t, good), ".", ".e30", 1),
	} {
		req, _ := http.NewRequest(http.MethodPost, sub.Endpoint, strings.NewReader(strings.Repeat("x", 200)))
		req.Header.Set("Content-Encoding", "aes128gcm")
		req.Header.Set("TTL", "60")
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d", name, resp.StatusCode)
		}
	}
	if n := len(svc.Errors()); n != 7 || len(svc.Pushes(nil)) != 0 {
		t.Fatalf("%d refusals, %d pushes kept", n, len(svc.Pushes(nil)))
	}
	// Encrypted for another subscription: not decryptable with this one's key.
	other := svc.Subscribe()
	keys, _ := push.GenerateKeys()
	s, err := push.NewSender(push.Config{Keys: keys, Subject: "mailto:a@b.example", AllowPrivate: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := s.Send(context.Background(), push.Subscription{Endpoint: sub.Endpoint, P256dh: other.P256dh, Auth: other.Auth},
		push.Notification{Payload: []byte("hi")})
	if r.Outcome == push.Sent || len(svc.Errors()) != 8 {
		t.Fatalf("a push for another key: %+v, %d errors", r, len(svc.Errors()))
	}
}
