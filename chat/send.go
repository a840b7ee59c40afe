package chat

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/ratelimit"
	"github.com/dreamseed/messenger/store"
)

// SendMessage stores me's message in a conversation and announces it to every member. It
// is idempotent by clientMsgID: the same id again answers the stored message with created
// false, stores nothing and announces nothing.
func (s *Service) SendMessage(ctx context.Context, me messenger.User, convID int64, body, clientMsgID string) (messenger.Message, bool, error) {
	if err := s.allow(ctx, ratelimit.Send, me); err != nil {
		return messenger.Message{}, false, err
	}
	start := time.Now()
	body, err := messenger.CleanBody(body)
	if err != nil {
		return messenger.Message{}, false, err
	}
	var clientID *string
	if clientMsgID != "" {
		id, err := uuid.Parse(clientMsgID)
		if err != nil {
			return messenger.Message{}, false, messenger.Errorf(messenger.EINVALID, "client_msg_id must be a UUID.")
		}
		canonical := id.String()
		clientID = &canonical
	}

	var msg messenger.Message
	var created bool
	err = s.inOrder(convID, func() error {
		var sent store.Sent
		var window pushWindow
		err := s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error {
			var err error
			sent, err = tx.InsertMessage(ctx, convID, store.NewMessage{
				Kind: messenger.MessageText, Body: body, ClientMsgID: clientID, CanAnnounce: me.CanAnnounce(),
			})
			if err == nil && sent.Created && sent.ZoneID != 0 {
				err = audit(ctx, tx, convID, store.AuditAnnouncement, nil, map[string]any{"seq": sent.Message.Seq})
			}
			if err == nil && sent.Created {
				// The conversation's job of the window, whoever is away: it decides when it runs.
				window, err = s.enqueuePush(ctx, tx, sent.Message)
			}
			return err
		})
		msg, created = sent.Message, sent.Created
		if err != nil || !created {
			return err
		}
		s.pushEnqueued(window)
		msg.Sender = me
		if sent.ZoneID != 0 {
			s.publishAnnouncement(ctx, sent.ZoneID, msg)
		} else {
			s.publish(ctx, sent.Members, EventMessageNew, msg.API())
		}
		return nil
	})
	if err != nil || !created {
		return msg, false, err
	}
	s.metrics.messages.WithLabelValues(msg.Kind).Inc()
	s.metrics.sendDuration.Observe(time.Since(start).Seconds())
	// The message ends the sender's typing; receivers drop the indicator on message.new.
	if _, err := s.events.SetTyping(ctx, convID, me.ID, false); err != nil {
		s.logger.Warn("clear typing", slog.String("error", err.Error()))
	}
	return msg, true, nil
}

// conversationLocks serialize, inside this process, the messages of one conversation from
// before their transaction to after their publish, so that they are published in seq
// order. The conversation row lock alone orders the commits, not the publishes after
// them. Striped: a fixed array, not a map that grows with conversations.
const conversationLocks = 1024

// inOrder runs fn holding the lock of conversation convID.
func (s *Service) inOrder(convID int64, fn func() error) error {
	mu := &s.convLocks[uint64(convID)%conversationLocks]
	mu.Lock()
	defer mu.Unlock()
	return fn()
}

// Page selects messages of a conversation: ascending after AfterSeq when After is set,
// otherwise newest first before BeforeSeq (0: from the newest).
type Page struct {
	After     bool
	AfterSeq  int64
	BeforeSeq int64
	Limit     int
}

// Messages answers a page of a conversation's messages in the page's order, and whether
// more lie beyond it.
func (s *Service) Messages(ctx context.Context, me messenger.User, convID int64, p Page) (msgs []messenger.Message, hasMore bool, err error) {
	if p.Limit <= 0 || p.Limit > 200 {
		p.Limit = PageSize
	}
	err = s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error {
		if _, err := tx.Conversation(ctx, convID); err != nil {
			return err
		}
		var err error
		if p.After {
			msgs, err = tx.MessagesAfter(ctx, convID, p.AfterSeq, p.Limit+1)
		} else {
			msgs, err = tx.MessagesBefore(ctx, convID, p.BeforeSeq, p.Limit+1)
		}
		if len(msgs) > p.Limit {
			msgs, hasMore = msgs[:p.Limit], true
		}
		return err
	})
	return msgs, hasMore, err
}
