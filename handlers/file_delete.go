package handlers

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/views"
)

// fileDelete deletes one of my sent files, or with all=1 every file of its message (the
// menu's "delete"): the message becomes a tombstone for everyone once no file is left.
// app.js gets the row as it is now; a plain form post goes back to the thread.
func (s *Server) fileDelete(c *echo.Context) error {
	ctx, me, id, err := fileRequest(c)
	if err != nil {
		return err
	}
	msg, err := s.chat.DeleteFile(ctx, me, id)
	if err != nil {
		return err
	}
	if c.FormValue("all") == "1" {
		for _, f := range msg.Files {
			if f.State == messenger.FileDeleted || f.ID == id {
				continue
			}
			if msg, err = s.chat.DeleteFile(ctx, me, f.ID); err != nil {
				return err
			}
		}
	}
	if !isHTMX(c) {
		return c.Redirect(http.StatusSeeOther, fmt.Sprintf("/c/%d#msg-%d", msg.ConversationID, msg.ID))
	}
	return render(c, http.StatusOK, views.MessageRow(views.LiveItem(msg, me.Sub)))
}
