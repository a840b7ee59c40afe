package handlers

import (
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"net/http"
	"os"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/views"
)

// uploadMemory is how much of an upload's parts is kept in memory: bigger parts go to
// temporary files as they arrive, so memory stays flat however many uploads run at once.
const uploadMemory = 64 << 10

// uploadBodyLimit bounds an upload's body: every file at its largest, and a MiB for the
// fields and the multipart framing.
func (s *Server) uploadBodyLimit() int64 {
	return int64(s.cfg.MaxFilesPerUpload)*s.cfg.MaxUploadBytes + 1<<20
}

// fileUpload receives files from the composer. app.js (XMLHttpRequest, for its progress)
// gets 202 and the pending bubble, or 200 and the same bubble when the client_msg_id was
// sent before (a retry: nothing new is stored). A plain form post is redirected back to
// the thread, or shown it again with what was wrong.
func (s *Server) fileUpload(c *echo.Context) error {
	ctx, me, convID, err := conversationRequest(c)
	if err != nil {
		return err
	}
	up, created, err := s.receiveUpload(c, me, convID)
	if !isHTMX(c) {
		switch code := messenger.ErrorCode(err); {
		case err == nil:
			target := fmt.Sprintf("/c/%d#upload-%s", convID, up.ID)
			if up.MessageID != 0 {
				target = fmt.Sprintf("/c/%d#msg-%d", convID, up.MessageID)
			}
			return c.Redirect(http.StatusSeeOther, target)
		case code == messenger.ERATELIMITED:
			setRetryAfter(c, err)
			fallthrough
		case err == errNoFiles:
			return s.renderThread(c, me, convID, 0, uploadCaption(c), views.T(ctx, "upload.choose"))
		case code == messenger.EINVALID, code == messenger.ETOOLARGE, code == messenger.EUNSUPPORTED:
			return s.renderThread(c, me, convID, 0, uploadCaption(c), views.UploadProblem(ctx, err, s.cfg.MaxUploadBytes))
		}
		return err
	}
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusAccepted
	}
	return render(c, status, views.PendingUpload(up))
}

// receiveUpload parses an upload's body and hands its files to the use case.
func (s *Server) receiveUpload(c *echo.Context, me messenger.User, convID int64) (messenger.Upload, bool, error) {
	if err := parseUpload(c); err != nil {
		return messenger.Upload{}, false, err
	}
	form := c.Request().MultipartForm
	parts := chosenFiles(form.File["file"])
	switch {
	case len(parts) == 0:
		return messenger.Upload{}, false, errNoFiles
	case len(parts) > s.cfg.MaxFilesPerUpload:
		return messenger.Upload{}, false, messenger.Errorf(messenger.ETOOLARGE, "error.files.too_many", s.cfg.MaxFilesPerUpload)
	}
	files := make([]chat.UploadFile, 0, len(parts))
	for _, fh := range parts {
		if fh.Size > s.cfg.MaxUploadBytes {
			return messenger.Upload{}, false, messenger.Errorf(messenger.ETOOLARGE, "error.file.over_limit")
		}
		f, err := fh.Open()
		if err != nil {
			return messenger.Upload{}, false, err
		}
		defer f.Close()
		files = append(files, chat.UploadFile{Name: fh.Filename, Size: fh.Size, Content: f})
	}
	return s.chat.CreateUpload(c.Request().Context(), me, convID, firstValue(form, "client_msg_id"), uploadCaption(c), files)
}

// errNoFiles is an upload without a file (the plain form's button pressed with none chosen).
var errNoFiles = messenger.Errorf(messenger.EINVALID, "error.file.choose")

// chosenFiles drops the empty part a browser sends for a file input left empty.
func chosenFiles(parts []*multipart.FileHeader) []*multipart.FileHeader {
	out := parts[:0:0]
	for _, fh := range parts {
		if fh.Filename == "" && fh.Size == 0 {
			continue
		}
		out = append(out, fh)
	}
	return out
}

// uploadCaption is the text sent with the files: app.js names it caption; the composer
// form without JavaScript sends its textarea, body.
func uploadCaption(c *echo.Context) string {
	form := c.Request().MultipartForm
	if form == nil {
		return ""
	}
	if v, ok := form.Value["caption"]; ok && len(v) > 0 {
		return v[0]
	}
	return firstValue(form, "body")
}

func firstValue(form *multipart.Form, name string) string {
	if v := form.Value[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// parseUpload parses an upload route's multipart body once (the CSRF check may have done
// it): small parts in memory, the rest in temporary files that limitBody removes.
func parseUpload(c *echo.Context) error {
	req := c.Request()
	if req.MultipartForm != nil {
		return nil
	}
	if mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); mt != "multipart/form-data" {
		return messenger.Errorf(messenger.EUNSUPPORTED, "error.upload.multipart")
	}
	if err := req.ParseMultipartForm(uploadMemory); err != nil {
		if tooLarge(err) {
			return errTooLarge
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return errSlowBody
		}
		return errInvalidForm
	}
	return nil
}

// isUploadRoute reports whether the request is for an upload route.
func (s *Server) isUploadRoute(c *echo.Context) bool {
	ri := c.RouteInfo()
	_, ok := s.uploads[ri.Method+" "+ri.Path]
	return ok
}
