package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"golang.org/x/sync/semaphore"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/jobs"
	"github.com/dreamseed/messenger/push"
	"github.com/dreamseed/messenger/store"
)

// Push is what web push needs: one job per message, enqueued in the message's transaction
// and run Delay later, decides at run time who gets a push and sends it.
type Push struct {
	Sender *push.Sender
	Jobs   *jobs.Runner
	// Delay is from the message's commit to its job (MESSENGER_PUSH_DELAY): a message read
	// at once over a live stream never pushes.
	Delay time.Duration
	// ConversationURL is the notification's link, {id} replaced by the conversation's id.
	ConversationURL string
	// Concurrency bounds the requests of one job at once (DefaultPushConcurrency when 0).
	Concurrency int
	// Retries is how often a push that met 429, 5xx or a timeout is tried again, each by a
	// job of its own for that subscription (DefaultPushRetries when 0).
	Retries int
	// RetryBase is the first retry's delay, doubled each time (unless Retry-After is longer).
	RetryBase time.Duration
	// Preview words a file message's body in a locale ("사진", "파일: name"): the
	// translation table lives in views.
	Preview func(locale string, m messenger.Message) string
}

// Defaults of Push.
const (
	DefaultPushConcurrency = 8
	DefaultPushRetries     = 5
	DefaultPushRetryBase   = 30 * time.Second
	// PushPreviewLength is the notification body's length in characters.
	PushPreviewLength = 100
	pushAttempts      = 3 // of the message's job (a database error): each recipient is decided again
)

// EnablePush gives the service web push; reg takes its subscriptions gauge (nil: none).
func (s *Service) EnablePush(p Push, reg prometheus.Registerer) error {
	if p.Concurrency <= 0 {
		p.Concurrency = DefaultPushConcurrency
	}
	if p.Retries <= 0 {
		p.Retries = DefaultPushRetries
	}
	if p.RetryBase <= 0 {
		p.RetryBase = DefaultPushRetryBase
	}
	s.push = &p
	if reg != nil {
		return reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "messenger_push_subscriptions", Help: "Push subscriptions stored.",
		}, s.pushSubscriptionCount))
	}
	return nil
}

func (s *Service) pushSubscriptionCount() float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n int64
	err := s.db.InTx(ctx, nobody, func(tx *store.Tx) error {
		var err error
		n, err = tx.PushSubscriptionCount(ctx)
		return err
	})
	if err != nil {
		return math.NaN()
	}
	return float64(n)
}

// PushArgs is the push job of a message. Its arguments are never trusted (anyone with the
// app role can insert a job): the message is loaded as the sender it names and must be
// theirs, in the conversation named; recipients are the conversation's active members, each
// loading the message as themselves.
type PushArgs struct {
	ConversationID int64 `json:"conversation_id"`
	MessageID      int64 `json:"message_id"`
	SenderID       int64 `json:"sender_id"`
	// UserID, when set, limits the job to one recipient (their quiet hours ended, a retry).
	UserID int64 `json:"user_id,omitempty"`
	// SubscriptionID, when set, limits it to one of their subscriptions (a retry).
	SubscriptionID string `json:"subscription_id,omitempty"`
	Retry          int    `json:"retry,omitempty"`
	at             time.Time
}

// Kind names the job.
func (PushArgs) Kind() string { return "push_message" }

// InsertOpts schedules the job.
func (a PushArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: pushAttempts, ScheduledAt: a.at}
}

type pushWorker struct {
	river.WorkerDefaults[PushArgs]
	s *Service
}

func (w *pushWorker) Work(ctx context.Context, job *river.Job[PushArgs]) error {
	return w.s.pushMessage(ctx, job.Args)
}

// RegisterPushWorker adds the push job to w.
func (s *Service) RegisterPushWorker(w *river.Workers) { river.AddWorker(w, &pushWorker{s: s}) }

// enqueuePush puts a message's push job in tx, the message's own transaction.
func (s *Service) enqueuePush(ctx context.Context, tx *store.Tx, msg messenger.Message, senderID int64) error {
	if s.push == nil || s.push.Jobs == nil {
		return nil
	}
	return tx.Enqueue(ctx, s.push.Jobs, PushArgs{ConversationID: msg.ConversationID, MessageID: msg.ID,
		SenderID: senderID, at: time.Now().Add(s.push.Delay)})
}

// pushRecipient is a member who gets a push, with their subscriptions.
type pushRecipient struct {
	member  store.MemberNotify
	unread  store.PushUnread // across their conversations: the app badge, and which hold it
	subs    []store.PushSubscription
	payload []byte
	short   []byte // the payload shrunk, after a 413
	topic   string // one per conversation: a newer push replaces an undelivered one
	direct  bool   // 1:1 pushes are urgent
}

// pushMessage runs a message's push job.
func (s *Service) pushMessage(ctx context.Context, a PushArgs) error {
	if s.push == nil {
		return errors.New("push is not enabled in this process")
	}
	msg, conv, members, err := s.pushLoad(ctx, a)
	if err != nil || msg == nil {
		return err
	}
	now := time.Now()
	text := pushText(msg)
	rules := s.NotifyConfig()
	var later []PushArgs
	var chosen []store.MemberNotify
	for _, m := range members {
		if a.UserID != 0 && m.UserID != a.UserID {
			continue
		}
		if !wantsPush(m, msg, text, now) {
			continue
		}
		if quiet, end := InQuietHours(rules.Effective(m.Role, m.Settings), now); quiet {
			later = append(later, PushArgs{ConversationID: a.ConversationID, MessageID: a.MessageID, SenderID: a.SenderID,
				UserID: m.UserID, at: end})
			continue
		}
		chosen = append(chosen, m)
	}
	if err := s.enqueueLater(ctx, later); err != nil {
		return err
	}
	recipients, err := s.pushRecipients(ctx, a, chosen)
	if err != nil || len(recipients) == 0 {
		return err
	}
	return s.pushSend(ctx, a, recipients, msg, conv)
}

// pushLoad loads the message as the sender the job names, the conversation and its
// members; nil when the job names nothing that sender sent (a forged job).
func (s *Service) pushLoad(ctx context.Context, a PushArgs) (*messenger.Message, *messenger.Conversation, []store.MemberNotify, error) {
	var sender messenger.Identity
	var members []store.MemberNotify
	err := s.db.InTx(ctx, nobody, func(tx *store.Tx) error {
		var err error
		if sender, _, err = tx.PushIdentity(ctx, a.SenderID); err != nil {
			return err
		}
		members, err = tx.NotifyMembers(ctx, a.ConversationID)
		return err
	})
	if messenger.ErrorCode(err) == messenger.ENOTFOUND {
		return nil, nil, nil, nil
	}
	if err != nil {
		return nil, nil, nil, err
	}
	var msg messenger.Message
	var conv messenger.Conversation
	err = s.db.InTx(ctx, sender, func(tx *store.Tx) error {
		var err error
		if msg, err = tx.Message(ctx, a.MessageID); err != nil {
			return err
		}
		conv, err = tx.Conversation(ctx, a.ConversationID)
		return err
	})
	if messenger.ErrorCode(err) == messenger.ENOTFOUND {
		return nil, nil, nil, nil
	}
	if err != nil {
		return nil, nil, nil, err
	}
	if msg.ConversationID != a.ConversationID || msg.Sender.ID != a.SenderID || msg.Deleted ||
		(msg.Kind != messenger.MessageText && msg.Kind != messenger.MessageFile) {
		s.logger.Warn("push job: not a message of that sender", slog.Int64("message_id", a.MessageID),
			slog.Int64("conversation_id", a.ConversationID), slog.Int64("sender_id", a.SenderID))
		return nil, nil, nil, nil
	}
	return &msg, &conv, members, nil
}

// wantsPush decides what the member's own settings say: not the sender, push on, not read
// up to the message, not muted, and the message holds one of their keywords if they set any
// (normalised again here: NFC, lower case).
func wantsPush(m store.MemberNotify, msg *messenger.Message, text string, now time.Time) bool {
	if m.UserID == msg.Sender.ID || !m.Settings.Push || m.LastReadSeq >= msg.Seq || m.Mute.Active(now) {
		return false
	}
	if len(m.Keywords) == 0 {
		return true
	}
	words := make([]string, len(m.Keywords))
	for i, w := range m.Keywords {
		words[i] = NormalizeText(w)
	}
	return MatchKeywords(words, text)
}

// pushText is what keywords are looked for in: the text and the files' names.
func pushText(msg *messenger.Message) string {
	var b strings.Builder
	b.WriteString(msg.Body)
	for _, f := range msg.Files {
		b.WriteString("\n")
		b.WriteString(f.Name)
	}
	return b.String()
}

// enqueueLater enqueues the jobs of members in quiet hours, for when they end.
func (s *Service) enqueueLater(ctx context.Context, later []PushArgs) error {
	if len(later) == 0 {
		return nil
	}
	return s.db.InTx(ctx, nobody, func(tx *store.Tx) error {
		for _, a := range later {
			if err := tx.Enqueue(ctx, s.push.Jobs, a); err != nil {
				return err
			}
		}
		return nil
	})
}

// pushRecipients keeps the members without a live stream now who have a subscription.
func (s *Service) pushRecipients(ctx context.Context, a PushArgs, chosen []store.MemberNotify) ([]*pushRecipient, error) {
	if len(chosen) == 0 {
		return nil, nil
	}
	ids := make([]int64, len(chosen))
	for i, m := range chosen {
		ids[i] = m.UserID
	}
	online, err := s.events.Online(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("push: presence: %w", err)
	}
	away := ids[:0]
	byUser := map[int64]*pushRecipient{}
	for _, m := range chosen {
		if !online[m.UserID] {
			away = append(away, m.UserID)
			byUser[m.UserID] = &pushRecipient{member: m}
		}
	}
	if len(away) == 0 {
		return nil, nil
	}
	var out []*pushRecipient
	err = s.db.InTx(ctx, nobody, func(tx *store.Tx) error {
		subs, err := tx.PushSubscriptionsOf(ctx, away)
		if err != nil {
			return err
		}
		var users []int64
		for _, sub := range subs {
			if a.SubscriptionID != "" && sub.ID != a.SubscriptionID {
				continue
			}
			r := byUser[sub.UserID]
			if len(r.subs) == 0 {
				out = append(out, r)
				users = append(users, sub.UserID)
			}
			r.subs = append(r.subs, sub)
		}
		for len(users) > 0 {
			n := min(len(users), 1000)
			unread, err := tx.PushUnreadTotals(ctx, users[:n])
			if err != nil {
				return err
			}
			for _, id := range users[:n] {
				byUser[id].unread = unread[id]
			}
			users = users[n:]
		}
		return nil
	})
	return out, err
}

// pushData is the push's JSON, what the service worker shows.
type pushData struct {
	Title          string `json:"title"`
	Body           string `json:"body"`
	URL            string `json:"url"`
	ConversationID int64  `json:"conversation_id"`
	Seq            int64  `json:"seq"`
	Tag            string `json:"tag"`
	Unread         int64  `json:"unread"`
	// UnreadConversations are the recipient's conversations still unread: the service
	// worker closes the notifications of the others (read on another device meanwhile).
	UnreadConversations []int64 `json:"unread_conversations"`
	Lang                string  `json:"lang"` // the recipient's language, for the worker's own words
}

// pushPayload builds the recipient's payload in their language. Recipients are the
// conversation's active members (app_notify_members), exactly who may read its messages.
func (s *Service) pushPayload(r *pushRecipient, msg *messenger.Message, conv *messenger.Conversation) {
	body := msg.Body
	if msg.Kind == messenger.MessageFile && s.push.Preview != nil {
		body = s.push.Preview(r.member.Locale, *msg)
	}
	d := pushData{
		Title:          conv.DisplayTitle(r.member.UserID),
		Body:           truncate(msg.Sender.Name+": "+strings.Join(strings.Fields(body), " "), PushPreviewLength),
		URL:            strings.ReplaceAll(s.push.ConversationURL, "{id}", strconv.FormatInt(conv.ID, 10)),
		ConversationID: conv.ID, Seq: msg.Seq, Tag: "c" + strconv.FormatInt(conv.ID, 10),
		Unread: r.unread.Total, UnreadConversations: r.unread.Conversations, Lang: r.member.Locale,
	}
	if d.UnreadConversations == nil {
		d.UnreadConversations = []int64{}
	}
	if d.Lang != "en" {
		d.Lang = "ko"
	}
	if d.Title == "" {
		d.Title = msg.Sender.Name
	}
	r.topic, r.direct = d.Tag, conv.Kind == messenger.KindDirect
	r.payload, _ = json.Marshal(d)
	// After a 413: the title and body cut short, the rest kept.
	d.Title, d.Body = truncate(d.Title, 20), truncate(d.Body, 20)
	r.short, _ = json.Marshal(d)
}

// truncate cuts s to n characters, with an ellipsis when it was longer.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// pushOutcome is what one subscription's push came to.
type pushOutcome struct {
	sub    store.PushSubscription
	result push.Result
}

// pushSend builds each recipient's payload and sends their pushes, at most Concurrency
// recipients at once, and then records what happened: used, gone, or a retry job later.
func (s *Service) pushSend(ctx context.Context, a PushArgs, recipients []*pushRecipient, msg *messenger.Message, conv *messenger.Conversation) error {
	sem := semaphore.NewWeighted(int64(s.push.Concurrency))
	var mu sync.Mutex
	var outcomes []pushOutcome
	var wg sync.WaitGroup
	for i, r := range recipients {
		if err := sem.Acquire(ctx, 1); err != nil {
			// The job's time is up (push services that hang): the rest get a retry job
			// each, rather than the whole job running again and repeating what was sent.
			for _, r := range recipients[i:] {
				for _, sub := range r.subs {
					mu.Lock()
					outcomes = append(outcomes, pushOutcome{sub: sub, result: push.Result{Outcome: push.Retry, Reason: "canceled", Err: err}})
					mu.Unlock()
				}
			}
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer sem.Release(1)
			s.pushPayload(r, msg, conv)
			for _, sub := range r.subs {
				res := s.pushOne(ctx, r, sub)
				mu.Lock()
				outcomes = append(outcomes, pushOutcome{sub: sub, result: res})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// Recorded even when the job's context ended: what was sent is not sent again.
	return s.pushRecord(context.WithoutCancel(ctx), a, outcomes)
}

// pushOne sends one push; a 413 is logged and tried once more with the shorter payload.
func (s *Service) pushOne(ctx context.Context, r *pushRecipient, sub store.PushSubscription) push.Result {
	ps := push.Subscription{ID: sub.ID, Endpoint: sub.Endpoint, P256dh: sub.P256dh, Auth: sub.Auth}
	n := push.Notification{Payload: r.payload, Topic: r.topic, Urgent: r.direct}
	res := s.push.Sender.Send(ctx, ps, n)
	if res.Outcome == push.TooLarge {
		s.logger.Warn("push too large: shrunk", slog.String("subscription", sub.ID), slog.Int("bytes", len(r.payload)))
		n.Payload = r.short
		res = s.push.Sender.Send(ctx, ps, n)
	}
	return res
}

// pushRecord records the outcomes: a subscription's last use, a dead one deleted, a retry
// job for a push that may go later (Retry-After or the backoff, whichever is longer) until
// Retries is spent.
func (s *Service) pushRecord(ctx context.Context, a PushArgs, outcomes []pushOutcome) error {
	return s.db.InTx(ctx, nobody, func(tx *store.Tx) error {
		for _, o := range outcomes {
			var err error
			switch o.result.Outcome {
			case push.Sent:
				err = tx.PushSubscriptionUsed(ctx, o.sub.ID)
			case push.Gone:
				s.logger.Info("push subscription gone", slog.String("subscription", o.sub.ID), slog.Int("status", o.result.Status))
				err = tx.PushSubscriptionGone(ctx, o.sub.ID)
			case push.Retry:
				err = s.pushRetry(ctx, tx, a, o)
			default:
				s.logger.Warn("push failed", slog.String("subscription", o.sub.ID), slog.String("reason", o.result.Reason),
					slog.Any("error", o.result.Err))
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Service) pushRetry(ctx context.Context, tx *store.Tx, a PushArgs, o pushOutcome) error {
	next := a.Retry + 1
	if next > s.push.Retries {
		s.logger.Warn("push gave up", slog.String("subscription", o.sub.ID), slog.String("reason", o.result.Reason),
			slog.Int("retries", a.Retry), slog.Any("error", o.result.Err))
		return nil
	}
	wait := s.push.RetryBase << min(a.Retry, 20)
	wait = max(wait, o.result.RetryAfter)
	return tx.Enqueue(ctx, s.push.Jobs, PushArgs{ConversationID: a.ConversationID, MessageID: a.MessageID,
		SenderID: a.SenderID, UserID: o.sub.UserID, SubscriptionID: o.sub.ID, Retry: next, at: time.Now().Add(wait)})
}
