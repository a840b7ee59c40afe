package messenger

import "time"

// The JSON shapes of the API and of live events, as docs/api.md documents them. Users are
// named by their portal id (sub) everywhere.

// APIUser is a user in the API.
type APIUser struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	Online     bool       `json:"online"`
	LastSeenAt *time.Time `json:"last_seen_at"`
}

// APIParticipant is a user in a conversation: "role" is the conversation role
// (admin|member) and the portal role moves to "portal_role".
type APIParticipant struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	PortalRole string     `json:"portal_role"`
	Online     bool       `json:"online"`
	LastSeenAt *time.Time `json:"last_seen_at"`
}

// APIMessage is a message in the API and in message.new events.
type APIMessage struct {
	ID             int64     `json:"id"`
	ConversationID int64     `json:"conversation_id"`
	Seq            int64     `json:"seq"`
	Sender         APIUser   `json:"sender"`
	Kind           string    `json:"kind"`
	Body           string    `json:"body"`
	ClientMsgID    *string   `json:"client_msg_id"`
	CreatedAt      time.Time `json:"created_at"`
	ReadCount      int64     `json:"read_count"`
	// Event says what a system message reports, for clients that word it themselves.
	Event *SystemEvent `json:"event,omitempty"`
	// Files are a file message's attachments; Deleted marks a message its sender deleted.
	Files   []APIFile `json:"files,omitempty"`
	Deleted bool      `json:"deleted,omitempty"`
	// JoinsPrevious: it continues the run of the message before it (same sender, within
	// five minutes, same Seoul day), so a screen shows no name or avatar again.
	JoinsPrevious bool `json:"joins_previous,omitempty"`
}

// APIConversation is a conversation as one user sees it. In the conversation list,
// Participants are a group's first few members (MemberCount says how many there are).
type APIConversation struct {
	ID           int64            `json:"id"`
	Kind         string           `json:"kind"`
	Title        string           `json:"title"`
	Participants []APIParticipant `json:"participants"`
	MemberCount  int64            `json:"member_count"`
	LastSeq      int64            `json:"last_seq"`
	LastMessage  *APIMessage      `json:"last_message"`
	UnreadCount  int64            `json:"unread_count"`
	Muted        bool             `json:"muted"`
	UpdatedAt    time.Time        `json:"updated_at"`
}

// API answers the user's API shape.
func (u User) API() APIUser {
	return APIUser{ID: u.Sub, Name: u.Name, Role: u.Role, Online: u.Online, LastSeenAt: u.LastSeenAt}
}

// API answers the message's API shape.
func (m Message) API() APIMessage {
	out := APIMessage{
		ID: m.ID, ConversationID: m.ConversationID, Seq: m.Seq, Sender: m.Sender.API(),
		Kind: m.Kind, Body: m.Body, ClientMsgID: m.ClientMsgID, CreatedAt: m.CreatedAt.UTC(), ReadCount: m.ReadCount,
		Event: m.Event, Deleted: m.Deleted, JoinsPrevious: m.JoinsPrevious,
	}
	if len(m.Files) > 0 {
		out.Files = apiFiles(m.Files)
	}
	return out
}

// API answers the conversation's API shape as viewer sees it.
func (c Conversation) API(viewerID int64) APIConversation {
	out := APIConversation{
		ID: c.ID, Kind: c.Kind, Title: c.DisplayTitle(viewerID, LangKorean), MemberCount: c.MemberCount, LastSeq: c.LastSeq,
		UnreadCount: c.UnreadCount, Muted: c.Muted, UpdatedAt: c.UpdatedAt.UTC(), Participants: []APIParticipant{},
	}
	if c.LastMessageAt != nil {
		out.UpdatedAt = c.LastMessageAt.UTC()
	}
	for _, p := range c.Participants {
		out.Participants = append(out.Participants, APIParticipant{
			ID: p.Sub, Name: p.Name, Role: p.ConvRole, PortalRole: p.Role, Online: p.Online, LastSeenAt: p.LastSeenAt,
		})
	}
	if c.LastMessage != nil {
		m := c.LastMessage.API()
		out.LastMessage = &m
	}
	return out
}
