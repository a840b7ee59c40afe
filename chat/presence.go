package chat

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/internal/trace"
	"github.com/dreamseed/messenger/ratelimit"
	"github.com/dreamseed/messenger/store"
)

// PresenceChange is the data of a presence event.
type PresenceChange struct {
	UserID     string     `json:"user_id"` // portal id
	Online     bool       `json:"online"`
	LastSeenAt *time.Time `json:"last_seen_at"`
}

// Typing is the data of a message.typing event.
type Typing struct {
	ConversationID int64  `json:"conversation_id"`
	UserID         string `json:"user_id"` // portal id
	Name           string `json:"name"`
	Typing         bool   `json:"typing"`
}

// Connected records a live connection of me; the first one anywhere makes me online, and
// my contacts hear it.
func (s *Service) Connected(ctx context.Context, me messenger.User, connID string) error {
	online, err := s.events.Connect(ctx, me.ID, connID)
	if err != nil {
		return err
	}
	if online {
		s.presence.afterBatch()
		s.announcePresence(ctx, me.Identity(), PresenceChange{UserID: me.Sub, Online: true})
	}
	return nil
}

// Disconnected ends a live connection of me; the last one anywhere makes me offline at
// once: my last_seen_at is stored and my contacts told by the next presence batch
// (StorePresence).
func (s *Service) Disconnected(ctx context.Context, me messenger.User, connID string) {
	offline, err := s.events.Disconnect(ctx, me.ID, connID)
	if err != nil {
		s.logger.Log(ctx, trace.FailureLevel(err), "presence disconnect", slog.Int64("user_id", me.ID), slog.String("error", err.Error()))
		return
	}
	if offline {
		s.wentOffline(ctx, me.ID, time.Now().UTC())
	}
}

// WatchPresence hands the users whose presence lapsed because their server process died
// (no clean disconnect) to the presence batches, until ctx ends. Each lapse reaches one
// process of the cluster.
func (s *Service) WatchPresence(ctx context.Context) {
	lapsed := s.events.PresenceExpired()
	for {
		select {
		case <-ctx.Done():
			return
		case userID, ok := <-lapsed:
			if !ok {
				return
			}
			s.logger.InfoContext(ctx, "presence lapsed", slog.Int64("user_id", userID))
			s.wentOffline(ctx, userID, time.Now().UTC())
		}
	}
}

// announcePresence tells the people who share a conversation with the user, and only them.
func (s *Service) announcePresence(ctx context.Context, id messenger.Identity, change PresenceChange) {
	contacts, err := store.InTxValue(ctx, s.db, id, func(tx *store.Tx) ([]int64, error) {
		return tx.Contacts(ctx)
	})
	if err != nil {
		s.logger.ErrorContext(ctx, "presence contacts", slog.Int64("user_id", id.UserID), slog.String("error", err.Error()))
		return
	}
	s.publishDroppable(ctx, contacts, EventPresence, change)
}

// SetTyping tells the other members of a conversation that me is (still) typing, or
// stopped. The engine keeps the state for three seconds, so it lapses by itself. A start
// and a stop are told when they change the state; "still typing" at most once an interval
// (MESSENGER_TYPING_ANNOUNCE_EVERY, a second) per typist and conversation, whatever a
// client sends: each process counts the signals it serves.
func (s *Service) SetTyping(ctx context.Context, me messenger.User, convID int64, on bool) error {
	if err := s.allow(ctx, ratelimit.Typing, me); err != nil {
		return err
	}
	var members []int64
	err := s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error {
		if _, err := tx.Conversation(ctx, convID); err != nil {
			return err
		}
		var err error
		members, err = tx.ParticipantIDs(ctx, convID)
		return err
	})
	if err != nil {
		return err
	}
	changed, err := s.events.SetTyping(ctx, convID, me.ID, on)
	if err != nil {
		return err
	}
	if !s.typing.announce(convID, me.ID, on, changed, time.Now()) {
		return nil
	}
	others := members[:0:0]
	for _, id := range members {
		if id != me.ID {
			others = append(others, id)
		}
	}
	s.publishDroppable(ctx, others, EventTyping, Typing{ConversationID: convID, UserID: me.Sub, Name: me.Name, Typing: on})
	return nil
}

// DefaultTypingAnnounceEvery is the shortest time between two announcements that a typist
// is still typing, unless told otherwise (MESSENGER_TYPING_ANNOUNCE_EVERY).
const DefaultTypingAnnounceEvery = time.Second

// SetTypingAnnounceEvery sets the shortest time between two announcements that a typist is
// still typing (0: every signal). Call it while wiring, before the service serves.
func (s *Service) SetTypingAnnounceEvery(d time.Duration) {
	s.typing.mu.Lock()
	s.typing.every = max(d, 0)
	s.typing.mu.Unlock()
}

// typingAnnounced is when this process last announced each (conversation, typist) typing.
type typingAnnounced struct {
	mu    sync.Mutex
	every time.Duration
	last  map[[2]int64]time.Time
}

// maxTypingAnnounced bounds the memory of typists; past it those announced an interval
// ago or more are forgotten (which only lets their next signal through).
const maxTypingAnnounced = 10000

func newTypingAnnounced() typingAnnounced {
	return typingAnnounced{every: DefaultTypingAnnounceEvery, last: make(map[[2]int64]time.Time)}
}

// announce reports whether a typing signal of user in conv at t is told to the others:
// a change of state always, "still typing" once an interval.
func (a *typingAnnounced) announce(conv, user int64, on, changed bool, t time.Time) bool {
	key := [2]int64{conv, user}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !on {
		delete(a.last, key)
		return changed
	}
	if last, ok := a.last[key]; ok && !changed && t.Sub(last) < a.every {
		return false
	}
	if len(a.last) >= maxTypingAnnounced {
		for k, last := range a.last {
			if t.Sub(last) >= a.every {
				delete(a.last, k)
			}
		}
	}
	a.last[key] = t
	return true
}

// markOnline fills in who of the users is online now.
func (s *Service) markOnline(ctx context.Context, users []*messenger.User) {
	if len(users) == 0 {
		return
	}
	ids := make([]int64, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	online, err := s.events.Online(ctx, ids)
	if err != nil {
		s.logger.Log(ctx, trace.FailureLevel(err), "presence lookup", slog.String("error", err.Error()))
		return
	}
	for _, u := range users {
		u.Online = online[u.ID]
	}
}

// markConversationsOnline fills in the presence of every participant of convs.
func (s *Service) markConversationsOnline(ctx context.Context, convs []messenger.Conversation) {
	var users []*messenger.User
	for i := range convs {
		for j := range convs[i].Participants {
			users = append(users, &convs[i].Participants[j].User)
		}
	}
	s.markOnline(ctx, users)
}
