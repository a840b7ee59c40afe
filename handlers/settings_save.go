package handlers

import (
	"net/http"
	"slices"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/chat"
)

// settingsSave stores my settings from the plain form and goes back to the page (303); a
// refused input shows the form again as it was typed, with what is wrong.
func (s *Server) settingsSave(c *echo.Context) error {
	ctx := c.Request().Context()
	me, _ := auth.UserFrom(ctx)
	form := c.Request().PostForm
	in := chat.SettingsInput{
		Push: checked(form["push"]), Email: checked(form["email"]),
		QuietMode: form.Get("quiet_mode"), QuietFrom: form.Get("quiet_from"), QuietTo: form.Get("quiet_to"),
		TimeZone: form.Get("time_zone"),
	}
	if _, err := s.chat.SaveMySettings(ctx, me, in); err != nil {
		cfg := s.chat.NotifyConfig()
		problem, ok := settingsProblem(ctx, cfg, err)
		if !ok {
			return err
		}
		p := settingsProps(cfg, me, chat.Settings{Push: in.Push, Email: in.Email, TimeZone: in.TimeZone})
		p.QuietMode, p.QuietFrom, p.QuietTo, p.Error = in.QuietMode, in.QuietFrom, in.QuietTo, problem
		return s.renderSettings(c, me, http.StatusUnprocessableEntity, p)
	}
	return c.Redirect(http.StatusSeeOther, "/settings?saved=1")
}

// checked reads a checkbox that follows a hidden "0" of the same name: on when "1" was sent.
func checked(values []string) bool { return slices.Contains(values, "1") }
