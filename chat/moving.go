package chat

import (
	"context"
	"log/slog"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/store"
)

// SignIn creates or updates the user a verified portal token describes. When the token
// names another organization than the user's (a teacher transferred to another school),
// the user moves: they leave the old organization's conversations, whose members hear
// the notices as for any leave, and start afresh in the new one.
func (s *Service) SignIn(ctx context.Context, p store.SignInParams) (messenger.User, error) {
	u, move, err := s.db.SignInWithMove(ctx, p)
	if err != nil || move == nil {
		return u, err
	}
	s.logger.InfoContext(ctx, "user moved to another organization", slog.Int64("from_user_id", move.From.ID),
		slog.Int64("user_id", u.ID), slog.Int("conversations_left", len(move.Conversations)),
		slog.String("request_id", messenger.RequestID(ctx)))
	for _, c := range move.Conversations {
		for _, m := range c.Notices {
			s.publish(ctx, c.Members, EventMessageNew, m)
			s.metrics.messages.WithLabelValues(m.Kind).Inc()
		}
		s.publish(ctx, c.Members, EventConversationUpdated, ConversationUpdate{ConversationID: c.ConversationID, Reason: ReasonMembers})
	}
	return u, nil
}
