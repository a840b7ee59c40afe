// Package mail sends the messenger's email (the digest) over SMTP with the standard library:
// one connection a message, STARTTLS whenever the server offers it, TLS verified unless the
// URL says otherwise for development, and a deadline on the whole conversation with the
// server, so a hanging SMTP server fails the job (which River retries) instead of holding it.
package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strings"
	"time"
)

// DefaultTimeout bounds one message's whole SMTP conversation (dial to QUIT).
const DefaultTimeout = 30 * time.Second

// MaxMessageBytes bounds a rendered message: a digest is a few conversations of previews.
const MaxMessageBytes = 1 << 20

// Sender sends messages to one SMTP server from one address.
type Sender struct {
	addr     string // host:port
	host     string
	user     string
	pass     string
	auth     bool
	implicit bool // smtps://: TLS from the first byte
	insecure bool // ?tls=insecure: no certificate verification (development only)
	from     mail.Address
	timeout  time.Duration
}

// New reads MESSENGER_SMTP_URL and MESSENGER_MAIL_FROM: smtp://user:pass@host:port (port 587
// by default; STARTTLS when offered) or smtps://… (port 465, TLS first), with ?tls=insecure to
// skip certificate verification (a development server with a self-signed certificate). An
// error never repeats the URL, which holds a password.
func New(rawURL, from string) (*Sender, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "smtp" && u.Scheme != "smtps") {
		return nil, errors.New("MESSENGER_SMTP_URL must be smtp://user:pass@host:port or smtps://user:pass@host:port")
	}
	s := &Sender{host: u.Hostname(), implicit: u.Scheme == "smtps", timeout: DefaultTimeout}
	port := u.Port()
	if port == "" {
		port = "587"
		if s.implicit {
			port = "465"
		}
	}
	s.addr = net.JoinHostPort(s.host, port)
	if u.User != nil && u.User.Username() != "" {
		s.auth = true
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
	}
	q := u.Query()
	switch q.Get("tls") {
	case "", "verify":
	case "insecure":
		s.insecure = true
	default:
		return nil, errors.New("MESSENGER_SMTP_URL: tls= must be verify or insecure")
	}
	if t := q.Get("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d < time.Second || d > 5*time.Minute {
			return nil, errors.New("MESSENGER_SMTP_URL: timeout= must be a duration from 1s to 5m")
		}
		s.timeout = d
	}
	addr, err := mail.ParseAddress(from)
	if err != nil || strings.ContainsAny(from, "\r\n") {
		return nil, fmt.Errorf("MESSENGER_MAIL_FROM: %q is not an address like \"DreamSeed <no-reply@school.example>\"", from)
	}
	s.from = *addr
	return s, nil
}

// From answers the sender's address.
func (s *Sender) From() mail.Address { return s.from }

// Message is one email: a plain-text and an HTML alternative of the same content.
type Message struct {
	To        mail.Address
	Subject   string
	Text      string
	HTML      string
	MessageID string // "<id@host>"; NewMessageID makes one. Resending with the same id lets a mailbox drop the copy
	Date      time.Time
	// ListUnsubscribe is an https URL of a one-click unsubscribe (RFC 8058): it goes into
	// List-Unsubscribe with List-Unsubscribe-Post: List-Unsubscribe=One-Click.
	ListUnsubscribe string
}

// NewMessageID answers a fresh Message-ID in the domain of the sender's address.
func (s *Sender) NewMessageID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	domain := "messenger.invalid"
	if i := strings.LastIndexByte(s.from.Address, '@'); i >= 0 {
		domain = s.from.Address[i+1:]
	}
	return "<" + hex.EncodeToString(b) + "@" + domain + ">"
}

// Send delivers m, all of it within the sender's timeout (or ctx's end, if sooner).
func (s *Sender) Send(ctx context.Context, m Message) error {
	body, err := s.Render(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	conn, err := s.dial(ctx)
	if err != nil {
		return fmt.Errorf("mail: connect: %w", err)
	}
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	// A context that ends early (shutdown) cuts the conversation at once.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := s.converse(conn, m.To.Address, body); err != nil {
		conn.Close()
		return fmt.Errorf("mail: %w", err)
	}
	return nil
}

func (s *Sender) tlsConfig() *tls.Config {
	return &tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: s.insecure}
}

func (s *Sender) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil || !s.implicit {
		return conn, err
	}
	tc := tls.Client(conn, s.tlsConfig())
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}

// converse runs the SMTP conversation on conn: EHLO, STARTTLS when offered, AUTH when the
// URL has a user (net/smtp refuses to send a password in clear except to localhost), one
// message, QUIT.
func (s *Sender) converse(conn net.Conn, to string, body []byte) error {
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return err
	}
	if ok, _ := c.Extension("STARTTLS"); ok && !s.implicit {
		if err := c.StartTLS(s.tlsConfig()); err != nil {
			return fmt.Errorf("starttls: %w", err)
		}
	}
	if s.auth {
		if err := c.Auth(smtp.PlainAuth("", s.user, s.pass, s.host)); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(body); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// Render answers m as an RFC 5322 message: headers, then multipart/alternative with the text
// part first and the HTML part last (a reader shows the last it can), both UTF-8
// quoted-printable. Header values with line breaks are refused (no header injection).
func (s *Sender) Render(m Message) ([]byte, error) {
	for _, v := range []string{m.To.Name, m.To.Address, m.Subject, m.MessageID, m.ListUnsubscribe} {
		if strings.ContainsAny(v, "\r\n") {
			return nil, errors.New("mail: a header value holds a line break")
		}
	}
	if _, err := mail.ParseAddress(m.To.Address); err != nil {
		return nil, fmt.Errorf("mail: recipient: %w", err)
	}
	if m.MessageID == "" {
		m.MessageID = s.NewMessageID()
	}
	if m.Date.IsZero() {
		m.Date = time.Now()
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	header := func(k, v string) { fmt.Fprintf(&buf, "%s: %s\r\n", k, v) }
	header("From", s.from.String())
	header("To", m.To.String())
	header("Subject", mime.BEncoding.Encode("utf-8", m.Subject))
	header("Date", m.Date.Format(time.RFC1123Z))
	header("Message-ID", m.MessageID)
	header("MIME-Version", "1.0")
	header("Auto-Submitted", "auto-generated")
	if m.ListUnsubscribe != "" {
		header("List-Unsubscribe", "<"+m.ListUnsubscribe+">")
		header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
	}
	header("Content-Type", "multipart/alternative; boundary=\""+mw.Boundary()+"\"")
	buf.WriteString("\r\n")
	for _, p := range []struct{ typ, body string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {p.typ + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(pw)
		if _, err := qp.Write([]byte(p.body)); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	if buf.Len() > MaxMessageBytes {
		return nil, fmt.Errorf("mail: message of %d bytes is over %d", buf.Len(), MaxMessageBytes)
	}
	return buf.Bytes(), nil
}
