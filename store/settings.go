package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"

	"github.com/dreamseed/messenger"
)

// UserSettings is a user's notification settings row as stored (sql/014). QuietCustom
// false: the school's default for the user's role applies and QuietFrom/QuietTo are "";
// true: QuietFrom/QuietTo ("21:00"), or none when both are "". No row reads as the
// defaults: push and email on, Asia/Seoul.
type UserSettings struct {
	Push        bool
	Email       bool
	QuietCustom bool
	QuietFrom   string
	QuietTo     string
	TimeZone    string
}

// DefaultTimeZone is a user's zone until they choose one (the column's default).
const DefaultTimeZone = "Asia/Seoul"

// DefaultUserSettings is what a user without a settings row has.
func DefaultUserSettings() UserSettings {
	return UserSettings{Push: true, Email: true, TimeZone: DefaultTimeZone}
}

// MySettings answers the transaction user's settings (the defaults when never saved).
func (tx *Tx) MySettings(ctx context.Context) (UserSettings, error) {
	s := DefaultUserSettings()
	var from, to sql.NullString
	err := tx.tx.QueryRowContext(ctx,
		`SELECT push, email, quiet_custom, to_char(quiet_from, 'HH24:MI'), to_char(quiet_to, 'HH24:MI'), time_zone
		   FROM user_settings WHERE user_id = $1`, tx.id.UserID).
		Scan(&s.Push, &s.Email, &s.QuietCustom, &from, &to, &s.TimeZone)
	if errors.Is(err, sql.ErrNoRows) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("read settings: %w", err)
	}
	s.QuietFrom, s.QuietTo = from.String, to.String
	return s, nil
}

// SaveMySettings stores the transaction user's settings, as the application checked them.
func (tx *Tx) SaveMySettings(ctx context.Context, s UserSettings) error {
	_, err := tx.tx.ExecContext(ctx,
		`INSERT INTO user_settings AS s (user_id, org_id, push, email, quiet_custom, quiet_from, quiet_to, time_zone, updated_at)
		 VALUES ($1, $2, $3, $4, $5, nullif($6, '')::time, nullif($7, '')::time, $8, now())
		 ON CONFLICT (user_id) DO UPDATE
		    SET push = EXCLUDED.push, email = EXCLUDED.email, quiet_custom = EXCLUDED.quiet_custom,
		        quiet_from = EXCLUDED.quiet_from, quiet_to = EXCLUDED.quiet_to, time_zone = EXCLUDED.time_zone,
		        updated_at = now()`,
		tx.id.UserID, tx.id.OrgID, s.Push, s.Email, s.QuietCustom, s.QuietFrom, s.QuietTo, s.TimeZone)
	if err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	return nil
}

// Mute is a member's mute of a conversation: none (zero), until a time, or forever.
type Mute struct {
	Until   time.Time // zero when not muted until a time
	Forever bool
}

// Active reports whether the mute holds at now.
func (m Mute) Active(now time.Time) bool {
	return m.Forever || (!m.Until.IsZero() && m.Until.After(now))
}

// MemberSettings is the transaction user's notification view of one conversation.
type MemberSettings struct {
	Mute     Mute
	Keywords []string
}

// muteColumns reads conversation_participants.muted_until without scanning 'infinity'
// (which lib/pq cannot): the finite time, and whether it is forever.
const muteColumns = `nullif(p.muted_until, 'infinity'), coalesce(p.muted_until = 'infinity', false)`

func scanMute(until sql.NullTime, forever bool) Mute {
	if forever {
		return Mute{Forever: true}
	}
	if until.Valid {
		return Mute{Until: until.Time}
	}
	return Mute{}
}

// MemberSettings answers the transaction user's mute and keywords in a conversation they
// are an active member of; any other conversation is not found.
func (tx *Tx) MemberSettings(ctx context.Context, convID int64) (MemberSettings, error) {
	var ms MemberSettings
	var until sql.NullTime
	var forever bool
	err := tx.tx.QueryRowContext(ctx,
		`SELECT `+muteColumns+`, p.keywords FROM conversation_participants p
		  WHERE p.conversation_id = $1 AND p.user_id = $2 AND p.left_at IS NULL`, convID, tx.id.UserID).
		Scan(&until, &forever, pq.Array(&ms.Keywords))
	if err != nil {
		return ms, notFound(err, "error.conversation.not_found")
	}
	ms.Mute = scanMute(until, forever)
	return ms, nil
}

// SaveMemberSettings stores the transaction user's mute and keywords in a conversation they
// are an active member of (keywords as the application cleaned them).
func (tx *Tx) SaveMemberSettings(ctx context.Context, convID int64, ms MemberSettings) error {
	var until any
	switch {
	case ms.Mute.Forever:
		until = "infinity"
	case !ms.Mute.Until.IsZero():
		until = ms.Mute.Until.UTC().Format(time.RFC3339Nano)
	}
	if ms.Keywords == nil {
		ms.Keywords = []string{}
	}
	res, err := tx.tx.ExecContext(ctx,
		`UPDATE conversation_participants SET muted_until = $3::timestamptz, keywords = $4
		  WHERE conversation_id = $1 AND user_id = $2 AND left_at IS NULL`,
		convID, tx.id.UserID, until, pq.Array(ms.Keywords))
	if err != nil {
		return fmt.Errorf("save conversation settings: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return messenger.Errorf(messenger.ENOTFOUND, "error.conversation.not_found")
	}
	return nil
}

// PartnerQuiet is the other member of a direct conversation, as far as their quiet hours go.
type PartnerQuiet struct {
	UserID   int64
	Role     string
	Settings UserSettings // Push and Email are not told
}

// PartnerQuietHours answers the other member's quiet-hour settings in a direct
// conversation the transaction user is an active member of; ok false for a group, an
// announcement, or a partner who left. Another conversation is not found.
func (tx *Tx) PartnerQuietHours(ctx context.Context, convID int64) (p PartnerQuiet, ok bool, err error) {
	var from, to sql.NullString
	err = tx.tx.QueryRowContext(ctx,
		`SELECT user_id, role, quiet_custom, to_char(quiet_from, 'HH24:MI'), to_char(quiet_to, 'HH24:MI'), time_zone
		   FROM app_partner_quiet_hours($1)`, convID).
		Scan(&p.UserID, &p.Role, &p.Settings.QuietCustom, &from, &to, &p.Settings.TimeZone)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return p, false, nil
	case wallRefused(err):
		return p, false, messenger.Errorf(messenger.ENOTFOUND, "error.conversation.not_found")
	case err != nil:
		return p, false, fmt.Errorf("partner quiet hours: %w", err)
	}
	p.Settings.QuietFrom, p.Settings.QuietTo = from.String, to.String
	return p, true, nil
}

// MemberNotify is one active member's notification view of a conversation, for the push
// job: who they are, how far they read, their mute, keywords and settings.
type MemberNotify struct {
	UserID      int64
	Role        string
	Locale      string
	LastReadSeq int64
	Mute        Mute
	Keywords    []string
	Settings    UserSettings
}

// NotifyMembers answers every active member of a conversation with their notification
// view, through the app_notify_members gate: acting as nobody only (a job; inside a user's
// transaction the gate refuses).
func (tx *Tx) NotifyMembers(ctx context.Context, convID int64) ([]MemberNotify, error) {
	rows, err := tx.tx.QueryContext(ctx,
		`SELECT user_id, role, locale, last_read_seq, nullif(muted_until, 'infinity'),
		        coalesce(muted_until = 'infinity', false), keywords, push, email, quiet_custom,
		        to_char(quiet_from, 'HH24:MI'), to_char(quiet_to, 'HH24:MI'), time_zone
		   FROM app_notify_members($1)`, convID)
	if err != nil {
		return nil, fmt.Errorf("notify members: %w", err)
	}
	defer rows.Close()
	var out []MemberNotify
	for rows.Next() {
		var m MemberNotify
		var until sql.NullTime
		var forever bool
		var from, to sql.NullString
		if err := rows.Scan(&m.UserID, &m.Role, &m.Locale, &m.LastReadSeq, &until, &forever, pq.Array(&m.Keywords),
			&m.Settings.Push, &m.Settings.Email, &m.Settings.QuietCustom, &from, &to, &m.Settings.TimeZone); err != nil {
			return nil, err
		}
		m.Mute = scanMute(until, forever)
		m.Settings.QuietFrom, m.Settings.QuietTo = from.String, to.String
		out = append(out, m)
	}
	return out, rows.Err()
}
