// Package chat holds the messenger's use cases — list conversations, open a thread, and
// (as they arrive) send, read, invite — each in one place, shared by the HTML handlers and
// the JSON API.
package chat

import (
	"context"
	"encoding/base64"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/ratelimit"
	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/store"
)

// PageSize is how many conversations or messages one page holds.
const PageSize = 50

// Service runs the use cases against the database and announces their effects on the
// realtime engine.
type Service struct {
	pushSweeps pushSweeps // the push sweep this process committed last (chat/push.go)
	db         *store.DB
	events     realtime.Engine
	logger     *slog.Logger
	metrics    *metrics
	limits     *ratelimit.Limits
	files      *Files                           // nil until EnableFiles
	notify     *NotifyConfig                    // nil: DefaultNotifyConfig
	push       *Push                            // nil until EnablePush
	convLocks  [conversationLocks]chan struct{} // one slot each: the ordering locks (chat/send.go)
	sendQueue  sendQueue                        // sends waiting to be stored (chat/send.go)
	sendSlots  chan struct{}                    // one token per send transaction running (chat/send.go)
	lockFreed  wakeup                           // woken when an ordering lock is let go (chat/send.go)
	lastStored lastMessages                     // each conversation's last message sent here (chat/runs.go)
	presence   presenceQueue                    // users gone offline, to store and announce (chat/presence_batch.go)
	receipts   receiptQueue                     // groups' receipts being coalesced (chat/read.go)
	typing     typingAnnounced                  // when each typist was last announced (chat/presence.go)
}

// NewService answers a Service on db that publishes to events, registers its metrics
// with reg, and refuses a user past limits (nil: no limits).
func NewService(db *store.DB, events realtime.Engine, logger *slog.Logger, reg prometheus.Registerer, limits *ratelimit.Limits) *Service {
	s := &Service{db: db, events: events, logger: logger, metrics: newMetrics(reg), limits: limits,
		sendSlots: make(chan struct{}, DefaultSendTransactions), presence: newPresenceQueue(), receipts: newReceiptQueue(),
		typing: newTypingAnnounced()}
	for i := range s.convLocks {
		s.convLocks[i] = make(chan struct{}, 1)
	}
	return s
}

// WrapEvents has the use cases publish through wrap's engine from now on: the HTTP
// package's page cache hears this process's publishes at once that way. It is called
// while the process wires itself, before the service serves.
func (s *Service) WrapEvents(wrap func(realtime.Engine) realtime.Engine) { s.events = wrap(s.events) }

// allow takes a token of action from me's bucket: the first step of each use case that a
// script could repeat without end (ratelimit.Error past the limit).
func (s *Service) allow(ctx context.Context, action ratelimit.Action, me messenger.User) error {
	return s.limits.Allow(ctx, action, strconv.FormatInt(me.ID, 10))
}

// ConversationPage is one page of a user's conversation list.
type ConversationPage struct {
	Conversations []messenger.Conversation
	NextCursor    string // "" on the last page
}

// Conversations answers a page of me's conversations, most recent activity first, after
// cursor ("" for the first page).
func (s *Service) Conversations(ctx context.Context, me messenger.User, cursor string, limit int) (ConversationPage, error) {
	var page ConversationPage
	after, err := decodeCursor(cursor)
	if err != nil {
		return page, err
	}
	if limit <= 0 || limit > PageSize {
		limit = PageSize
	}
	page, err = store.InTxValue(ctx, s.db, me.Identity(), func(tx *store.Tx) (ConversationPage, error) {
		return conversationsPage(ctx, tx, after, limit)
	})
	s.markConversationsOnline(ctx, page.Conversations)
	return page, err
}

// UnreadCounts answers me's unread messages by conversation (only those with any).
func (s *Service) UnreadCounts(ctx context.Context, me messenger.User) (map[int64]int64, error) {
	counts, err := store.InTxValue(ctx, s.db, me.Identity(), func(tx *store.Tx) (map[int64]int64, error) {
		return tx.UnreadCounts(ctx)
	})
	return counts, err
}

// UnreadTotal answers how many unread messages me has across all conversations.
func (s *Service) UnreadTotal(ctx context.Context, me messenger.User) (int64, error) {
	counts, err := s.UnreadCounts(ctx, me)
	var total int64
	for _, n := range counts {
		total += n
	}
	return total, err
}

// Thread is an open conversation with a page of its messages, oldest first.
type Thread struct {
	Conversation messenger.Conversation
	Messages     []messenger.Message
	HasOlder     bool
	Watermarks   map[string]int64 // each active member's read watermark, by portal id (announcements: mine)
	Members      int64            // active members (announcements, whose watermarks are not all sent)
	Typing       []string         // names of the other members typing now
}

// OpenThread answers conversation convID as me sees it with the page of messages before
// beforeSeq (0: the newest). A conversation me is not in is not found.
func (s *Service) OpenThread(ctx context.Context, me messenger.User, convID, beforeSeq int64) (Thread, error) {
	var t Thread
	err := s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error { return openThread(ctx, tx, me, convID, beforeSeq, &t) })
	if err != nil {
		return t, err
	}
	s.liveThread(ctx, me, &t)
	return t, nil
}

// openThread reads conversation convID and its page of messages before beforeSeq into t.
func openThread(ctx context.Context, tx *store.Tx, me messenger.User, convID, beforeSeq int64, t *Thread) error {
	*t = Thread{}
	var err error
	if t.Conversation, err = tx.Conversation(ctx, convID); err != nil {
		return err
	}
	msgs, hasOlder, err := tx.MessagePage(ctx, convID, false, beforeSeq, PageSize)
	if err != nil {
		return err
	}
	t.HasOlder = hasOlder
	// Newest first from the store; the page shows oldest first.
	for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
		msgs[i], msgs[j] = msgs[j], msgs[i]
	}
	t.Messages = msgs
	if t.Conversation.Kind == messenger.KindAnnouncement {
		var mine int64
		t.Members, mine, err = tx.ReadSummary(ctx, convID)
		t.Watermarks = map[string]int64{me.Sub: mine}
		return err
	}
	t.Watermarks, err = tx.Watermarks(ctx, convID)
	return err
}

// liveThread fills in what the engine knows of an open thread: who is online, who types.
func (s *Service) liveThread(ctx context.Context, me messenger.User, t *Thread) {
	s.markConversationsOnline(ctx, []messenger.Conversation{t.Conversation})
	if typing, err := s.events.Typing(ctx, t.Conversation.ID); err == nil {
		for _, p := range t.Conversation.Participants {
			if p.ID != me.ID && slices.Contains(typing, p.ID) {
				t.Typing = append(t.Typing, p.Name)
			}
		}
	}
}

// ThreadPage is everything the page of an open thread shows, read in one transaction.
type ThreadPage struct {
	Thread
	List     ConversationPage // the first page of the list beside it
	Unread   int64            // unread messages in all of me's conversations
	Uploads  []messenger.Upload
	Settings store.MemberSettings // me's mute and keywords here
	Partner  PartnerNotice        // a direct conversation's other member's quiet hours
}

// OpenThreadPage answers the page of conversation convID that a browser opens (the
// messages before beforeSeq, 0: the newest), with the list, the unread total, my pending
// uploads and notification settings there: one transaction, not one per part.
func (s *Service) OpenThreadPage(ctx context.Context, me messenger.User, convID, beforeSeq int64, now time.Time) (ThreadPage, error) {
	var p ThreadPage
	var partner store.PartnerQuiet
	var hasPartner bool
	err := s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error {
		p, partner, hasPartner = ThreadPage{}, store.PartnerQuiet{}, false
		if err := openThread(ctx, tx, me, convID, beforeSeq, &p.Thread); err != nil {
			return err
		}
		var err error
		if p.Settings, err = tx.MemberSettings(ctx, convID); err != nil {
			return err
		}
		if p.Conversation.Kind == messenger.KindDirect {
			if partner, hasPartner, err = tx.PartnerQuietHours(ctx, convID); err != nil {
				return err
			}
		}
		if s.files != nil {
			if p.Uploads, err = tx.PendingUploads(ctx, convID); err != nil {
				return err
			}
		}
		return listPage(ctx, tx, &p.List, &p.Unread)
	})
	if err != nil {
		return p, err
	}
	if hasPartner {
		quiet, until := InQuietHours(s.NotifyConfig().Effective(partner.Role, partner.Settings), now)
		p.Partner = PartnerNotice{Quiet: quiet, Until: until, Role: partner.Role}
	}
	s.liveThread(ctx, me, &p.Thread)
	s.markConversationsOnline(ctx, p.List.Conversations)
	return p, nil
}

// ListPage answers the first page of me's conversations and their unread total, in one
// transaction.
func (s *Service) ListPage(ctx context.Context, me messenger.User) (ConversationPage, int64, error) {
	var page ConversationPage
	var unread int64
	err := s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error {
		page, unread = ConversationPage{}, 0
		return listPage(ctx, tx, &page, &unread)
	})
	if err == nil {
		s.markConversationsOnline(ctx, page.Conversations)
	}
	return page, unread, err
}

// listPage reads the first page of the list and the unread total.
func listPage(ctx context.Context, tx *store.Tx, page *ConversationPage, unread *int64) error {
	first, err := conversationsPage(ctx, tx, nil, PageSize)
	if err != nil {
		return err
	}
	*page = first
	counts, err := tx.UnreadCounts(ctx)
	for _, n := range counts {
		*unread += n
	}
	return err
}

// conversationsPage reads up to limit of the transaction user's conversations after the
// cursor (nil: from the top), with the next page's cursor when more lie beyond.
func conversationsPage(ctx context.Context, tx *store.Tx, after *store.ConversationCursor, limit int) (ConversationPage, error) {
	convs, err := tx.Conversations(ctx, after, limit+1)
	if err != nil {
		return ConversationPage{}, err
	}
	var page ConversationPage
	if len(convs) > limit {
		convs = convs[:limit]
		last := convs[limit-1]
		page.NextCursor = encodeCursor(store.ConversationCursor{At: *last.LastMessageAt, ID: last.ID})
	}
	page.Conversations = convs
	return page, nil
}

// cursors are opaque to clients: base64 of "unix-micro.id".
func encodeCursor(c store.ConversationCursor) string {
	raw := strconv.FormatInt(c.At.UnixMicro(), 10) + "." + strconv.FormatInt(c.ID, 10)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeCursor(s string) (*store.ConversationCursor, error) {
	if s == "" {
		return nil, nil
	}
	bad := messenger.Errorf(messenger.EINVALID, "error.cursor")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	at, id, ok := strings.Cut(string(raw), ".")
	micros, err1 := strconv.ParseInt(at, 10, 64)
	convID, err2 := strconv.ParseInt(id, 10, 64)
	if !ok || err1 != nil || err2 != nil || convID <= 0 || micros < 0 || micros > maxCursorMicros {
		return nil, bad
	}
	return &store.ConversationCursor{At: time.UnixMicro(micros), ID: convID}, nil
}

// maxCursorMicros is the end of year 9999: every cursor this server makes is between
// 1970 and then, and a time far outside is one PostgreSQL cannot take.
var maxCursorMicros = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro() - 1
