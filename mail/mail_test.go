package mail_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dsmail "github.com/dreamseed/messenger/mail"
	"github.com/dreamseed/messenger/mail/mailpittest"
)

func TestSendArrivesWithBothPartsAndHeaders(t *testing.T) {
	mp := mailpittest.Start(t)
	s, err := dsmail.New(mp.URL, "DreamSeed <no-reply@school.example>")
	if err != nil {
		t.Fatal(err)
	}
	id := s.NewMessageID()
	err = s.Send(context.Background(), dsmail.Message{
		To:              mail.Address{Name: "김학부모", Address: "parent@example.com"},
		Subject:         "[DreamSeed] 새로운 메시지가 도착했습니다",
		Text:            "안녕하세요 plain",
		HTML:            "<p>안녕하세요 <b>html</b></p>",
		MessageID:       id,
		ListUnsubscribe: "https://m.example/unsubscribe?t=abc",
	})
	if err != nil {
		t.Fatal(err)
	}
	got := mp.WaitFor(t, "parent@example.com", 1, 5*time.Second)[0]
	if got.Subject != "[DreamSeed] 새로운 메시지가 도착했습니다" {
		t.Errorf("subject %q", got.Subject)
	}
	if !strings.Contains(got.Text, "안녕하세요 plain") || !strings.Contains(got.HTML, "<b>html</b>") {
		t.Errorf("parts: text %q html %q", got.Text, got.HTML)
	}
	if "<"+got.MessageID+">" != id {
		t.Errorf("Message-ID %q, sent %q", got.MessageID, id)
	}
	if h := got.Headers["List-Unsubscribe"]; len(h) != 1 || h[0] != "<https://m.example/unsubscribe?t=abc>" {
		t.Errorf("List-Unsubscribe %q", h)
	}
	if h := got.Headers["List-Unsubscribe-Post"]; len(h) != 1 || h[0] != "List-Unsubscribe=One-Click" {
		t.Errorf("List-Unsubscribe-Post %q", h)
	}
	if got.From.Address != "no-reply@school.example" {
		t.Errorf("from %q", got.From.Address)
	}
}

func TestSendFailsWhenSMTPIsDownAndWhenItHangs(t *testing.T) {
	// Nothing listens: refused.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	s, err := dsmail.New("smtp://"+addr, "no-reply@school.example")
	if err != nil {
		t.Fatal(err)
	}
	msg := dsmail.Message{To: mail.Address{Address: "a@example.com"}, Subject: "x", Text: "x", HTML: "x"}
	if err := s.Send(context.Background(), msg); err == nil {
		t.Fatal("sent to a closed port")
	}
	// A server that accepts and never speaks: the timeout ends it.
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	s, err = dsmail.New("smtp://"+hang.Addr().String()+"?timeout=1s", "no-reply@school.example")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := s.Send(context.Background(), msg); err == nil {
		t.Fatal("sent to a silent server")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("a silent server held the send %s", d)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, c := range []struct{ url, from string }{
		{"http://h:25", "a@b.example"},
		{"smtp://", "a@b.example"},
		{"smtp://h:25?tls=off", "a@b.example"},
		{"smtp://h:25", "not an address"},
		{"smtp://h:25", "a@b.example\r\nBcc: x@y"},
	} {
		if _, err := dsmail.New(c.url, c.from); err == nil {
			t.Errorf("New(%q, %q) accepted", c.url, c.from)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("error repeats the URL: %v", err)
		}
	}
	if _, err := dsmail.New("smtp://u:secret@h", "a@b.example"); err != nil {
		t.Error(err)
	}
}

func TestRenderRefusesHeaderInjection(t *testing.T) {
	s, _ := dsmail.New("smtp://h:25", "a@b.example")
	_, err := s.Render(dsmail.Message{To: mail.Address{Address: "x@example.com"}, Subject: "hi\r\nBcc: evil@example.com"})
	if err == nil {
		t.Fatal("a subject with a line break was rendered")
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key, PEM, into dir.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

// TestSTARTTLS: a server that offers STARTTLS (and requires it) gets the message over TLS;
// its self-signed certificate is refused unless the URL says tls=insecure.
func TestSTARTTLS(t *testing.T) {
	cert, key := selfSigned(t)
	mp := mailpittest.StartWith(t, mailpittest.Options{TLSCert: cert, TLSKey: key, RequireSTARTTLS: true})
	msg := dsmail.Message{To: mail.Address{Address: "tls@example.com"}, Subject: "tls", Text: "over tls", HTML: "<p>over tls</p>"}

	verified, err := dsmail.New(mp.URL, "no-reply@school.example")
	if err != nil {
		t.Fatal(err)
	}
	if err := verified.Send(context.Background(), msg); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a self-signed certificate was accepted with verification on: %v", err)
	}
	insecure, err := dsmail.New(mp.URL+"?tls=insecure", "no-reply@school.example")
	if err != nil {
		t.Fatal(err)
	}
	if err := insecure.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	got := mp.WaitFor(t, "tls@example.com", 1, 5*time.Second)
	if len(got) != 1 || !strings.Contains(got[0].Text, "over tls") {
		t.Errorf("got %+v", got)
	}
}
