package messenger

import (
	"context"
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
	// Participants are its active members in the order they joined: all of them, but in
	// the conversation list, which carries a group's first few (store.ListMembers).
	Participants []Participant
	// MemberCount is how many active members it has, listed or not.
	MemberCount int64
	LastMessage *Message
	UnreadCount int64
	// Muted: the viewer muted the conversation (still counted unread, no push, no red badge).
	Muted bool
}

// DisplayTitle answers what to call the conversation for viewer in lang: the title of a
// group, the other person's name in a direct conversation.
func (c Conversation) DisplayTitle(viewerID int64, lang string) string {
	if c.Kind == KindDirect {
		for _, p := range c.Participants {
			if p.ID != viewerID {
				return p.Name
			}
		}
	}
	if c.Kind == KindAnnouncement && c.Title == "" {
		return Text(lang, "announcement.title")
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
	// JoinsPrevious says it continues the run of the message before it (seq one less), by
	// JoinsRun: set by the store wherever a message is read or sent.
	JoinsPrevious bool
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
func (e SystemEvent) Korean() string { return e.Text(LangKorean) }

// systemKeys are the words of each system event.
var systemKeys = map[string]string{
	EventInvited:      "system.invited",
	EventRemoved:      "system.removed",
	EventLeft:         "system.left",
	EventRenamed:      "system.renamed",
	EventAdminGranted: "system.admin_granted",
	EventAdminRevoked: "system.admin_revoked",
	EventAdminPassed:  "system.admin_passed",
}

// Text answers the notice in lang ("" for an event it does not know).
func (e SystemEvent) Text(lang string) string {
	key, ok := systemKeys[e.Type]
	if !ok {
		return ""
	}
	targets := strings.Join(e.Targets, "님, ")
	if lang == LangEnglish {
		targets = joinEnglish(e.Targets)
	}
	switch e.Type {
	case EventLeft:
		return Textf(lang, key, e.Actor)
	case EventRenamed:
		return Textf(lang, key, e.Actor, e.Title)
	case EventAdminPassed:
		return Textf(lang, key, targets)
	}
	return Textf(lang, key, e.Actor, targets)
}

// joinEnglish lists names as English does: "A", "A and B", "A, B and C".
func joinEnglish(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
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
