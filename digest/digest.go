// Package digest sends the email digest: every Config.Every a periodic River job
// (digest_scan) finds the users away for Config.OfflineAfter or more (last seen that long ago
// and no live connection now) with at least Config.MinUnread messages neither read nor in an
// earlier digest, email on; it enqueues one digest_send job per user, unique by user and
// period, so several processes (each may run the scan) send one. The send job reads, as the
// user (row-level security), what is unread now, renders it in the user's language and sends
// it over SMTP; see send for how a digest is sent once.
package digest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/dreamseed/messenger"
	dsmail "github.com/dreamseed/messenger/mail"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/views"
)

// Defaults of Config.
const (
	DefaultEvery        = time.Hour
	DefaultOfflineAfter = 24 * time.Hour
	DefaultMinUnread    = 5
	DefaultTokenTTL     = 30 * 24 * time.Hour
	// DefaultAttempts: with the runner's backoff (1 s doubling, at most an hour) about a day
	// of SMTP outage before a digest is given up (the next period tries again anyway).
	DefaultAttempts = 30
	// maxCandidates bounds the users one scan enqueues; the rest wait for the next period.
	maxCandidates = 10000
)

// Config is the digest's configuration.
type Config struct {
	Every        time.Duration // MESSENGER_DIGEST_EVERY
	OfflineAfter time.Duration // MESSENGER_DIGEST_OFFLINE_AFTER
	MinUnread    int           // MESSENGER_DIGEST_MIN_UNREAD
	BaseURL      string        // MESSENGER_BASE_URL, no trailing slash
	// ConversationURL is MESSENGER_PORTAL_CONVERSATION_URL with {id}; "" → BaseURL/c/{id}.
	ConversationURL string
	// Secret signs unsubscribe tokens (at least 32 bytes).
	Secret   []byte
	TokenTTL time.Duration
	Attempts int
}

func (c Config) withDefaults() Config {
	if c.Every <= 0 {
		c.Every = DefaultEvery
	}
	if c.OfflineAfter <= 0 {
		c.OfflineAfter = DefaultOfflineAfter
	}
	if c.MinUnread <= 0 {
		c.MinUnread = DefaultMinUnread
	}
	if c.TokenTTL <= 0 {
		c.TokenTTL = DefaultTokenTTL
	}
	if c.Attempts <= 0 {
		c.Attempts = DefaultAttempts
	}
	return c
}

// Presence tells who has a live connection (realtime.Engine does).
type Presence interface {
	Online(ctx context.Context, userIDs []int64) (map[int64]bool, error)
}

// Service finds, renders and sends digests.
type Service struct {
	db       *store.DB
	presence Presence
	sender   *dsmail.Sender
	cfg      Config
	logger   *slog.Logger
	now      func() time.Time
	metrics  *Metrics // nil: not counted
}

// New builds the digest service.
func New(db *store.DB, presence Presence, sender *dsmail.Sender, cfg Config, logger *slog.Logger) (*Service, error) {
	cfg = cfg.withDefaults()
	if len(cfg.Secret) < 32 {
		return nil, errors.New("digest: the unsubscribe secret must be at least 32 bytes")
	}
	return &Service{db: db, presence: presence, sender: sender, cfg: cfg, logger: logger, now: time.Now}, nil
}

// ScanArgs is the periodic job that enqueues the digests of a period.
type ScanArgs struct{}

// Kind names the job.
func (ScanArgs) Kind() string { return "digest_scan" }

// SendArgs is one user's digest of one period (the period's start, Unix seconds): unique
// by both, so however many processes scan, the period sends one.
type SendArgs struct {
	UserID int64 `json:"user_id"`
	Period int64 `json:"period"`
}

// Kind names the job.
func (SendArgs) Kind() string { return "digest_send" }

// Register adds the digest jobs to w.
func (s *Service) Register(w *river.Workers) {
	river.AddWorker(w, &scanWorker{s: s})
	river.AddWorker(w, &sendWorker{s: s})
}

// PeriodicJob answers the scan's schedule, every Config.Every (River runs periodic jobs on
// its leader; the unique send jobs cover a change of leader).
func (s *Service) PeriodicJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(s.cfg.Every),
		func() (river.JobArgs, *river.InsertOpts) { return ScanArgs{}, nil },
		&river.PeriodicJobOpts{ID: "digest_scan", RunOnStart: true})
}

type scanWorker struct {
	river.WorkerDefaults[ScanArgs]
	s *Service
}

func (w *scanWorker) Work(ctx context.Context, job *river.Job[ScanArgs]) error {
	_, err := w.s.Enqueue(ctx, river.ClientFromContext[*sql.Tx](ctx))
	return err
}

// Enqueue finds the users due a digest now and inserts their send jobs with client;
// it answers how many were new (not already enqueued this period).
func (s *Service) Enqueue(ctx context.Context, client *river.Client[*sql.Tx]) (int, error) {
	now := s.now()
	ids, err := s.db.DigestCandidates(ctx, now.Add(-s.cfg.OfflineAfter), s.cfg.MinUnread, maxCandidates)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	online, err := s.presence.Online(ctx, ids)
	if err != nil {
		return 0, fmt.Errorf("digest: presence: %w", err)
	}
	period := now.Truncate(s.cfg.Every).Unix()
	opts := &river.InsertOpts{MaxAttempts: s.cfg.Attempts, UniqueOpts: river.UniqueOpts{ByArgs: true}}
	added := 0
	for _, id := range ids {
		if online[id] {
			continue
		}
		res, err := client.Insert(ctx, SendArgs{UserID: id, Period: period}, opts)
		if err != nil {
			return added, fmt.Errorf("digest: enqueue: %w", err)
		}
		if !res.UniqueSkippedAsDuplicate {
			added++
		}
	}
	return added, nil
}

type sendWorker struct {
	river.WorkerDefaults[SendArgs]
	s *Service
}

func (w *sendWorker) Work(ctx context.Context, job *river.Job[SendArgs]) error {
	return w.s.Send(ctx, job.Args.UserID)
}

// Send sends userID's digest if they are still due one.
//
// SMTP is outside the database, so sending and recording cannot be one commit. Recording
// after sending loses nothing but sends again, as a new message, after a crash between
// them; recording before sending may lose the digest. Here the digest is recorded as
// *sending* first (digest_outbox: its Message-ID and the seq it covers per conversation,
// committed), then sent, then marked sent (marks moved to digest_marks) in one
// transaction. An SMTP error fails the job and River retries with backoff; a retry — or a
// crash's rescue — that finds the row sends again with the same Message-ID, re-rendered
// from what is unread now (never a message read since), so the worst case, a crash after
// SMTP took the message and before the commit, delivers the same message id twice, which
// mailboxes drop as a duplicate. Never a lost digest, never two different ones.
func (s *Service) Send(ctx context.Context, userID int64) error {
	rec, err := s.db.DigestRecipientOf(ctx, userID)
	if messenger.ErrorCode(err) == messenger.ENOTFOUND {
		return nil // moved away or gone
	}
	if err != nil {
		return err
	}
	if _, err := mail.ParseAddress(rec.Email); err != nil || strings.ContainsAny(rec.Email, "\r\n") {
		// The portal gave an address no retry can fix: not worth 30 attempts.
		s.logger.WarnContext(ctx, "digest: the user's email address is not one", slog.Int64("user", userID))
		return nil
	}
	if online, err := s.presence.Online(ctx, []int64{userID}); err != nil {
		return fmt.Errorf("digest: presence: %w", err)
	} else if online[userID] {
		return nil // back: they see it themselves; a pending digest waits for the next time
	}
	// One digest of a user at a time, across processes: a second job finds the lock held
	// and leaves the digest to the first (whose failure River retries).
	_, err = s.db.WithDigestLock(ctx, userID, func() error {
		msg, ok, err := s.prepare(ctx, rec)
		if err != nil || !ok {
			return err
		}
		err = s.sender.Send(ctx, msg)
		s.metrics.outcome(err)
		if err != nil {
			return err
		}
		return s.db.InTx(ctx, rec.Identity, func(tx *store.Tx) error {
			_, err := tx.DigestSent(ctx, msg.MessageID)
			return err
		})
	})
	return err
}

// prepare reads, as the user, what the digest would say now and records it as sending;
// ok is false when nothing is due (away too briefly, email off, too few unread).
func (s *Service) prepare(ctx context.Context, rec store.DigestRecipient) (msg dsmail.Message, ok bool, err error) {
	err = s.db.InTx(ctx, rec.Identity, func(tx *store.Tx) error {
		ok = false
		pending, err := tx.PendingDigest(ctx) // locks it: one attempt at a time records
		if err != nil {
			return err
		}
		due, err := s.due(ctx, tx)
		if err != nil {
			return err
		}
		if !due {
			return tx.DropPendingDigest(ctx)
		}
		convs, err := tx.DigestUnread(ctx)
		if err != nil {
			return err
		}
		var total int64
		for _, c := range convs {
			total += c.LastSeq - c.Covered
		}
		if total < int64(s.cfg.MinUnread) {
			return tx.DropPendingDigest(ctx)
		}
		msg.MessageID = s.sender.NewMessageID()
		if pending != nil {
			msg.MessageID = pending.MessageID
		}
		marks, err := s.compose(ctx, tx, rec, convs, &msg)
		if err != nil {
			return err
		}
		// Another attempt may have recorded its digest since PendingDigest: send with its id.
		if msg.MessageID, err = tx.RecordDigestSending(ctx, msg.MessageID, marks); err != nil {
			return err
		}
		ok = true
		return nil
	})
	return msg, ok, err
}

// due checks, as the user, what the scan checked: email on, away long enough.
func (s *Service) due(ctx context.Context, tx *store.Tx) (bool, error) {
	on, err := tx.EmailOn(ctx)
	if err != nil || !on {
		return false, err
	}
	seen, err := tx.LastSeenOrJoined(ctx)
	if err != nil {
		return false, err
	}
	return s.now().Sub(seen) >= s.cfg.OfflineAfter, nil
}

// compose fills msg with the digest of convs and answers the seq it covers per conversation.
func (s *Service) compose(ctx context.Context, tx *store.Tx, rec store.DigestRecipient, convs []store.DigestConversation, msg *dsmail.Message) (map[int64]int64, error) {
	lctx := views.WithLocale(ctx, views.NegotiateLocale(rec.Locale, ""))
	c := content{
		Locale:      views.Locale(lctx),
		Subject:     views.T(lctx, "digest.subject"),
		Greeting:    views.Tf(lctx, "digest.greeting", rec.Name),
		Why:         views.T(lctx, "digest.why"),
		Unsubscribe: views.T(lctx, "digest.unsubscribe"),
		UnsubURL:    s.cfg.BaseURL + "/unsubscribe?t=" + signToken(s.cfg.Secret, rec.Identity.UserID, s.now().Add(s.cfg.TokenTTL)),
	}
	marks := make(map[int64]int64)
	for i, dc := range convs {
		if i == maxConversations {
			c.More = views.Tf(lctx, "digest.more", len(convs)-i)
			break
		}
		conv, err := tx.Conversation(ctx, dc.ID)
		if err != nil {
			return nil, err
		}
		msgs, err := tx.MessagesBefore(ctx, dc.ID, dc.LastSeq+1, latestPerConv)
		if err != nil {
			return nil, err
		}
		cc := convContent{
			Title:  conv.DisplayTitle(rec.Identity.UserID, views.Locale(lctx)),
			Unread: views.Tf(lctx, "digest.unread", dc.LastSeq-dc.ReadSeq),
			URL:    s.conversationURL(dc.ID),
			Open:   views.T(lctx, "digest.open"),
		}
		for j := len(msgs) - 1; j >= 0; j-- { // oldest first
			m := msgs[j]
			if m.Seq <= dc.Covered {
				continue // read, or in an earlier digest
			}
			cc.Lines = append(cc.Lines, line{Sender: m.Sender.Name, Time: stamp(lctx, m.CreatedAt), Preview: preview(lctx, m)})
		}
		c.Convs = append(c.Convs, cc)
		marks[dc.ID] = dc.LastSeq
	}
	text, html, err := render(c)
	if err != nil {
		return nil, err
	}
	msg.To = mail.Address{Name: rec.Name, Address: rec.Email}
	msg.Subject, msg.Text, msg.HTML = c.Subject, text, html
	msg.ListUnsubscribe = c.UnsubURL
	msg.Date = s.now()
	return marks, nil
}

func (s *Service) conversationURL(id int64) string {
	if s.cfg.ConversationURL != "" {
		return strings.ReplaceAll(s.cfg.ConversationURL, "{id}", strconv.FormatInt(id, 10))
	}
	return s.cfg.BaseURL + "/c/" + strconv.FormatInt(id, 10)
}
