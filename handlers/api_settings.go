package handlers

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/store"
)

// apiQuietHours is {"from":"21:00","to":"08:00"}.
type apiQuietHours struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// apiSettings is GET/PUT /api/v1/me/settings. quiet_hours null: none; absent on PUT: the
// school's default for my role. The answer adds quiet_hours_default, whether the window is
// that default.
type apiSettings struct {
	Push              *bool          `json:"push"`
	Email             *bool          `json:"email"`
	QuietHours        *apiQuietHours `json:"quiet_hours"`
	QuietHoursDefault bool           `json:"quiet_hours_default"`
	TimeZone          string         `json:"time_zone"`
}

func apiSettingsOf(set chat.Settings) apiSettings {
	out := apiSettings{Push: &set.Push, Email: &set.Email, QuietHoursDefault: set.QuietDefault, TimeZone: set.TimeZone}
	if set.Quiet != nil {
		q := set.Quiet.String()
		out.QuietHours = &apiQuietHours{From: q[:5], To: q[6:]}
	}
	return out
}

// apiMySettings answers my notification settings as they apply.
func (s *Server) apiMySettings(c *echo.Context) error {
	ctx := c.Request().Context()
	me, _ := auth.UserFrom(ctx)
	set, err := s.chat.MySettings(ctx, me)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apiSettingsOf(set))
}

// apiMySettingsSave replaces my notification settings: push and email are required
// booleans; quiet_hours an object, null (off) or absent (the role's default); time_zone an
// IANA name (absent: Asia/Seoul).
func (s *Server) apiMySettingsSave(c *echo.Context) error {
	ctx := c.Request().Context()
	me, _ := auth.UserFrom(ctx)
	var raw struct {
		Push       *bool           `json:"push"`
		Email      *bool           `json:"email"`
		QuietHours json.RawMessage `json:"quiet_hours"`
		TimeZone   *string         `json:"time_zone"`
	}
	if err := decodeJSON(c, &raw); err != nil {
		return err
	}
	if raw.Push == nil || raw.Email == nil {
		return messenger.Errorf(messenger.EINVALID, "error.settings.booleans")
	}
	in := chat.SettingsInput{Push: *raw.Push, Email: *raw.Email, QuietMode: "default"}
	if raw.TimeZone != nil {
		if *raw.TimeZone == "" {
			return chat.ErrUnknownZone
		}
		in.TimeZone = *raw.TimeZone
	}
	switch string(raw.QuietHours) {
	case "":
	case "null":
		in.QuietMode = "off"
	default:
		var q apiQuietHours
		if err := json.Unmarshal(raw.QuietHours, &q); err != nil {
			return messenger.Errorf(messenger.EINVALID, "error.settings.quiet_hours")
		}
		in.QuietMode, in.QuietFrom, in.QuietTo = "custom", q.From, q.To
	}
	set, err := s.chat.SaveMySettings(ctx, me, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apiSettingsOf(set))
}

// apiConversationSettingsBody is GET/PUT /api/v1/conversations/{id}/settings.
type apiConversationSettingsBody struct {
	MutedUntil any      `json:"muted_until"` // RFC 3339 time, "forever" or null
	Keywords   []string `json:"keywords"`
}

func apiConversationSettingsOf(ms store.MemberSettings) apiConversationSettingsBody {
	out := apiConversationSettingsBody{Keywords: ms.Keywords}
	if out.Keywords == nil {
		out.Keywords = []string{}
	}
	switch {
	case ms.Mute.Forever:
		out.MutedUntil = "forever"
	case ms.Mute.Active(time.Now()):
		out.MutedUntil = ms.Mute.Until.UTC().Format(time.RFC3339)
	}
	return out
}

// apiConversationSettings answers my mute and keywords in a conversation I am in.
func (s *Server) apiConversationSettings(c *echo.Context) error {
	ctx, me, convID, err := conversationRequest(c)
	if err != nil {
		return err
	}
	ms, err := s.chat.ConversationSettings(ctx, me, convID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apiConversationSettingsOf(ms))
}

// apiConversationSettingsSave replaces my mute and keywords in a conversation I am in; a
// field left out keeps its value.
func (s *Server) apiConversationSettingsSave(c *echo.Context) error {
	ctx, me, convID, err := conversationRequest(c)
	if err != nil {
		return err
	}
	var raw struct {
		MutedUntil json.RawMessage `json:"muted_until"`
		Keywords   *[]string       `json:"keywords"`
	}
	if err := decodeJSON(c, &raw); err != nil {
		return err
	}
	ms, err := s.chat.ConversationSettings(ctx, me, convID)
	if err != nil {
		return err
	}
	if raw.MutedUntil != nil {
		if ms.Mute, err = parseMutedUntil(raw.MutedUntil); err != nil {
			return err
		}
	}
	if raw.Keywords != nil {
		ms.Keywords = *raw.Keywords
	}
	ms, err = s.chat.SaveConversationSettings(ctx, me, convID, ms)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apiConversationSettingsOf(ms))
}

// parseMutedUntil reads null (not muted), "forever", or an RFC 3339 time (past: not muted).
func parseMutedUntil(raw json.RawMessage) (store.Mute, error) {
	if string(raw) == "null" {
		return store.Mute{}, nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return store.Mute{}, chat.ErrMutedUntil
	}
	if v == "forever" {
		return store.Mute{Forever: true}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil || t.Year() > 9999 {
		return store.Mute{}, chat.ErrMutedUntil
	}
	return store.Mute{Until: t}, nil
}
