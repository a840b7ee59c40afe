package messenger

import (
	"context"
	"time"
)

// Portal roles a user can have, as the portal's token says.
const (
	RoleAdmin   = "admin"
	RoleTeacher = "teacher"
	RoleStudent = "student"
	RoleParent  = "parent"
	RoleStaff   = "staff"
)

// Conversation kinds.
const (
	KindDirect       = "direct"
	KindGroup        = "group"
	KindAnnouncement = "announcement"
)

// Message kinds.
const (
	MessageText   = "text"
	MessageFile   = "file"
	MessageSystem = "system"
)

// MaxMessageLength is the longest message body, in characters.
const MaxMessageLength = 4000

// Identity is who a request acts as: the ids every database transaction is scoped to.
type Identity struct {
	UserID int64
	OrgID  int64
	ZoneID int64 // 0 when the user has no zone
}

// User is a person of an organization, as the portal describes them.
type User struct {
	ID         int64
	Sub        string // portal user id: how the API names users
	OrgID      int64
	ZoneID     int64
	Name       string
	Email      string
	Role       string
	Locale     string
	LastSeenAt *time.Time
	Online     bool // has a live connection now (filled in where it is shown)
}

// Identity answers the identity a request of this user acts as.
func (u User) Identity() Identity {
	return Identity{UserID: u.ID, OrgID: u.OrgID, ZoneID: u.ZoneID}
}

// Participant is a user's membership of a conversation.
type Participant struct {
	User
	ConvRole string // admin|member
}

// Conversation is a direct, group or announcement conversation as one user sees it.
type Conversation struct {
	ID            int64
	Kind          string
	Title         string
	LastSeq       int64
	LastMessageAt *time.Time
	UpdatedAt     time.Time
	Participants  []Participant
	LastMessage   *Message
	UnreadCount   int64
}

// DisplayTitle answers what to call the conversation for viewer: the title of a group, the
// other person's name in a direct conversation.
func (c Conversation) DisplayTitle(viewerID int64) string {
	if c.Kind == KindDirect {
		for _, p := range c.Participants {
			if p.ID != viewerID {
				return p.Name
			}
		}
	}
	return c.Title
}

// Message is one message of a conversation; Seq orders it inside the conversation.
type Message struct {
	ID             int64
	ConversationID int64
	Seq            int64
	Sender         User
	Kind           string
	Body           string
	ClientMsgID    *string
	CreatedAt      time.Time
	ReadCount      int64
}

type requestIDKey struct{}

// WithRequestID answers a context that carries the id of the request it serves, so that
// the audit log and logs can name it.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID answers the id of the request ctx serves ("" outside a request).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
