package handlers

import (
	"time"

	"github.com/dreamseed/messenger"
)

// The JSON shapes of the API, as CONTRACT.md defines them. Users are named by their
// portal id (sub).

type userJSON struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	Online     bool       `json:"online"`
	LastSeenAt *time.Time `json:"last_seen_at"`
}

// participantJSON is a User whose "role" is the conversation role (admin|member); the
// portal role moves to "portal_role".
type participantJSON struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	PortalRole string     `json:"portal_role"`
	Online     bool       `json:"online"`
	LastSeenAt *time.Time `json:"last_seen_at"`
}

type messageJSON struct {
	ID             int64     `json:"id"`
	ConversationID int64     `json:"conversation_id"`
	Seq            int64     `json:"seq"`
	Sender         userJSON  `json:"sender"`
	Kind           string    `json:"kind"`
	Body           string    `json:"body"`
	ClientMsgID    *string   `json:"client_msg_id"`
	CreatedAt      time.Time `json:"created_at"`
	ReadCount      int64     `json:"read_count"`
}

type conversationJSON struct {
	ID           int64             `json:"id"`
	Kind         string            `json:"kind"`
	Title        string            `json:"title"`
	Participants []participantJSON `json:"participants"`
	LastSeq      int64             `json:"last_seq"`
	LastMessage  *messageJSON      `json:"last_message"`
	UnreadCount  int64             `json:"unread_count"`
	UpdatedAt    time.Time         `json:"updated_at"`
}

func toUserJSON(u messenger.User) userJSON {
	return userJSON{ID: u.Sub, Name: u.Name, Role: u.Role, LastSeenAt: u.LastSeenAt}
}

func toMessageJSON(m messenger.Message) messageJSON {
	return messageJSON{
		ID: m.ID, ConversationID: m.ConversationID, Seq: m.Seq, Sender: toUserJSON(m.Sender),
		Kind: m.Kind, Body: m.Body, ClientMsgID: m.ClientMsgID, CreatedAt: m.CreatedAt.UTC(), ReadCount: m.ReadCount,
	}
}

func toConversationJSON(c messenger.Conversation, viewerID int64) conversationJSON {
	out := conversationJSON{
		ID: c.ID, Kind: c.Kind, Title: c.DisplayTitle(viewerID), LastSeq: c.LastSeq,
		UnreadCount: c.UnreadCount, UpdatedAt: c.UpdatedAt.UTC(), Participants: []participantJSON{},
	}
	if c.LastMessageAt != nil {
		out.UpdatedAt = c.LastMessageAt.UTC()
	}
	for _, p := range c.Participants {
		out.Participants = append(out.Participants, participantJSON{
			ID: p.Sub, Name: p.Name, Role: p.ConvRole, PortalRole: p.Role, LastSeenAt: p.LastSeenAt,
		})
	}
	if c.LastMessage != nil {
		m := toMessageJSON(*c.LastMessage)
		out.LastMessage = &m
	}
	return out
}
