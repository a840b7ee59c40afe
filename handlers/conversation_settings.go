package handlers

import (
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger/chat"
)

// conversationSettings changes my mute ("mute": 1h, 8h, forever, off) or my keyword
// alerts ("keywords": one a line) of a conversation from the thread header's plain forms,
// and goes back to the thread (303). Refused keywords show the thread again with the menu
// open and what is wrong.
func (s *Server) conversationSettings(c *echo.Context) error {
	ctx, me, convID, err := conversationRequest(c)
	if err != nil {
		return err
	}
	form := c.Request().PostForm
	if _, ok := form["mute"]; ok {
		m, err := chat.MuteFor(form.Get("mute"), time.Now())
		if err == nil {
			err = s.chat.SetMute(ctx, me, convID, m)
		}
		if err != nil {
			return err
		}
	}
	if _, ok := form["keywords"]; ok {
		ms, err := s.chat.ConversationSettings(ctx, me, convID)
		if err != nil {
			return err
		}
		ms.Keywords = chat.SplitKeywords(form.Get("keywords"))
		if _, err := s.chat.SaveConversationSettings(ctx, me, convID, ms); err != nil {
			problem, ok := settingsProblem(ctx, s.chat.NotifyConfig(), err)
			if !ok {
				return err
			}
			return s.renderThreadNotify(c, me, convID, problem, form.Get("keywords"))
		}
	}
	return c.Redirect(http.StatusSeeOther, fmt.Sprintf("/c/%d", convID))
}
