// Package mailpittest gives tests a real SMTP server that keeps what it receives: a private
// mailpit (go install github.com/axllent/mailpit@v1.33.1) on free ports over its own
// database, with helpers that read the delivered messages over its HTTP API.
package mailpittest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dreamseed/messenger/internal/daemon"
	"github.com/dreamseed/messenger/internal/freeport"
	"github.com/dreamseed/messenger/internal/gobin"
)

// Server is a running mailpit.
type Server struct {
	// SMTPAddr is its SMTP host:port (no TLS; AUTH with any user and password).
	SMTPAddr string
	// API is the base URL of its HTTP API and web interface.
	API string
	// URL is MESSENGER_SMTP_URL for it, with a user and password it accepts.
	URL string

	t    testing.TB
	bin  string
	db   string
	opts Options
	mu   sync.Mutex
	stop func()
}

// Options change how mailpit runs.
type Options struct {
	// TLSCert and TLSKey (PEM files) make it offer STARTTLS; with RequireSTARTTLS it refuses
	// mail from a client that does not start TLS.
	TLSCert, TLSKey string
	RequireSTARTTLS bool
}

// Binary finds mailpit on PATH or in $(go env GOPATH)/bin.
func Binary() (string, error) {
	return gobin.Find("mailpit", "go install github.com/axllent/mailpit@v1.33.1")
}

// Start runs mailpit on free ports and stops it when t ends. Without mailpit it skips t,
// except under CI=true, where a missing server must not pass as green.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mailpittest: %v", err)
		}
		t.Skipf("mailpittest: %v", err)
	}
	s := &Server{t: t, bin: bin, db: filepath.Join(t.TempDir(), "mailpit.db"), opts: opts}
	var lastErr error
	for range 5 { // a free port found now may be taken before mailpit binds it
		smtpPort, err1 := freeport.Get()
		httpPort, err2 := freeport.Get()
		if err1 != nil || err2 != nil {
			t.Fatalf("mailpittest: free port: %v %v", err1, err2)
		}
		s.SMTPAddr = fmt.Sprintf("127.0.0.1:%d", smtpPort)
		s.API = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
		if lastErr = s.Restart(); lastErr == nil {
			s.URL = "smtp://digest:secret@" + s.SMTPAddr
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatalf("mailpittest: cannot start mailpit: %v", lastErr)
	return nil
}

// Stop stops the server (SMTP refuses connections until Restart); what it received stays.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		s.stop()
		s.stop = nil
	}
}

// Restart starts the server again on the same ports and database.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		return nil
	}
	listen := strings.TrimPrefix(s.API, "http://")
	args := []string{"--disable-version-check", "--quiet",
		"--smtp", s.SMTPAddr, "--listen", listen, "--database", s.db,
		"--smtp-auth-accept-any", "--smtp-disable-rdns"}
	if s.opts.TLSCert == "" {
		args = append(args, "--smtp-auth-allow-insecure") // AUTH over plain text, on loopback
	} else {
		args = append(args, "--smtp-tls-cert", s.opts.TLSCert, "--smtp-tls-key", s.opts.TLSKey)
		if s.opts.RequireSTARTTLS {
			args = append(args, "--smtp-require-starttls")
		}
	}
	cmd := exec.Command(s.bin, args...)
	p, err := daemon.Start(cmd, 20*time.Millisecond, 15*time.Second, func() bool {
		resp, err := http.Get(s.API + "/livez")
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
		c, err := net.DialTimeout("tcp", s.SMTPAddr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	if err != nil {
		return err
	}
	s.stop = p.Kill
	return nil
}

// Summary is a message as mailpit lists it.
type Summary struct {
	ID        string
	MessageID string
	Subject   string
	To        []struct{ Name, Address string }
}

// Message is one delivered message as mailpit parsed it.
type Message struct {
	ID        string
	MessageID string
	Subject   string
	From      struct{ Name, Address string }
	To        []struct{ Name, Address string }
	Text      string
	HTML      string
	// Headers are the raw headers, by name.
	Headers map[string][]string
}

// Messages answers every message received, newest first.
func (s *Server) Messages(t testing.TB) []Summary {
	t.Helper()
	var list struct{ Messages []Summary }
	s.get(t, "/api/v1/messages?limit=1000", &list)
	return list.Messages
}

// To answers the messages received for address, newest first, in full.
func (s *Server) To(t testing.TB, address string) []Message {
	t.Helper()
	var out []Message
	for _, sum := range s.Messages(t) {
		for _, to := range sum.To {
			if strings.EqualFold(to.Address, address) {
				out = append(out, s.Message(t, sum.ID))
			}
		}
	}
	return out
}

// Message answers one message in full, with its headers.
func (s *Server) Message(t testing.TB, id string) Message {
	t.Helper()
	var m Message
	s.get(t, "/api/v1/message/"+url.PathEscape(id), &m)
	s.get(t, "/api/v1/message/"+url.PathEscape(id)+"/headers", &m.Headers)
	return m
}

// WaitFor polls until address has at least n messages (or fails t after timeout) and
// answers them.
func (s *Server) WaitFor(t testing.TB, address string, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msgs := s.To(t, address)
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailpittest: %d message(s) for %s after %s, want %d", len(msgs), address, timeout, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) get(t testing.TB, path string, v any) {
	t.Helper()
	resp, err := http.Get(s.API + path)
	if err != nil {
		t.Fatalf("mailpittest: GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("mailpittest: GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("mailpittest: GET %s: %v", path, err)
	}
}
