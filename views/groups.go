package views

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/dreamseed/messenger"
)

// ConvTitle answers what to call a conversation for viewer in the page's language.
func ConvTitle(ctx context.Context, c messenger.Conversation, viewerID int64) string {
	if c.Kind == messenger.KindAnnouncement && c.Title == "" {
		return T(ctx, "announcement.title")
	}
	return c.DisplayTitle(viewerID, Locale(ctx))
}

// MessageText answers the text of a message as the viewer reads it: a system message is
// worded in the page's language from what it records, a file message by what it carries.
func MessageText(ctx context.Context, m messenger.Message) string {
	if m.Kind == messenger.MessageFile {
		return FilePreview(ctx, m)
	}
	if m.Kind != messenger.MessageSystem || m.Event == nil {
		return m.Body
	}
	return SystemText(ctx, *m.Event)
}

// SystemText words a system event in the page's language.
func SystemText(ctx context.Context, e messenger.SystemEvent) string {
	return e.Text(Locale(ctx))
}

// AuditText words an audit entry in the page's language.
func AuditText(ctx context.Context, e messenger.AuditEntry) string {
	target := ""
	if e.Target != nil {
		target = e.Target.Name
	}
	detail := func(k string) string {
		switch v := e.Details[k].(type) {
		case nil:
		case float64: // JSON numbers: 1000000, not 1e+06
			return strconv.FormatFloat(v, 'f', -1, 64)
		default:
			return fmt.Sprint(v)
		}
		return ""
	}
	switch e.Action {
	case messenger.AuditCreated:
		if detail("kind") == messenger.KindDirect {
			return Tf(ctx, "audit.created.direct")
		}
		return Tf(ctx, "audit.created", detail("title"))
	case messenger.AuditInvited:
		return Tf(ctx, "audit.invited", target)
	case messenger.AuditRemoved:
		return Tf(ctx, "audit.removed", target)
	case messenger.AuditLeft:
		return Tf(ctx, "audit.left")
	case messenger.AuditRenamed:
		return Tf(ctx, "audit.renamed", detail("from"), detail("to"))
	case messenger.AuditRoleChanged:
		key := "audit.role.member"
		if detail("to") == messenger.ConvAdmin {
			key = "audit.role.admin"
		}
		if detail("automatic") == "true" {
			key += ".auto"
		}
		return Tf(ctx, key, target)
	case messenger.AuditZoneJoined:
		return Tf(ctx, "audit.zone_joined")
	case messenger.AuditZoneLeft:
		return Tf(ctx, "audit.zone_left")
	case messenger.AuditAnnouncement:
		return Tf(ctx, "audit.announcement", detail("seq"))
	}
	return e.Action
}

// AuditTime is a full date and time in Seoul, for logs.
func AuditTime(ctx context.Context, t time.Time) string {
	s := t.In(Seoul)
	return fmt.Sprintf("%d. %d. %d. %s", s.Year(), s.Month(), s.Day(), ClockTime(ctx, t))
}
