package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"golang.org/x/sync/semaphore"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/internal/trace"
	"github.com/dreamseed/messenger/jobs"
	"github.com/dreamseed/messenger/push"
	"github.com/dreamseed/messenger/store"
)

// Push is what web push needs: one sweep per Delay window, enqueued (unique) in the
// transaction of each message of the window and run after it, enqueues the job of each
// conversation with a member away; that job decides at run time who gets a push and sends
// each the conversation's newest message they have not read.
type Push struct {
	Sender *push.Sender
	Jobs   *jobs.Runner
	// Delay is the sweep's window (MESSENGER_PUSH_DELAY): the messages of one window share a
	// sweep, run between Delay and twice Delay after each of them (at least a second), so a
	// message read at once over a live stream never pushes.
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
	// Preview words a file message's body in a locale ("사진", "파일: name"), as pages
	// word it (views.FilePreview).
	Preview func(locale string, m messenger.Message) string
}

// Defaults of Push.
const (
	DefaultPushConcurrency = 8
	DefaultPushRetries     = 5
	DefaultPushRetryBase   = 30 * time.Second
	// PushPreviewLength is the notification body's length in characters.
	PushPreviewLength = 100
	pushAttempts      = 3 // of the conversation's job (a database error): each recipient is decided again
	// PushScan bounds the unread messages a job reads (the newest of them) for keywords.
	PushScan = 100
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
	n, err := store.InTxValue(ctx, s.db, nobody, func(tx *store.Tx) (int64, error) {
		return tx.PushSubscriptionCount(ctx)
	})
	if err != nil {
		return math.NaN()
	}
	return float64(n)
}

// PushArgs is the push job of a conversation. Its arguments are only ids and never trusted
// (anyone with the app role can insert a job): recipients are the conversation's active
// members, and what a member is pushed is their own newest unread message of it, read as
// a member; a message already pushed to a member is not pushed again (push_marks).
// A window's sweep (PushSweepArgs) enqueues it for a conversation with a member away.
type PushArgs struct {
	ConversationID int64 `json:"conversation_id" river:"unique"`
	// UserID, when set, limits the job to one recipient (their quiet hours ended, a retry).
	UserID int64 `json:"user_id,omitempty" river:"unique"`
	// SubscriptionID, when set, limits it to one of their subscriptions (a retry: pushed
	// even though the member's mark says the message went, since to this one it did not).
	SubscriptionID string `json:"subscription_id,omitempty"`
	Retry          int    `json:"retry,omitempty"`
	at             time.Time
}

// Kind names the job.
func (PushArgs) Kind() string { return "push_message" }

// QueuePush is the push jobs' queue: a runner that registers the push worker works it too
// (jobs.Config.Queues). A group's message gives a burst of them, which neither waits behind
// the files' scans nor holds them up, and takes a bounded share of the machine.
const QueuePush = "push"

// InsertOpts schedules the job; a member's job for the end of their quiet hours is unique
// by conversation and member while it waits: the windows of a night give one push at its
// end, not one each. A conversation's job is not unique: one that runs while another does
// pushes nobody twice (PushClaim), and one skipped because another had begun would miss
// what came after that one read.
func (a PushArgs) InsertOpts() river.InsertOpts {
	o := river.InsertOpts{MaxAttempts: pushAttempts, Queue: QueuePush, ScheduledAt: a.at}
	if a.UserID != 0 && a.SubscriptionID == "" {
		o.UniqueOpts = river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{rivertype.JobStateAvailable,
			rivertype.JobStatePending, rivertype.JobStateRetryable, rivertype.JobStateRunning, rivertype.JobStateScheduled}}
	}
	return o
}

// PushSweepArgs is a window's push sweep: every message's transaction enqueues its window's
// (unique: the window's first message inserts it, the others find it there), and it runs
// Delay after the window ends. It asks which members of the conversations active since the
// window began might get a push (app_push_sweep), which of them are live, and enqueues the
// conversation's job (PushArgs) where one is away: one job a window, not one a conversation,
// and no conversation job at all for the messages seen live, which are most.
type PushSweepArgs struct {
	// Since is the window's start, Unix ms: the sweep looks at conversations active since a
	// window before it (a message committed late, or stamped by a clock a little behind),
	// and never further back than pushSweepMaxAge (it is not trusted either).
	Since int64 `json:"since" river:"unique"`
	at    time.Time
}

// Kind names the job.
func (PushSweepArgs) Kind() string { return "push_sweep" }

// pushSweepMaxAge bounds how far back a sweep looks, whatever its arguments say.
const pushSweepMaxAge = time.Hour

// Hooks: the sweep goes in available at its time (jobs.AvailableAtItsTime), past River's
// scheduler.
func (PushSweepArgs) Hooks() []rivertype.Hook {
	return []rivertype.Hook{jobs.AvailableAtItsTime(func(rivertype.JobArgs) bool { return true })}
}

// InsertOpts schedules the sweep at its window's end plus Delay, unique by its window.
func (a PushSweepArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: pushAttempts, Queue: QueuePush, ScheduledAt: a.at,
		UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type pushWorker struct {
	river.WorkerDefaults[PushArgs]
	s *Service
}

func (w *pushWorker) Work(ctx context.Context, job *river.Job[PushArgs]) error {
	trace.SetConversation(ctx, job.Args.ConversationID)
	return w.s.pushMessage(ctx, job.Args)
}

type pushSweepWorker struct {
	river.WorkerDefaults[PushSweepArgs]
	s *Service
}

func (w *pushSweepWorker) Work(ctx context.Context, job *river.Job[PushSweepArgs]) error {
	return w.s.pushSweep(ctx, job.Args)
}

// RegisterPushWorker adds the push jobs to w.
func (s *Service) RegisterPushWorker(w *river.Workers) {
	river.AddWorker(w, &pushWorker{s: s})
	river.AddWorker(w, &pushSweepWorker{s: s})
}

// PushJobKinds are the kinds of job web push enqueues.
func PushJobKinds() []string { return []string{PushArgs{}.Kind(), PushSweepArgs{}.Kind()} }

// pushSlot is a window of the push sweep: its start and when its sweep runs.
type pushSlot struct {
	start, at time.Time
	window    time.Duration
}

// pushSlotOf answers the window of a message committed now (none without push).
func (s *Service) pushSlotOf(now time.Time) (pushSlot, bool) {
	if s.push == nil || s.push.Jobs == nil {
		return pushSlot{}, false
	}
	return pushSlotAt(now, s.push.Delay), true
}

// pushSlotAt answers the window at time now: windows are Delay long (at least a second),
// from multiples of it, and a window's sweep runs Delay after its end.
func pushSlotAt(now time.Time, delay time.Duration) pushSlot {
	window := max(delay, time.Second)
	start := now.Truncate(window)
	return pushSlot{start: start, at: start.Add(window + delay), window: window}
}

// enqueueSweep puts window w's sweep in tx, the message's own transaction.
func (s *Service) enqueueSweep(ctx context.Context, tx *store.Tx, w pushSlot) error {
	return tx.Enqueue(ctx, s.push.Jobs, PushSweepArgs{Since: w.start.UnixMilli(), at: w.at})
}

// enqueuePush puts the sweep of the window now in tx, a message's own transaction (a file
// message's, not recorded in pushSweeps: it is rare).
func (s *Service) enqueuePush(ctx context.Context, tx *store.Tx) error {
	w, ok := s.pushSlotOf(time.Now())
	if !ok {
		return nil
	}
	return s.enqueueSweep(ctx, tx, w)
}

// pushSweeps remembers the latest window whose sweep this process committed, so that the
// window's later messages skip River's unique insert (which would meet the job's row).
type pushSweeps struct {
	mu     sync.Mutex
	latest time.Time
}

func (p *pushSweeps) has(w pushSlot) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.latest.Equal(w.start)
}

func (p *pushSweeps) add(w pushSlot) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if w.start.After(p.latest) {
		p.latest = w.start
	}
}

// pushSweep runs a window's sweep: the conversations active since a window before its start
// with a member who might get a push and is away get their job, now.
func (s *Service) pushSweep(ctx context.Context, a PushSweepArgs) error {
	if s.push == nil {
		return errors.New("push is not enabled in this process")
	}
	window := max(s.push.Delay, time.Second)
	since := time.UnixMilli(a.Since).Add(-window)
	if floor := time.Now().Add(-pushSweepMaxAge); since.Before(floor) {
		since = floor
	}
	cands, err := store.InTxValue(ctx, s.db, nobody, func(tx *store.Tx) (map[int64][]int64, error) {
		return tx.PushSweep(ctx, since)
	})
	if err != nil || len(cands) == 0 {
		return err
	}
	var ids []int64
	for _, users := range cands {
		ids = append(ids, users...)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	online := make(map[int64]bool, len(ids))
	for chunk := range slices.Chunk(ids, pushSweepPresenceChunk) {
		live, err := s.events.Online(ctx, chunk)
		if err != nil {
			return fmt.Errorf("push sweep: presence: %w", err)
		}
		for id, on := range live {
			online[id] = on
		}
	}
	var convs []int64
	for conv, users := range cands {
		if slices.ContainsFunc(users, func(id int64) bool { return !online[id] }) {
			convs = append(convs, conv)
		}
	}
	slices.Sort(convs)
	for chunk := range slices.Chunk(convs, pushSweepInsertChunk) {
		args := make([]river.JobArgs, len(chunk))
		for i, conv := range chunk {
			args[i] = PushArgs{ConversationID: conv}
		}
		if err := s.db.InTx(ctx, nobody, func(tx *store.Tx) error { return tx.EnqueueMany(ctx, s.push.Jobs, args) }); err != nil {
			return err
		}
	}
	return nil
}

// The sweep asks presence and inserts conversation jobs this many at a time.
const (
	pushSweepPresenceChunk = 1000
	pushSweepInsertChunk   = 500
)

// pushRecipient is a member who gets a push, with their subscriptions.
type pushRecipient struct {
	member  store.MemberNotify
	msg     *messenger.Message // their newest unread message of the conversation
	count   int64              // their unread messages in the conversation
	unread  store.PushUnread   // across their conversations: the app badge, and which hold it
	subs    []store.PushSubscription
	payload []byte
	short   []byte // the payload shrunk, after a 413
	topic   string // one per conversation: a newer push replaces an undelivered one
	direct  bool   // 1:1 pushes are urgent
}

// pushMessage runs a conversation's push job.
func (s *Service) pushMessage(ctx context.Context, a PushArgs) error {
	if s.push == nil {
		return errors.New("push is not enabled in this process")
	}
	l, err := s.pushLoad(ctx, a)
	if err != nil || l == nil {
		return err
	}
	now := time.Now()
	rules := s.NotifyConfig()
	var later []PushArgs
	var chosen []*pushRecipient
	for _, m := range l.members {
		msg, count := l.newestFor(m, a.SubscriptionID != "")
		if msg == nil || !wantsPush(m, l.textFor(m), now) {
			continue
		}
		if quiet, end := InQuietHours(rules.Effective(m.Role, m.Settings), now); quiet {
			later = append(later, PushArgs{ConversationID: a.ConversationID, UserID: m.UserID, at: end})
			continue
		}
		chosen = append(chosen, &pushRecipient{member: m, msg: msg, count: count})
	}
	if err := s.enqueueLater(ctx, later); err != nil {
		return err
	}
	recipients, err := s.pushRecipients(ctx, a, chosen)
	if err != nil || len(recipients) == 0 {
		return err
	}
	return s.pushSend(ctx, a, recipients, l.conv)
}

// pushLoaded is what a conversation's job decides from: the members who may get a push,
// the conversation and its newest messages (up to PushScan) after the least read of them.
type pushLoaded struct {
	members []store.MemberNotify
	marks   map[int64]int64 // the seq last pushed to each member
	conv    *messenger.Conversation
	msgs    []messenger.Message // oldest first
}

// pushLoad loads the conversation's members as nobody, then the conversation and its
// unread messages as the member (of those the job may push) who read least: every active
// member may read every message of it. Nil when there is nobody to push.
func (s *Service) pushLoad(ctx context.Context, a PushArgs) (*pushLoaded, error) {
	l := &pushLoaded{}
	var members []store.MemberNotify
	err := s.db.InTx(ctx, nobody, func(tx *store.Tx) error {
		var err error
		if members, err = tx.NotifyMembers(ctx, a.ConversationID); err != nil {
			return err
		}
		l.marks, err = tx.PushMarks(ctx, a.ConversationID)
		return err
	})
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var ids []int64
	may := members[:0]
	for _, m := range members {
		if (a.UserID != 0 && m.UserID != a.UserID) || !m.Settings.Push || m.Mute.Active(now) {
			continue
		}
		may, ids = append(may, m), append(ids, m.UserID)
	}
	if len(may) == 0 {
		return nil, nil
	}
	// Presence before anything else is read: most messages are seen live, and then the job
	// ends here, without reading the conversation.
	online, err := s.events.Online(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("push: presence: %w", err)
	}
	var reader int64
	least := int64(math.MaxInt64)
	for _, m := range may {
		if online[m.UserID] {
			continue
		}
		l.members = append(l.members, m)
		if m.LastReadSeq < least {
			reader, least = m.UserID, m.LastReadSeq
		}
	}
	if len(l.members) == 0 {
		return nil, nil
	}
	var as messenger.Identity
	err = s.db.InTx(ctx, nobody, func(tx *store.Tx) error {
		var err error
		as, _, err = tx.PushIdentity(ctx, reader)
		return err
	})
	if messenger.ErrorCode(err) == messenger.ENOTFOUND {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	err = s.db.InTx(ctx, as, func(tx *store.Tx) error {
		conv, err := tx.Conversation(ctx, a.ConversationID)
		if err != nil {
			return err
		}
		l.conv = &conv
		l.msgs, err = tx.MessagesAfter(ctx, a.ConversationID, max(least, conv.LastSeq-PushScan), PushScan)
		return err
	})
	if messenger.ErrorCode(err) == messenger.ENOTFOUND {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return l, nil
}

// pushable: a message a push may show (text or files, not deleted).
func pushable(m *messenger.Message) bool {
	return !m.Deleted && (m.Kind == messenger.MessageText || m.Kind == messenger.MessageFile)
}

// newestFor answers the member's newest unread message and how many they have unread in
// the conversation; none when they read up to it, when it is their own (they wrote last),
// or when it was pushed to them already (unless again is set: a retry to one subscription).
func (l *pushLoaded) newestFor(m store.MemberNotify, again bool) (*messenger.Message, int64) {
	for i := len(l.msgs) - 1; i >= 0 && l.msgs[i].Seq > m.LastReadSeq; i-- {
		msg := &l.msgs[i]
		if !pushable(msg) {
			continue
		}
		if msg.Sender.ID == m.UserID || (!again && l.marks[m.UserID] >= msg.Seq) {
			return nil, 0
		}
		return msg, l.conv.LastSeq - m.LastReadSeq
	}
	return nil, 0
}

// textFor is what keywords are looked for in: the member's unread messages of others, their
// text and files' names.
func (l *pushLoaded) textFor(m store.MemberNotify) string {
	var b strings.Builder
	for i := range l.msgs {
		msg := &l.msgs[i]
		if msg.Seq > m.LastReadSeq && pushable(msg) && msg.Sender.ID != m.UserID {
			b.WriteString(pushText(msg))
			b.WriteString("\n")
		}
	}
	return b.String()
}

// wantsPush decides what the member's keywords say (push on and not muted were decided
// when loading): the unread text holds one of them if they set any (normalised again here:
// NFC, lower case).
func wantsPush(m store.MemberNotify, text string, now time.Time) bool {
	if len(m.Keywords) == 0 {
		return true
	}
	words := make([]string, len(m.Keywords))
	for i, w := range m.Keywords {
		words[i] = NormalizeText(w)
	}
	return MatchKeywords(words, text)
}

// pushText is a message's text and its files' names.
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

// pushRecipients keeps the chosen members (away when the job began) who have a subscription.
func (s *Service) pushRecipients(ctx context.Context, a PushArgs, chosen []*pushRecipient) ([]*pushRecipient, error) {
	if len(chosen) == 0 {
		return nil, nil
	}
	away := make([]int64, len(chosen))
	byUser := make(map[int64]*pushRecipient, len(chosen))
	for i, r := range chosen {
		away[i] = r.member.UserID
		byUser[r.member.UserID] = r
	}
	var out []*pushRecipient
	err := s.db.InTx(ctx, nobody, func(tx *store.Tx) error {
		subs, err := tx.PushSubscriptionsOf(ctx, away)
		if err != nil {
			return err
		}
		var users, seqs []int64
		for _, sub := range subs {
			if a.SubscriptionID != "" && sub.ID != a.SubscriptionID {
				continue
			}
			r := byUser[sub.UserID]
			if len(r.subs) == 0 {
				out = append(out, r)
				users, seqs = append(users, sub.UserID), append(seqs, r.msg.Seq)
			}
			r.subs = append(r.subs, sub)
		}
		if a.SubscriptionID == "" && len(users) > 0 {
			// Claimed before it is sent: a job of the conversation running beside this one
			// (two windows' jobs due together) finds the marks moved and pushes nobody twice.
			claimed, err := tx.PushClaim(ctx, a.ConversationID, users, seqs)
			if err != nil {
				return err
			}
			out, users = slices.DeleteFunc(out, func(r *pushRecipient) bool { return !claimed[r.member.UserID] }), users[:0]
			for _, r := range out {
				users = append(users, r.member.UserID)
			}
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
	// Count is the recipient's unread messages in the conversation ("새 메시지 N개").
	Count  int64 `json:"count"`
	Unread int64 `json:"unread"`
	// UnreadConversations are the recipient's conversations still unread: the service
	// worker closes the notifications of the others (read on another device meanwhile).
	UnreadConversations []int64 `json:"unread_conversations"`
	Lang                string  `json:"lang"` // the recipient's language, for the worker's own words
}

// pushPayload builds the recipient's payload in their language. Recipients are the
// conversation's active members (app_notify_members), exactly who may read its messages.
func (s *Service) pushPayload(r *pushRecipient, conv *messenger.Conversation) {
	msg := r.msg
	body := msg.Body
	if msg.Kind == messenger.MessageFile && s.push.Preview != nil {
		body = s.push.Preview(r.member.Locale, *msg)
	}
	d := pushData{
		Title:          conv.DisplayTitle(r.member.UserID, r.member.Locale),
		Body:           truncate(msg.Sender.Name+": "+strings.Join(strings.Fields(body), " "), PushPreviewLength),
		URL:            strings.ReplaceAll(s.push.ConversationURL, "{id}", strconv.FormatInt(conv.ID, 10)),
		ConversationID: conv.ID, Seq: msg.Seq, Tag: "c" + strconv.FormatInt(conv.ID, 10), Count: max(r.count, 1),
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
func (s *Service) pushSend(ctx context.Context, a PushArgs, recipients []*pushRecipient, conv *messenger.Conversation) error {
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
			s.pushPayload(r, conv)
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
		s.logger.WarnContext(ctx, "push too large: shrunk", slog.String("subscription", sub.ID), slog.Int("bytes", len(r.payload)))
		n.Payload = r.short
		res = s.push.Sender.Send(ctx, ps, n)
	}
	return res
}

// pushRecord records the outcomes (each member's mark was claimed before the push went):
// a subscription's last use, a dead one deleted, a retry job for a push that may go later
// (Retry-After or the backoff, whichever is longer) until Retries is spent.
func (s *Service) pushRecord(ctx context.Context, a PushArgs, outcomes []pushOutcome) error {
	return s.db.InTx(ctx, nobody, func(tx *store.Tx) error {
		for _, o := range outcomes {
			var err error
			switch o.result.Outcome {
			case push.Sent:
				err = tx.PushSubscriptionUsed(ctx, o.sub.ID)
			case push.Gone:
				s.logger.InfoContext(ctx, "push subscription gone", slog.String("subscription", o.sub.ID), slog.Int("status", o.result.Status))
				err = tx.PushSubscriptionGone(ctx, o.sub.ID)
			case push.Retry:
				err = s.pushRetry(ctx, tx, a, o)
			default:
				s.logger.WarnContext(ctx, "push failed", slog.String("subscription", o.sub.ID), slog.String("reason", o.result.Reason),
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
		s.logger.WarnContext(ctx, "push gave up", slog.String("subscription", o.sub.ID), slog.String("reason", o.result.Reason),
			slog.Int("retries", a.Retry), slog.Any("error", o.result.Err))
		return nil
	}
	wait := s.push.RetryBase << min(a.Retry, 20)
	wait = max(wait, o.result.RetryAfter)
	return tx.Enqueue(ctx, s.push.Jobs, PushArgs{ConversationID: a.ConversationID, UserID: o.sub.UserID,
		SubscriptionID: o.sub.ID, Retry: next, at: time.Now().Add(wait)})
}
