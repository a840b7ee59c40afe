package handlers

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/views"
)

// settingsShow is my notification settings page: beside the list on wide screens, alone
// (a panel with a way back) on phones.
func (s *Server) settingsShow(c *echo.Context) error {
	ctx := c.Request().Context()
	me, _ := auth.UserFrom(ctx)
	set, err := s.chat.MySettings(ctx, me)
	if err != nil {
		return err
	}
	p := settingsProps(s.chat.NotifyConfig(), me, set)
	p.Saved = c.QueryParam("saved") == "1"
	return s.renderSettings(c, me, http.StatusOK, p)
}

// renderSettings renders the settings pane in the application page.
func (s *Server) renderSettings(c *echo.Context, me messenger.User, status int, p views.SettingsProps) error {
	ctx := c.Request().Context()
	page, err := s.chat.Conversations(ctx, me, "", 0)
	if err != nil {
		return err
	}
	unread, err := s.chat.UnreadTotal(ctx, me)
	if err != nil {
		return err
	}
	layout := s.layout(views.T(ctx, "settings.title"))
	layout.UnreadTotal = unread
	p.Devices = s.pushDevicesSection(ctx, me)
	return render(c, status, views.AppPage(views.AppProps{
		Layout:   layout,
		List:     views.ListProps{Me: me, Conversations: page.Conversations, NextCursor: page.NextCursor, Now: time.Now()},
		Settings: &p,
	}))
}

// settingsProps answers the page's view of settings as they apply to me.
func settingsProps(cfg chat.NotifyConfig, me messenger.User, set chat.Settings) views.SettingsProps {
	p := views.SettingsProps{Push: set.Push, Email: set.Email, TimeZone: set.TimeZone, QuietMode: "custom"}
	if q, ok := cfg.QuietDefaults[me.Role]; ok {
		p.RoleDefault = q.String()
	}
	switch {
	case !set.QuietChosen:
		p.QuietMode = "default"
	case set.Quiet == nil:
		p.QuietMode = "off"
	}
	if set.Quiet != nil {
		p.QuietFrom, p.QuietTo = set.Quiet.String()[:5], set.Quiet.String()[6:]
	}
	return p
}

// settingsProblem words a refused settings input in the viewer's language.
func settingsProblem(ctx context.Context, cfg chat.NotifyConfig, err error) (string, bool) {
	switch {
	case errors.Is(err, chat.ErrUnknownZone):
		return views.T(ctx, "settings.zone.invalid"), true
	case errors.Is(err, chat.ErrQuietHours):
		return views.T(ctx, "settings.quiet.invalid"), true
	case errors.Is(err, chat.ErrTooManyKeywords):
		return views.Tf(ctx, "keywords.too_many", cfg.MaxKeywords), true
	case errors.Is(err, chat.ErrKeywordTooLong):
		return views.Tf(ctx, "keywords.too_long", cfg.MaxKeywordChars), true
	case errors.Is(err, chat.ErrKeywordCharacter):
		return views.T(ctx, "keywords.invalid"), true
	case errors.Is(err, chat.ErrMuteChoice):
		return views.T(ctx, "mute.invalid"), true
	}
	return "", false
}

// conversationNotify answers my notification view of a conversation for its header and
// composer: my mute and keywords, and whether a 1:1 partner is in quiet hours now.
func (s *Server) conversationNotify(ctx context.Context, me messenger.User, conv messenger.Conversation) (views.ConversationNotify, error) {
	ms, err := s.chat.ConversationSettings(ctx, me, conv.ID)
	if err != nil {
		return views.ConversationNotify{}, err
	}
	var pq chat.PartnerNotice
	if conv.Kind == messenger.KindDirect {
		if pq, err = s.chat.PartnerQuiet(ctx, me, conv.ID, time.Now()); err != nil {
			return views.ConversationNotify{}, err
		}
	}
	return s.notifyView(me, conv, ms, pq, time.Now()), nil
}

// notifyView is the notification menu of a conversation from my settings there and, in a
// direct conversation, the other member's quiet hours.
func (s *Server) notifyView(me messenger.User, conv messenger.Conversation, ms store.MemberSettings, pq chat.PartnerNotice, now time.Time) views.ConversationNotify {
	cfg := s.chat.NotifyConfig()
	n := views.ConversationNotify{MaxKeywords: cfg.MaxKeywords, MaxKeywordChars: cfg.MaxKeywordChars}
	n.Muted, n.Forever, n.MutedUntil, n.Keywords = ms.Mute.Active(now), ms.Mute.Forever, ms.Mute.Until, ms.Keywords
	if conv.Kind == messenger.KindDirect {
		n.PartnerQuiet, n.PartnerUntil, n.PartnerRole = pq.Quiet, pq.Until, pq.Role
		for _, p := range conv.Participants {
			if p.ID != me.ID {
				n.PartnerName = p.Name
			}
		}
	}
	return n
}
