package chat

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // IANA zones even where the system has none
	"unicode"
	"unicode/utf8"

	"github.com/lib/pq"
	"golang.org/x/text/unicode/norm"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/store"
)

// QuietHours is a daily window, in minutes after midnight, in which no push is sent.
// From > To wraps midnight (21:00-08:00); From == To is no window.
type QuietHours struct {
	From, To int
}

// String answers the window as "21:00-08:00".
func (q QuietHours) String() string { return clock(q.From) + "-" + clock(q.To) }

func clock(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }

// ParseClock reads "HH:MM" (24-hour) as minutes after midnight.
func ParseClock(s string) (int, bool) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, false
	}
	return t.Hour()*60 + t.Minute(), true
}

// ParseQuietHours reads "21:00-08:00"; "" or "off" is none (nil).
func ParseQuietHours(s string) (*QuietHours, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "off") {
		return nil, nil
	}
	from, to, ok := strings.Cut(s, "-")
	f, ok1 := ParseClock(from)
	t, ok2 := ParseClock(to)
	if !ok || !ok1 || !ok2 || f == t {
		return nil, fmt.Errorf("quiet hours %q: want HH:MM-HH:MM with two different times", s)
	}
	return &QuietHours{From: f, To: t}, nil
}

// NotifyConfig is what the school decides about notifications (cmd/messenger reads it
// from the environment).
type NotifyConfig struct {
	// QuietDefaults are the quiet hours of a role (messenger.RoleTeacher, ...) for users
	// who never chose their own (MESSENGER_QUIET_HOURS_TEACHER="21:00-08:00").
	QuietDefaults map[string]QuietHours
	// MaxKeywords and MaxKeywordChars cap a member's keyword alerts per conversation
	// (MESSENGER_MAX_KEYWORDS, MESSENGER_MAX_KEYWORD_CHARS; the database allows 100 and 100).
	MaxKeywords, MaxKeywordChars int
}

// KeywordCeiling is the database's own cap on keywords (count and characters).
const KeywordCeiling = 100

// DefaultNotifyConfig: teachers' quiet hours 21:00-08:00, 50 keywords of 50 characters.
func DefaultNotifyConfig() NotifyConfig {
	return NotifyConfig{
		QuietDefaults: map[string]QuietHours{messenger.RoleTeacher: {From: 21 * 60, To: 8 * 60}},
		MaxKeywords:   50, MaxKeywordChars: 50,
	}
}

// SetNotifyConfig sets the school's notification rules; before it, the defaults hold.
func (s *Service) SetNotifyConfig(c NotifyConfig) { s.notify = &c }

// NotifyConfig answers the school's notification rules in force.
func (s *Service) NotifyConfig() NotifyConfig {
	if s.notify == nil {
		return DefaultNotifyConfig()
	}
	return *s.notify
}

// Settings are a user's notification settings as they apply: quiet hours resolved from the
// school's role default when the user chose none.
type Settings struct {
	Push  bool
	Email bool
	// Quiet is the window that applies (nil: none). QuietDefault: it is the role's default
	// (the user never chose); QuietChosen: the user chose (Quiet nil: they turned it off).
	Quiet        *QuietHours
	QuietDefault bool
	QuietChosen  bool
	TimeZone     string
}

// Effective answers the settings that apply to a user of role with stored settings us.
func (c NotifyConfig) Effective(role string, us store.UserSettings) Settings {
	out := Settings{Push: us.Push, Email: us.Email, TimeZone: us.TimeZone, QuietChosen: us.QuietCustom}
	if out.TimeZone == "" {
		out.TimeZone = store.DefaultTimeZone
	}
	if !us.QuietCustom {
		if q, ok := c.QuietDefaults[role]; ok {
			out.Quiet, out.QuietDefault = &q, true
		}
		return out
	}
	f, ok1 := ParseClock(us.QuietFrom)
	t, ok2 := ParseClock(us.QuietTo)
	if ok1 && ok2 && f != t {
		out.Quiet = &QuietHours{From: f, To: t}
	}
	return out
}

var zones sync.Map // name → *time.Location

// Location answers the zone of a settings' time zone; an unknown one is Asia/Seoul's.
func Location(name string) *time.Location {
	if l, ok := zones.Load(name); ok {
		return l.(*time.Location)
	}
	loc, err := LoadZone(name)
	if err != nil {
		if name == store.DefaultTimeZone {
			return time.FixedZone("KST", 9*3600)
		}
		return Location(store.DefaultTimeZone)
	}
	zones.Store(name, loc)
	return loc
}

var zoneName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_+/-]{0,63}$`)

// LoadZone answers the IANA zone name, refusing what is not one ("Local", paths, "").
func LoadZone(name string) (*time.Location, error) {
	if !zoneName.MatchString(name) || name == "Local" || strings.Contains(name, "..") {
		return nil, ErrUnknownZone
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, ErrUnknownZone
	}
	return loc, nil
}

// InQuietHours reports whether now falls in the settings' quiet hours, in the user's time
// zone, and when they end (zero when not quiet). A window that wraps midnight holds from
// its start to the next day's end; on a day that skips the end time (a DST change), the
// end is the first moment after it.
func InQuietHours(s Settings, now time.Time) (bool, time.Time) {
	if s.Quiet == nil || s.Quiet.From == s.Quiet.To {
		return false, time.Time{}
	}
	local := now.In(Location(s.TimeZone))
	m := local.Hour()*60 + local.Minute()
	q := *s.Quiet
	var quiet bool
	day := 0 // the end is today (0) or tomorrow (1)
	if q.From < q.To {
		quiet = m >= q.From && m < q.To
	} else {
		quiet = m >= q.From || m < q.To
		if m >= q.From {
			day = 1
		}
	}
	if !quiet {
		return false, time.Time{}
	}
	y, mo, d := local.Date()
	return true, time.Date(y, mo, d+day, q.To/60, q.To%60, 0, 0, local.Location())
}

// Errors of settings input, which pages word in the viewer's language (errors.Is).
var (
	ErrUnknownZone      = messenger.Errorf(messenger.EINVALID, "error.time_zone")
	ErrQuietHours       = messenger.Errorf(messenger.EINVALID, "error.quiet_hours")
	ErrTooManyKeywords  = messenger.Errorf(messenger.ETOOLARGE, "error.keyword.too_many")
	ErrKeywordTooLong   = messenger.Errorf(messenger.ETOOLARGE, "error.keyword.too_long")
	ErrKeywordCharacter = messenger.Errorf(messenger.EINVALID, "error.keyword.invalid")
	ErrMuteChoice       = messenger.Errorf(messenger.EINVALID, "error.mute")
	ErrMutedUntil       = messenger.Errorf(messenger.EINVALID, "error.muted_until")
)

// keywordError answers err with the configured caps in its message.
func keywordError(base *messenger.Error, c NotifyConfig) error {
	switch base {
	case ErrTooManyKeywords:
		return &wrapped{base, messenger.Errorf(base.Code, "error.keyword.max", c.MaxKeywords)}
	case ErrKeywordTooLong:
		return &wrapped{base, messenger.Errorf(base.Code, "error.keyword.max_chars", c.MaxKeywordChars)}
	}
	return base
}

// wrapped is a settings error with a message naming its limit; errors.Is finds the base.
type wrapped struct {
	base *messenger.Error
	err  *messenger.Error
}

func (w *wrapped) Error() string { return w.err.Error() }
func (w *wrapped) Unwrap() error { return w.err }
func (w *wrapped) Is(target error) bool {
	t, ok := target.(*messenger.Error)
	return ok && t == w.base
}

// NormalizeText is how keywords and message text are compared: NFC (Korean typed
// decomposed matches composed), lower case (Latin and every other cased script).
func NormalizeText(s string) string { return strings.ToLower(norm.NFC.String(s)) }

// CleanKeywords answers the keywords as stored: each trimmed, normalized (NormalizeText),
// blank ones dropped, duplicates once, in the order given. More than c.MaxKeywords, one
// longer than c.MaxKeywordChars, or one with control or text-direction characters is
// refused: a list is never cut silently.
func CleanKeywords(words []string, c NotifyConfig) ([]string, error) {
	if len(words) > c.MaxKeywords*4+16 { // blanks and duplicates aside, far too many
		return nil, keywordError(ErrTooManyKeywords, c)
	}
	out := []string{}
	for _, w := range words {
		if !utf8.ValidString(w) {
			return nil, ErrKeywordCharacter
		}
		w = NormalizeText(strings.TrimSpace(w))
		if w == "" {
			continue
		}
		if strings.IndexFunc(w, func(r rune) bool {
			return unicode.IsControl(r) || messenger.IsBidiControl(r) || r == '\u2028' || r == '\u2029'
		}) >= 0 {
			return nil, ErrKeywordCharacter
		}
		if utf8.RuneCountInString(w) > c.MaxKeywordChars {
			return nil, keywordError(ErrKeywordTooLong, c)
		}
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	if len(out) > c.MaxKeywords {
		return nil, keywordError(ErrTooManyKeywords, c)
	}
	return out, nil
}

// SplitKeywords reads a form's keyword field: one per line or comma-separated.
func SplitKeywords(field string) []string {
	return strings.FieldsFunc(field, func(r rune) bool { return r == '\n' || r == '\r' || r == ',' })
}

// MatchKeywords reports whether text contains one of keywords (as CleanKeywords stored
// them); no keywords match every message.
func MatchKeywords(keywords []string, text string) bool {
	if len(keywords) == 0 {
		return true
	}
	t := NormalizeText(text)
	for _, k := range keywords {
		if k != "" && strings.Contains(t, k) {
			return true
		}
	}
	return false
}

// MuteFor answers the mute a menu choice means at now: "1h", "8h", "forever" or "off".
func MuteFor(choice string, now time.Time) (store.Mute, error) {
	switch choice {
	case "1h":
		return store.Mute{Until: now.Add(time.Hour)}, nil
	case "8h":
		return store.Mute{Until: now.Add(8 * time.Hour)}, nil
	case "forever":
		return store.Mute{Forever: true}, nil
	case "off", "":
		return store.Mute{}, nil
	}
	return store.Mute{}, ErrMuteChoice
}

// MySettings answers me's notification settings as they apply.
func (s *Service) MySettings(ctx context.Context, me messenger.User) (Settings, error) {
	var us store.UserSettings
	err := s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) (err error) {
		us, err = tx.MySettings(ctx)
		return err
	})
	return s.NotifyConfig().Effective(me.Role, us), err
}

// SettingsInput is a change of my settings. QuietMode: "default" (the school's role
// default), "off", or "custom" with QuietFrom/QuietTo ("21:00").
type SettingsInput struct {
	Push, Email        bool
	QuietMode          string
	QuietFrom, QuietTo string
	TimeZone           string
}

// SaveMySettings checks and stores me's settings, and answers them as they apply.
func (s *Service) SaveMySettings(ctx context.Context, me messenger.User, in SettingsInput) (Settings, error) {
	us := store.UserSettings{Push: in.Push, Email: in.Email, TimeZone: strings.TrimSpace(in.TimeZone)}
	if us.TimeZone == "" {
		us.TimeZone = store.DefaultTimeZone
	}
	if _, err := LoadZone(us.TimeZone); err != nil {
		return Settings{}, err
	}
	switch in.QuietMode {
	case "default", "":
	case "off":
		us.QuietCustom = true
	case "custom":
		f, ok1 := ParseClock(in.QuietFrom)
		t, ok2 := ParseClock(in.QuietTo)
		if !ok1 || !ok2 || f == t {
			return Settings{}, ErrQuietHours
		}
		us.QuietCustom, us.QuietFrom, us.QuietTo = true, clock(f), clock(t)
	default:
		return Settings{}, ErrQuietHours
	}
	err := s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error { return tx.SaveMySettings(ctx, us) })
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "23514" { // a zone Go knows and PostgreSQL does not
		return Settings{}, ErrUnknownZone
	}
	if err != nil {
		return Settings{}, err
	}
	return s.NotifyConfig().Effective(me.Role, us), nil
}

// ConversationSettings answers my mute and keywords in a conversation I am in.
func (s *Service) ConversationSettings(ctx context.Context, me messenger.User, convID int64) (store.MemberSettings, error) {
	var ms store.MemberSettings
	err := s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) (err error) {
		ms, err = tx.MemberSettings(ctx, convID)
		return err
	})
	return ms, err
}

// SaveConversationSettings stores my mute and keywords (cleaned: CleanKeywords) in a
// conversation I am in, and answers them as stored. A mute that has ended is none.
func (s *Service) SaveConversationSettings(ctx context.Context, me messenger.User, convID int64, ms store.MemberSettings) (store.MemberSettings, error) {
	kw, err := CleanKeywords(ms.Keywords, s.NotifyConfig())
	if err != nil {
		return ms, err
	}
	ms.Keywords = kw
	if !ms.Mute.Forever && !ms.Mute.Active(time.Now()) {
		ms.Mute = store.Mute{}
	}
	err = s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error { return tx.SaveMemberSettings(ctx, convID, ms) })
	if err == nil {
		s.settingsChanged(ctx, me, convID)
	}
	return ms, err
}

// settingsChanged tells my other tabs and devices, once stored, that my settings of a
// conversation changed: their list shows the bell-off (or no longer) and the thread's
// header its mute, without a reload.
func (s *Service) settingsChanged(ctx context.Context, me messenger.User, convID int64) {
	s.publish(ctx, []int64{me.ID}, EventConversationUpdated, ConversationUpdate{ConversationID: convID, Reason: ReasonSettings})
}

// SetMute changes only my mute of a conversation (the thread header's menu).
func (s *Service) SetMute(ctx context.Context, me messenger.User, convID int64, m store.Mute) error {
	err := s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error {
		ms, err := tx.MemberSettings(ctx, convID)
		if err != nil {
			return err
		}
		ms.Mute = m
		return tx.SaveMemberSettings(ctx, convID, ms)
	})
	if err == nil {
		s.settingsChanged(ctx, me, convID)
	}
	return err
}

// PartnerNotice is what my composer says about the other member of a 1:1: Quiet while
// they are in quiet hours, with when their notifications resume.
type PartnerNotice struct {
	Quiet bool
	Until time.Time
	Role  string
}

// PartnerQuiet answers whether the other member of a direct conversation I am in is in
// quiet hours at now (the message is delivered; its push waits). Groups and
// announcements answer no notice.
func (s *Service) PartnerQuiet(ctx context.Context, me messenger.User, convID int64, now time.Time) (PartnerNotice, error) {
	var p store.PartnerQuiet
	var ok bool
	err := s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) (err error) {
		p, ok, err = tx.PartnerQuietHours(ctx, convID)
		return err
	})
	if err != nil || !ok {
		return PartnerNotice{}, err
	}
	quiet, until := InQuietHours(s.NotifyConfig().Effective(p.Role, p.Settings), now)
	return PartnerNotice{Quiet: quiet, Until: until, Role: p.Role}, nil
}

// MemberView is one member's notification view of a conversation, for the push job.
type MemberView struct {
	store.MemberNotify
	Settings Settings // as they apply (role default resolved)
}

// Muted reports whether the member muted the conversation at now.
func (m MemberView) Muted(now time.Time) bool { return m.Mute.Active(now) }

// Wants reports whether the member's keywords let a message with this text notify them
// (no keywords: every message).
func (m MemberView) Wants(text string) bool { return MatchKeywords(m.Keywords, text) }

// NotifyMembers answers every active member's notification view of a conversation, acting
// as nobody (a job's call: never with a user's identity).
func (s *Service) NotifyMembers(ctx context.Context, convID int64) ([]MemberView, error) {
	var rows []store.MemberNotify
	err := s.db.InTx(ctx, nobody, func(tx *store.Tx) (err error) {
		rows, err = tx.NotifyMembers(ctx, convID)
		return err
	})
	if err != nil {
		return nil, err
	}
	c := s.NotifyConfig()
	out := make([]MemberView, len(rows))
	for i, r := range rows {
		out[i] = MemberView{MemberNotify: r, Settings: c.Effective(r.Role, r.Settings)}
	}
	return out, nil
}
