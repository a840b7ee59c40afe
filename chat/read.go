package chat

import (
	"context"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/ratelimit"
	"github.com/dreamseed/messenger/store"
)

// ReadReceipt is the data of a message.read_receipt event: a member's watermark rose.
type ReadReceipt struct {
	ConversationID int64  `json:"conversation_id"`
	UserID         string `json:"user_id"` // portal id
	LastReadSeq    int64  `json:"last_read_seq"`
}

// MarkRead raises me's read watermark in a conversation to seq. When it rose, every member
// hears it (read counts under their messages) and so do me's other tabs (badges clear).
func (s *Service) MarkRead(ctx context.Context, me messenger.User, convID, seq int64) error {
	if err := s.allow(ctx, ratelimit.Read, me); err != nil {
		return err
	}
	if seq <= 0 {
		return messenger.Errorf(messenger.EINVALID, "error.seq")
	}
	var after int64
	var members []int64
	err := s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error {
		before, a, err := tx.MarkRead(ctx, convID, seq)
		if err != nil || a <= before {
			return err
		}
		after = a
		members, err = tx.ParticipantIDs(ctx, convID)
		return err
	})
	if err != nil || after == 0 {
		return err
	}
	s.publish(ctx, members, EventReadReceipt, ReadReceipt{ConversationID: convID, UserID: me.Sub, LastReadSeq: after})
	return nil
}
