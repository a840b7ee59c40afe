package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/jobs"
	"github.com/dreamseed/messenger/push"
	"github.com/dreamseed/messenger/views"
)

// Push configuration.
const (
	defaultPushDelay       = 5 * time.Second
	defaultPushConcurrency = 8
	defaultPushWorkers     = 2
	devVAPIDSubject        = "mailto:messenger@localhost.localdomain"
)

// pushConfig is web push's part of the configuration.
type pushConfig struct {
	// Keys: both from the environment, or, in dev mode with neither set, generated once and
	// kept under DataDir (DevKeys). Neither outside dev mode: push is off.
	Keys    push.Keys
	DevKeys bool
	Subject string
	// AllowPrivate lets pushes go to http and loopback/private endpoints (tests, dev).
	AllowPrivate bool
	Delay        time.Duration // from a message's commit to its push job
	Timeout      time.Duration // one request to a push service
	Concurrency  int           // requests of one push job at once
	Workers      int           // push jobs worked at once, in their own queue (chat.QueuePush)
	// ConversationURL is where a notification's click goes, with {id}; "" is BaseURL/c/{id}.
	ConversationURL string
}

// PushOn reports whether pushes are sent.
func (c config) PushOn() bool { return c.Push.DevKeys || c.Push.Keys.Public != "" }

// loadPush reads MESSENGER_VAPID_*, MESSENGER_PUSH_* and MESSENGER_PORTAL_CONVERSATION_URL.
func (c *config) loadPush(env func(key, def string) string) []error {
	var errs []error
	p := &c.Push
	p.Keys = push.Keys{Public: env("MESSENGER_VAPID_PUBLIC_KEY", ""), Private: env("MESSENGER_VAPID_PRIVATE_KEY", "")}
	p.Subject = env("MESSENGER_VAPID_SUBJECT", "")
	switch {
	case p.Keys.Public == "" && p.Keys.Private == "":
		p.DevKeys = c.Dev
	case p.Keys.Public == "" || p.Keys.Private == "":
		errs = append(errs, errors.New("MESSENGER_VAPID_PUBLIC_KEY and MESSENGER_VAPID_PRIVATE_KEY go together (messenger vapid-keys prints a pair)"))
	default:
		// Never echo a key: the private one is a secret.
		if err := p.Keys.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("MESSENGER_VAPID_*_KEY: %w (messenger vapid-keys prints a pair)", err))
		}
	}
	if p.Subject == "" && c.Dev {
		p.Subject = devVAPIDSubject
	}
	if c.PushOn() || p.Subject != "" {
		if err := push.CheckSubject(p.Subject); err != nil {
			errs = append(errs, fmt.Errorf("MESSENGER_VAPID_SUBJECT: %w", err))
		}
	}
	switch v := env("MESSENGER_PUSH_ALLOW_PRIVATE", "0"); v {
	case "0", "false":
	case "1", "true":
		p.AllowPrivate = true
		if !c.Dev {
			errs = append(errs, errors.New("MESSENGER_PUSH_ALLOW_PRIVATE=1 lets pushes reach internal hosts: it is for tests and development only, refused outside dev mode"))
		}
	default:
		errs = append(errs, errors.New("MESSENGER_PUSH_ALLOW_PRIVATE must be 0 or 1"))
	}
	var err error
	if p.Delay, err = time.ParseDuration(env("MESSENGER_PUSH_DELAY", defaultPushDelay.String())); err != nil || p.Delay < 0 || p.Delay > 10*time.Minute {
		errs = append(errs, fmt.Errorf("MESSENGER_PUSH_DELAY must be a duration from 0s to 10m, like 5s, not %q", env("MESSENGER_PUSH_DELAY", "")))
	}
	if p.Timeout, err = time.ParseDuration(env("MESSENGER_PUSH_TIMEOUT", push.DefaultTimeout.String())); err != nil || p.Timeout < 100*time.Millisecond || p.Timeout > time.Minute {
		errs = append(errs, fmt.Errorf("MESSENGER_PUSH_TIMEOUT must be a duration from 100ms to 1m, like 10s, not %q", env("MESSENGER_PUSH_TIMEOUT", "")))
	}
	n, err := boundedInt(env("MESSENGER_PUSH_CONCURRENCY", fmt.Sprint(defaultPushConcurrency)), 1, 100)
	if err != nil {
		errs = append(errs, fmt.Errorf("MESSENGER_PUSH_CONCURRENCY must be a whole number from 1 to 100, not %q", env("MESSENGER_PUSH_CONCURRENCY", "")))
	}
	p.Concurrency = int(n)
	if n, err = boundedInt(env("MESSENGER_PUSH_WORKERS", fmt.Sprint(defaultPushWorkers)), 1, 100); err != nil {
		errs = append(errs, fmt.Errorf("MESSENGER_PUSH_WORKERS must be a whole number from 1 to 100, not %q", env("MESSENGER_PUSH_WORKERS", "")))
	}
	p.Workers = int(n)
	if p.ConversationURL = env("MESSENGER_PORTAL_CONVERSATION_URL", ""); p.ConversationURL != "" {
		u, err := url.Parse(strings.ReplaceAll(p.ConversationURL, "{id}", "1"))
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || !strings.Contains(p.ConversationURL, "{id}") {
			errs = append(errs, fmt.Errorf("MESSENGER_PORTAL_CONVERSATION_URL must be an http(s) URL with {id}, like https://portal.example/messenger?c={id}, not %q", p.ConversationURL))
		}
	}
	return errs
}

// conversationURL is the notification's link template, {id} to be replaced.
func (c config) conversationURL() string {
	if c.Push.ConversationURL != "" {
		return c.Push.ConversationURL
	}
	return c.BaseURL + "/c/{id}"
}

// vapidKeys prints a new key pair as environment lines.
func vapidKeys(stdout io.Writer) error {
	k, err := push.GenerateKeys()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "MESSENGER_VAPID_PUBLIC_KEY=%s\nMESSENGER_VAPID_PRIVATE_KEY=%s\n", k.Public, k.Private)
	return err
}

// pushKeys answers the configured keys, or in dev mode the pair kept under the data
// directory (made the first time).
func (c config) pushKeys() (push.Keys, error) {
	if !c.Push.DevKeys {
		return c.Push.Keys, nil
	}
	return push.LoadOrCreateKeys(c.DataDir)
}

// enablePush gives svc web push when it is on: the sender (its metrics on reg) and the job.
func enablePush(cfg config, svc *chat.Service, runner *jobs.Runner, reg prometheus.Registerer, logger *slog.Logger) error {
	if !cfg.PushOn() {
		logger.Info("web push off: no MESSENGER_VAPID_PUBLIC_KEY/PRIVATE_KEY")
		return nil
	}
	keys, err := cfg.pushKeys()
	if err != nil {
		return err
	}
	sender, err := push.NewSender(push.Config{Keys: keys, Subject: cfg.Push.Subject, AllowPrivate: cfg.Push.AllowPrivate,
		Timeout: cfg.Push.Timeout}, reg)
	if err != nil {
		return err
	}
	if cfg.Push.AllowPrivate {
		logger.Warn("MESSENGER_PUSH_ALLOW_PRIVATE=1: pushes may reach loopback and private addresses")
	}
	return svc.EnablePush(chat.Push{Sender: sender, Jobs: runner, Delay: cfg.Push.Delay, ConversationURL: cfg.conversationURL(),
		Concurrency: cfg.Push.Concurrency, Preview: PushPreview}, reg)
}

// PushPreview words a file message for a push in the recipient's language.
func PushPreview(locale string, m messenger.Message) string {
	return views.FilePreview(views.WithLocale(context.Background(), locale), m)
}

// publicKey is the VAPID public key as the handlers take it (GET /api/v1/push/key, the
// pages' subscriptions).
type publicKey string

// PublicKey answers the key, base64url without padding.
func (k publicKey) PublicKey() string { return string(k) }
