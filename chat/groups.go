package chat

import (
	"context"
	"slices"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/ratelimit"
	"github.com/dreamseed/messenger/store"
)

// Reasons of conversation.updated events.
const (
	ReasonCreated = "created" // a conversation of mine was created
	ReasonAdded   = "added"   // I was invited: it appears in my list
	ReasonLeft    = "left"    // I left it (in another tab)
	ReasonRemoved = "removed" // an admin removed me: my thread closes
	ReasonMembers = "members" // its members or their roles changed
	ReasonRenamed = "renamed" // it has a new title
	// ReasonSettings: my notification settings of it (mute, keywords) changed, in another
	// tab or device of mine.
	ReasonSettings = "settings"
)

// change is one membership or title change of a group, done under the conversation's
// ordering lock: its transaction checks what the actor may do, changes the rows, appends
// to the audit log and stores the system messages; then they are published in seq order,
// followed by conversation.updated to whom it concerns.
type change struct {
	notices []messenger.Message
	members []int64          // active members after the change
	updates map[int64]string // user id → reason of their conversation.updated
}

// groupChange runs fn for me in conversation convID as one change.
func (s *Service) groupChange(ctx context.Context, me messenger.User, convID int64, fn func(tx *store.Tx, conv messenger.Conversation, ch *change) error) error {
	return s.inOrder(convID, func() error {
		ch := &change{}
		err := s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error {
			*ch = change{updates: map[int64]string{}}
			// Nothing of a zone's announcements is managed: refuse before locking its row,
			// which every notice of the zone needs.
			kind, err := tx.ConversationKind(ctx, convID)
			if err != nil {
				return err
			}
			if kind == messenger.KindAnnouncement {
				return messenger.Errorf(messenger.EFORBIDDEN, "error.announcement.zone_members")
			}
			if err := tx.LockConversation(ctx, convID); err != nil {
				return err
			}
			conv, err := tx.Conversation(ctx, convID)
			if err != nil {
				return err
			}
			before, err := tx.ParticipantIDs(ctx, convID)
			if err != nil {
				return err
			}
			if err := fn(tx, conv, ch); err != nil {
				return err
			}
			if ch.updates[me.ID] == ReasonLeft {
				// Having left, me sees nothing of the conversation any more.
				ch.members = slices.DeleteFunc(before, func(id int64) bool { return id == me.ID })
				return nil
			}
			ch.members, err = tx.ParticipantIDs(ctx, convID)
			return err
		})
		if err != nil {
			return err
		}
		if len(ch.notices) == 0 && len(ch.updates) == 0 {
			return nil // nothing changed (already members, the same title or role)
		}
		for _, m := range ch.notices {
			m.Sender = me
			s.publish(ctx, ch.members, EventMessageNew, m)
			s.metrics.messages.WithLabelValues(m.Kind).Inc()
		}
		byReason := map[string][]int64{}
		for _, id := range ch.members {
			if _, ok := ch.updates[id]; !ok {
				ch.updates[id] = ReasonMembers
			}
		}
		for id, reason := range ch.updates {
			byReason[reason] = append(byReason[reason], id)
		}
		for reason, ids := range byReason {
			slices.Sort(ids)
			s.publish(ctx, ids, EventConversationUpdated, ConversationUpdate{ConversationID: convID, Reason: reason})
		}
		return nil
	})
}

// notice stores a system message of me in the change's transaction.
func (ch *change) notice(ctx context.Context, tx *store.Tx, convID int64, ev messenger.SystemEvent) error {
	m, err := tx.InsertNotice(ctx, convID, ev)
	if err != nil {
		return err
	}
	ch.notices = append(ch.notices, m)
	return nil
}

func requireGroup(conv messenger.Conversation) error {
	switch conv.Kind {
	case messenger.KindGroup:
		return nil
	case messenger.KindDirect:
		return messenger.Errorf(messenger.EINVALID, "error.direct.members")
	}
	return messenger.Errorf(messenger.EFORBIDDEN, "error.announcement.no_members")
}

func requireAdmin(conv messenger.Conversation, me messenger.User) error {
	if err := requireGroup(conv); err != nil {
		return err
	}
	if !conv.IsAdmin(me.ID) {
		return messenger.Errorf(messenger.EFORBIDDEN, "error.group.admins_only")
	}
	return nil
}

// Invite makes people of me's organization members of a group me is in. People who are
// members already are skipped; the answer is the conversation afterwards.
func (s *Service) Invite(ctx context.Context, me messenger.User, convID int64, subs []string) (messenger.Conversation, error) {
	if err := s.allow(ctx, ratelimit.Invite, me); err != nil {
		return messenger.Conversation{}, err
	}
	subs, err := uniqueSubs(subs, me.Sub)
	if err != nil {
		return messenger.Conversation{}, err
	}
	if len(subs) == 0 {
		return messenger.Conversation{}, messenger.Errorf(messenger.EINVALID, "error.invite.none")
	}
	err = s.groupChange(ctx, me, convID, func(tx *store.Tx, conv messenger.Conversation, ch *change) error {
		if err := requireGroup(conv); err != nil {
			return err
		}
		if len(conv.Participants)+len(subs) > MaxGroupSize {
			return messenger.Errorf(messenger.EINVALID, "error.group.too_big", MaxGroupSize)
		}
		users, err := tx.UsersBySubs(ctx, subs)
		if err != nil {
			if messenger.ErrorCode(err) == messenger.ENOTFOUND {
				return messenger.Errorf(messenger.EINVALID, "%s", err)
			}
			return err
		}
		ids := make([]int64, len(users))
		byID := make(map[int64]messenger.User, len(users))
		for i, u := range users {
			ids[i], byID[u.ID] = u.ID, u
		}
		added, err := tx.AddMembers(ctx, convID, ids)
		if err != nil || len(added) == 0 {
			return err
		}
		names := make([]string, len(added))
		for i, id := range added {
			u := byID[id]
			names[i] = u.Name
			ch.updates[id] = ReasonAdded
			if err := audit(ctx, tx, convID, messenger.AuditInvited, &u, nil); err != nil {
				return err
			}
		}
		return ch.notice(ctx, tx, convID, messenger.SystemEvent{Type: messenger.EventInvited, Actor: me.Name, Targets: names})
	})
	if err != nil {
		return messenger.Conversation{}, err
	}
	return s.Conversation(ctx, me, convID)
}

// RemoveMember ends another member's membership of a group; admins only. From then on the
// removed user gets not found from every route of it and none of its events.
func (s *Service) RemoveMember(ctx context.Context, me messenger.User, convID int64, sub string) error {
	return s.groupChange(ctx, me, convID, func(tx *store.Tx, conv messenger.Conversation, ch *change) error {
		target, err := adminOver(conv, me, sub)
		if err != nil {
			return err
		}
		if target.ID == me.ID {
			return messenger.Errorf(messenger.EINVALID, "error.group.remove_self")
		}
		// The notice follows the change: the database checks it says what was done.
		if err := tx.RemoveMember(ctx, convID, target.ID); err != nil {
			return err
		}
		if err := ch.notice(ctx, tx, convID, messenger.SystemEvent{Type: messenger.EventRemoved, Actor: me.Name, Targets: []string{target.Name}}); err != nil {
			return err
		}
		ch.updates[target.ID] = ReasonRemoved
		return audit(ctx, tx, convID, messenger.AuditRemoved, &target.User, nil)
	})
}

// SetMemberRole makes a member admin or member again; admins only. A group keeps at least
// one admin.
func (s *Service) SetMemberRole(ctx context.Context, me messenger.User, convID int64, sub, role string) error {
	if role != messenger.ConvAdmin && role != messenger.ConvMember {
		return messenger.Errorf(messenger.EINVALID, "error.role")
	}
	return s.groupChange(ctx, me, convID, func(tx *store.Tx, conv messenger.Conversation, ch *change) error {
		target, err := adminOver(conv, me, sub)
		if err != nil {
			return err
		}
		if target.ConvRole == role {
			return nil
		}
		if role == messenger.ConvMember && countAdmins(conv) == 1 {
			return messenger.Errorf(messenger.ECONFLICT, "error.group.last_admin")
		}
		if err := tx.SetMemberRole(ctx, convID, target.ID, role); err != nil {
			return err
		}
		typ := messenger.EventAdminGranted
		if role == messenger.ConvMember {
			typ = messenger.EventAdminRevoked
		}
		if err := audit(ctx, tx, convID, messenger.AuditRoleChanged, &target.User, map[string]any{"from": target.ConvRole, "to": role}); err != nil {
			return err
		}
		return ch.notice(ctx, tx, convID, messenger.SystemEvent{Type: typ, Actor: me.Name, Targets: []string{target.Name}})
	})
}

// Rename gives a group a new title; admins only.
func (s *Service) Rename(ctx context.Context, me messenger.User, convID int64, title string) (messenger.Conversation, error) {
	title, err := messenger.CleanTitle(title)
	if err != nil {
		return messenger.Conversation{}, err
	}
	if title == "" {
		return messenger.Conversation{}, messenger.Errorf(messenger.EINVALID, "error.title.required")
	}
	err = s.groupChange(ctx, me, convID, func(tx *store.Tx, conv messenger.Conversation, ch *change) error {
		if err := requireAdmin(conv, me); err != nil {
			return err
		}
		if conv.Title == title {
			return nil
		}
		if err := tx.Rename(ctx, convID, title); err != nil {
			return err
		}
		for _, p := range conv.Participants {
			ch.updates[p.ID] = ReasonRenamed
		}
		if err := audit(ctx, tx, convID, messenger.AuditRenamed, nil, map[string]any{"from": conv.Title, "to": title}); err != nil {
			return err
		}
		return ch.notice(ctx, tx, convID, messenger.SystemEvent{Type: messenger.EventRenamed, Actor: me.Name, Title: title})
	})
	if err != nil {
		return messenger.Conversation{}, err
	}
	return s.Conversation(ctx, me, convID)
}

// LeaveConversation ends me's membership of a conversation. The others see a notice in
// the thread; me's other tabs drop the conversation from their list. When the last admin
// of a group leaves, the longest-standing member becomes admin.
func (s *Service) LeaveConversation(ctx context.Context, me messenger.User, convID int64) error {
	return s.groupChange(ctx, me, convID, func(tx *store.Tx, conv messenger.Conversation, ch *change) error {
		if conv.Kind == messenger.KindAnnouncement {
			return messenger.Errorf(messenger.EFORBIDDEN, "error.announcement.leave")
		}
		// The notices follow the change: the database checks they say what was done.
		var passed *messenger.Participant
		if conv.Kind == messenger.KindGroup {
			heir, err := tx.PassAdmin(ctx, convID)
			if err != nil {
				return err
			}
			if p, ok := conv.Member(heir); ok {
				if err := audit(ctx, tx, convID, messenger.AuditRoleChanged, &p.User, map[string]any{"from": p.ConvRole, "to": messenger.ConvAdmin, "automatic": true}); err != nil {
					return err
				}
				passed = &p
			}
		}
		if err := audit(ctx, tx, convID, messenger.AuditLeft, nil, nil); err != nil {
			return err
		}
		if err := tx.Leave(ctx, convID); err != nil {
			return err
		}
		ch.updates[me.ID] = ReasonLeft
		if err := ch.notice(ctx, tx, convID, messenger.SystemEvent{Type: messenger.EventLeft, Actor: me.Name}); err != nil {
			return err
		}
		if passed != nil {
			return ch.notice(ctx, tx, convID, messenger.SystemEvent{Type: messenger.EventAdminPassed, Actor: me.Name, Targets: []string{passed.Name}})
		}
		return nil
	})
}

// adminOver answers the member of conv whose portal id is sub, when me is an admin of it.
func adminOver(conv messenger.Conversation, me messenger.User, sub string) (messenger.Participant, error) {
	if err := requireAdmin(conv, me); err != nil {
		return messenger.Participant{}, err
	}
	return memberBySub(conv, sub)
}

func memberBySub(conv messenger.Conversation, sub string) (messenger.Participant, error) {
	for _, p := range conv.Participants {
		if p.Sub == sub {
			return p, nil
		}
	}
	return messenger.Participant{}, messenger.Errorf(messenger.ENOTFOUND, "error.member.not_found")
}

func countAdmins(conv messenger.Conversation) int {
	n := 0
	for _, p := range conv.Participants {
		if p.ConvRole == messenger.ConvAdmin {
			n++
		}
	}
	return n
}
