package handlers

import (
	"net/http"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger/auth"
)

// apiFileUpload takes files for a conversation (multipart: file×N, caption,
// client_msg_id): 202 with the upload, scanning; 200 with the same upload when the
// client_msg_id was sent before. It becomes a message (message.new) once every file is
// clean; upload.updated tells the uploader how it went.
func (s *Server) apiFileUpload(c *echo.Context) error {
	me, _ := auth.UserFrom(c.Request().Context())
	convID, err := conversationID(c)
	if err != nil {
		return err
	}
	up, created, err := s.receiveUpload(c, me, convID)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusAccepted
	}
	return c.JSON(status, up.API())
}

// apiUploadShow answers one of my uploads.
func (s *Server) apiUploadShow(c *echo.Context) error {
	_, _, up, err := s.uploadOf(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, up.API())
}

// apiFileShow answers a file's metadata.
func (s *Server) apiFileShow(c *echo.Context) error {
	ctx, me, id, err := fileRequest(c)
	if err != nil {
		return err
	}
	f, err := s.chat.File(ctx, me, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, f.API())
}

// apiFileDelete deletes one of my sent files: 204.
func (s *Server) apiFileDelete(c *echo.Context) error {
	ctx, me, id, err := fileRequest(c)
	if err != nil {
		return err
	}
	if _, err := s.chat.DeleteFile(ctx, me, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
