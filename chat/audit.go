package chat

import (
	"context"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/store"
)

// audit appends an entry acted by the transaction's user to the audit log, naming the
// request that did it.
func audit(ctx context.Context, tx *store.Tx, convID int64, action string, target *messenger.User, details map[string]any) error {
	return tx.Audit(ctx, messenger.AuditEntry{
		ConversationID: convID, Action: action, Target: target, Details: details, RequestID: messenger.RequestID(ctx),
	})
}

// AuditLog answers the newest entries of a conversation's audit log: a group's admins
// read their group's, the portal's administrators their zone announcements'.
func (s *Service) AuditLog(ctx context.Context, me messenger.User, convID int64) ([]messenger.AuditEntry, error) {
	var entries []messenger.AuditEntry
	err := s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error {
		conv, err := tx.Conversation(ctx, convID)
		if err != nil {
			return err
		}
		switch {
		case conv.Kind == messenger.KindAnnouncement:
			// A zone's notices are the school's: its portal administrators read their log.
			if me.Role != messenger.RoleAdmin {
				return messenger.Errorf(messenger.EFORBIDDEN, "error.school_admins_only")
			}
		default:
			if err := requireAdmin(conv, me); err != nil {
				return err
			}
		}
		entries, err = tx.AuditLog(ctx, convID, 200)
		return err
	})
	return entries, err
}
