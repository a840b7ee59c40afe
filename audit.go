package messenger

import "time"

// Audit actions: what an audit log entry records.
const (
	AuditCreated      = "conversation.created"
	AuditRenamed      = "conversation.renamed"
	AuditInvited      = "member.invited"
	AuditRemoved      = "member.removed"
	AuditLeft         = "member.left"
	AuditRoleChanged  = "member.role_changed"
	AuditAnnouncement = "announcement.posted"
	AuditZoneJoined   = "member.zone_joined" // a user of the zone joined its announcements (sign-in)
	AuditZoneLeft     = "member.zone_left"   // they moved to another zone
	AuditFileInfected = "file.infected"      // the scanner found something (written by the scan's gate)
	AuditFileDeleted  = "file.deleted"       // a sender deleted a file they sent
)

// AuditEntry is one line of the audit log: who did what to whom, when, from which request.
type AuditEntry struct {
	ID             int64
	ConversationID int64
	Actor          User // ids only when appending
	Action         string
	Target         *User // ids only when appending
	Details        map[string]any
	RequestID      string
	CreatedAt      time.Time
}
