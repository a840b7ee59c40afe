package chat

import (
	"context"
	"strings"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/ratelimit"
	"github.com/dreamseed/messenger/store"
)

// MaxGroupSize bounds the members of a group at creation.
const MaxGroupSize = 500

// CreateConversation starts a direct conversation with one person of me's organization,
// or a group with a title and members. A direct conversation that exists already is
// answered (and reopened if one had left it) with created false.
func (s *Service) CreateConversation(ctx context.Context, me messenger.User, kind, title string, memberSubs []string) (messenger.Conversation, bool, error) {
	var conv messenger.Conversation
	if err := s.allow(ctx, ratelimit.Create, me); err != nil {
		return conv, false, err
	}
	subs, err := uniqueSubs(memberSubs, me.Sub)
	if err != nil {
		return conv, false, err
	}
	switch kind {
	case messenger.KindDirect:
		if len(subs) != 1 {
			return conv, false, messenger.Errorf(messenger.EINVALID, "error.direct.one")
		}
	case messenger.KindGroup:
		if title, err = messenger.CleanTitle(title); err != nil {
			return conv, false, err
		}
		if len(subs) == 0 || len(subs) > MaxGroupSize-1 {
			return conv, false, messenger.Errorf(messenger.EINVALID, "error.group.size", MaxGroupSize-1)
		}
	default:
		return conv, false, messenger.Errorf(messenger.EINVALID, "error.kind")
	}

	var created bool
	var members []int64
	err = s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error {
		users, err := tx.UsersBySubs(ctx, subs)
		if err != nil {
			if messenger.ErrorCode(err) == messenger.ENOTFOUND {
				return messenger.Errorf(messenger.EINVALID, "%s", err)
			}
			return err
		}
		var id int64
		if kind == messenger.KindDirect {
			id, created, err = tx.DirectConversation(ctx, users[0].ID)
		} else {
			ids := make([]int64, len(users))
			for i, u := range users {
				ids[i] = u.ID
			}
			if title == "" {
				title = defaultGroupTitle(me, users)
			}
			id, err = tx.CreateGroup(ctx, title, ids)
			created = true
		}
		if err != nil {
			return err
		}
		if created {
			subs := make([]string, len(users))
			for i, u := range users {
				subs[i] = u.Sub
			}
			details := map[string]any{"kind": kind, "members": subs}
			if kind == messenger.KindGroup {
				details["title"] = title
			}
			if err := audit(ctx, tx, id, messenger.AuditCreated, nil, details); err != nil {
				return err
			}
		}
		if conv, err = tx.Conversation(ctx, id); err != nil {
			return err
		}
		members, err = tx.ParticipantIDs(ctx, id)
		return err
	})
	if err != nil {
		return conv, false, err
	}
	if created {
		s.publish(ctx, members, EventConversationUpdated, ConversationUpdate{ConversationID: conv.ID, Reason: "created"})
	}
	s.markConversationsOnline(ctx, []messenger.Conversation{conv})
	return conv, created, nil
}

// defaultGroupTitle names an untitled group after its first members, as KakaoTalk does:
// "김민준, 이서연, 박지호 외 2명", in its creator's language.
func defaultGroupTitle(me messenger.User, others []messenger.User) string {
	names := []string{me.Name}
	for _, u := range others {
		names = append(names, u.Name)
	}
	if len(names) <= 3 {
		return strings.Join(names, ", ")
	}
	title := messenger.Textf(me.Locale, "group.default_title", strings.Join(names[:3], ", "), len(names)-3)
	if r := []rune(title); len(r) > messenger.MaxTitleLength {
		title = string(r[:messenger.MaxTitleLength])
	}
	return title
}

// uniqueSubs answers the portal ids of people picked, without blanks, repeats and me; an
// id that no portal gives out (control characters) is refused.
func uniqueSubs(subs []string, me string) ([]string, error) {
	seen := map[string]bool{me: true}
	var out []string
	for _, s := range subs {
		s = strings.TrimSpace(s)
		if !messenger.ValidID(s) {
			return nil, messenger.Errorf(messenger.EINVALID, "error.person_id")
		}
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out, nil
}

// Conversation answers one conversation as me sees it; one me is not in is not found.
func (s *Service) Conversation(ctx context.Context, me messenger.User, convID int64) (messenger.Conversation, error) {
	conv, err := store.InTxValue(ctx, s.db, me.Identity(), func(tx *store.Tx) (messenger.Conversation, error) {
		return tx.Conversation(ctx, convID)
	})
	if err == nil {
		s.markConversationsOnline(ctx, []messenger.Conversation{conv})
	}
	return conv, err
}

// SearchPeople answers people of me's organization whose name contains q.
func (s *Service) SearchPeople(ctx context.Context, me messenger.User, q string) ([]messenger.User, error) {
	var users []messenger.User
	if !messenger.ValidID(q) {
		return users, messenger.Errorf(messenger.EINVALID, "error.search.invalid")
	}
	users, err := store.InTxValue(ctx, s.db, me.Identity(), func(tx *store.Tx) ([]messenger.User, error) {
		return tx.SearchUsers(ctx, q, 30)
	})
	return users, err
}
