package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dreamseed/messenger/digest"
	"github.com/dreamseed/messenger/mail"
	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/store"
)

// mailConfig is the email digest's configuration: on when MESSENGER_SMTP_URL and
// MESSENGER_MAIL_FROM are both set.
type mailConfig struct {
	SMTPURL, From   string
	Secret          string // MESSENGER_MAIL_SECRET: signs unsubscribe links; dev keeps one under the data dir
	ConversationURL string // MESSENGER_PORTAL_CONVERSATION_URL
	Digest          digest.Config
}

// On reports whether the messenger sends email.
func (m mailConfig) On() bool { return m.SMTPURL != "" && m.From != "" }

// loadMail reads the SMTP server, the sender and the digest's limits.
func (c *config) loadMail(env func(key, def string) string) []error {
	var errs []error
	m := mailConfig{SMTPURL: env("MESSENGER_SMTP_URL", ""), From: env("MESSENGER_MAIL_FROM", ""),
		Secret: env("MESSENGER_MAIL_SECRET", ""), ConversationURL: env("MESSENGER_PORTAL_CONVERSATION_URL", "")}
	if (m.SMTPURL == "") != (m.From == "") {
		errs = append(errs, errors.New("MESSENGER_SMTP_URL and MESSENGER_MAIL_FROM go together: set both to send email, or neither"))
	}
	if m.On() {
		if _, err := mail.New(m.SMTPURL, m.From); err != nil {
			errs = append(errs, err)
		}
		if m.Secret == "" && !c.Dev {
			errs = append(errs, errors.New("MESSENGER_MAIL_SECRET (at least 32 bytes, the same in every process) is required to sign unsubscribe links outside dev mode"))
		}
	}
	if m.Secret != "" && len(m.Secret) < 32 {
		errs = append(errs, errors.New("MESSENGER_MAIL_SECRET must be at least 32 bytes"))
	}
	if m.ConversationURL != "" {
		u, err := url.Parse(strings.ReplaceAll(m.ConversationURL, "{id}", "1"))
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || !strings.Contains(m.ConversationURL, "{id}") {
			errs = append(errs, fmt.Errorf("MESSENGER_PORTAL_CONVERSATION_URL: %q is not an http(s) URL with {id}", m.ConversationURL))
		}
	}
	d := &m.Digest
	d.BaseURL, d.ConversationURL = c.BaseURL, m.ConversationURL
	var err error
	if d.Every, err = boundedDuration(env("MESSENGER_DIGEST_EVERY", digest.DefaultEvery.String()), 10*time.Second, 7*24*time.Hour); err != nil {
		errs = append(errs, fmt.Errorf("MESSENGER_DIGEST_EVERY must be a duration from 10s to 168h, like 1h"))
	}
	if d.OfflineAfter, err = boundedDuration(env("MESSENGER_DIGEST_OFFLINE_AFTER", digest.DefaultOfflineAfter.String()), time.Second, 30*24*time.Hour); err != nil {
		errs = append(errs, fmt.Errorf("MESSENGER_DIGEST_OFFLINE_AFTER must be a duration from 1s to 720h, like 24h"))
	}
	n, err := boundedInt(env("MESSENGER_DIGEST_MIN_UNREAD", strconv.Itoa(digest.DefaultMinUnread)), 1, 10000)
	if err != nil {
		errs = append(errs, fmt.Errorf("MESSENGER_DIGEST_MIN_UNREAD must be a whole number from 1 to 10000"))
	}
	d.MinUnread = int(n)
	c.Mail = m
	return errs
}

func boundedDuration(v string, lo, hi time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < lo || d > hi {
		return 0, fmt.Errorf("%q is not a duration from %s to %s", v, lo, hi)
	}
	return d, nil
}

// openDigest answers the digest service and its unsubscribe handler, or nils when email is
// off. Dev mode without MESSENGER_MAIL_SECRET keeps a secret under the data dir.
func openDigest(cfg config, db *store.DB, engine realtime.Engine, logger *slog.Logger) (*digest.Service, *digest.Unsubscriber, error) {
	if !cfg.Mail.On() {
		return nil, nil, nil
	}
	sender, err := mail.New(cfg.Mail.SMTPURL, cfg.Mail.From)
	if err != nil {
		return nil, nil, err
	}
	secret := cfg.Mail.Secret
	if secret == "" {
		if secret, err = secretFile(filepath.Join(cfg.DataDir, "mail.secret")); err != nil {
			return nil, nil, err
		}
	}
	dc := cfg.Mail.Digest
	dc.Secret = []byte(secret)
	svc, err := digest.New(db, engine, sender, dc, logger)
	if err != nil {
		return nil, nil, err
	}
	logger.Info("email digest on", slog.String("from", sender.From().Address), slog.Duration("every", dc.Every),
		slog.Duration("offline_after", dc.OfflineAfter), slog.Int("min_unread", dc.MinUnread))
	return svc, digest.NewUnsubscriber(db, []byte(secret), logger), nil
}
