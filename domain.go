package messenger

import (
	"context"
	"fmt"
	"strings"
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

// Conversation roles.
const (
	ConvAdmin  = "admin"
	ConvMember = "member"
)

// Participant is a user's membership of a conversation.
type Participant struct {
	User
	ConvRole string // admin|member
}

// CanAnnounce reports whether the user may post in their zone's announcements: the
// portal's admins and teachers.
func (u User) CanAnnounce() bool { return u.Role == RoleAdmin || u.Role == RoleTeacher }

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
	// Muted: the viewer muted the conversation (still counted unread, no push, no red badge).
	Muted bool
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
	if c.Kind == KindAnnouncement && c.Title == "" {
		return "학교 공지"
	}
	return c.Title
}

// Member answers the active membership of userID, if any.
func (c Conversation) Member(userID int64) (Participant, bool) {
	for _, p := range c.Participants {
		if p.ID == userID {
			return p, true
		}
	}
	return Participant{}, false
}

// IsAdmin reports whether userID is an admin of the group.
func (c Conversation) IsAdmin(userID int64) bool {
	p, ok := c.Member(userID)
	return ok && p.ConvRole == ConvAdmin
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
	Event          *SystemEvent // what a system message says happened
	Files          []File       // a file message's attachments, in the order sent
	Deleted        bool         // its sender deleted it: a tombstone
}

// System events: what a system message reports.
const (
	EventInvited      = "invited"       // Actor invited Targets
	EventRemoved      = "removed"       // Actor removed Targets[0]
	EventLeft         = "left"          // Actor left
	EventRenamed      = "renamed"       // Actor renamed the group to Title
	EventAdminGranted = "admin_granted" // Actor made Targets[0] an admin
	EventAdminRevoked = "admin_revoked" // Actor made Targets[0] a member again
	EventAdminPassed  = "admin_passed"  // Targets[0] became admin when the last admin left
)

// SystemEvent is the data of a system message: names are kept as they were at the time,
// so the notice reads the same however the people are called later.
type SystemEvent struct {
	Type    string   `json:"type"`
	Actor   string   `json:"actor"`
	Targets []string `json:"targets,omitempty"`
	Title   string   `json:"title,omitempty"`
}

// Korean answers the notice in Korean, as stored in the message body for API clients.
func (e SystemEvent) Korean() string {
	targets := strings.Join(e.Targets, "님, ")
	switch e.Type {
	case EventInvited:
		return fmt.Sprintf("%s님이 %s님을 초대했습니다.", e.Actor, targets)
	case EventRemoved:
		return fmt.Sprintf("%s님이 %s님을 내보냈습니다.", e.Actor, targets)
	case EventLeft:
		return fmt.Sprintf("%s님이 나갔습니다.", e.Actor)
	case EventRenamed:
		return fmt.Sprintf("%s님이 그룹 이름을 '%s'(으)로 바꿨습니다.", e.Actor, e.Title)
	case EventAdminGranted:
		return fmt.Sprintf("%s님이 %s님을 방장으로 지정했습니다.", e.Actor, targets)
	case EventAdminRevoked:
		return fmt.Sprintf("%s님이 %s님의 방장 권한을 해제했습니다.", e.Actor, targets)
	case EventAdminPassed:
		return fmt.Sprintf("%s님이 방장이 되었습니다.", targets)
	}
	return ""
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
