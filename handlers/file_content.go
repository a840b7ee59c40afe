package handlers

import (
	"net/http"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/upload"
)

// fileContent sends a file's original as a download (pages and API alike): authorized on
// every request by the use case (a member of its conversation, a clean file), named with
// Content-Disposition: attachment, never sniffed or run by the browser. Range and HEAD
// work (http.ServeContent); the browser revalidates it (its ETag is the content's hash).
func (s *Server) fileContent(c *echo.Context) error {
	ctx, me, id, err := fileRequest(c)
	if err != nil {
		return err
	}
	fc, err := s.chat.OpenFile(ctx, me, id)
	if err != nil {
		return err
	}
	defer fc.Body.Close()
	etag := ""
	if fc.File.SHA256 != "" {
		etag = `"` + fc.File.SHA256 + `"`
	}
	return serveFile(c, fc, upload.ContentDisposition(fc.File.Name), "private, no-cache", etag)
}

// fileThumbnail sends a thumbnail of a picture. A thumbnail never changes for its id and
// size, so the browser keeps it for good (privately).
func (s *Server) fileThumbnail(c *echo.Context) error {
	ctx, me, id, err := fileRequest(c)
	if err != nil {
		return err
	}
	size := c.Param("size")
	if messenger.ThumbEdge(size) == 0 {
		return errFileNotFound
	}
	fc, err := s.chat.OpenThumbnail(ctx, me, id, size)
	if err != nil {
		return err
	}
	defer fc.Body.Close()
	return serveFile(c, fc, "inline", "private, max-age=31536000, immutable", `"`+id+"-"+size+`"`)
}

// serveFile writes a stored object with the headers every file response carries: its
// canonical type, nosniff, and a CSP that runs nothing should it be opened as a page.
func serveFile(c *echo.Context, fc chat.FileContent, disposition, cacheControl, etag string) error {
	h := c.Response().Header()
	h.Set("Content-Type", fc.ContentType)
	h.Set("Content-Disposition", disposition)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", cacheControl)
	if etag != "" {
		h.Set("ETag", etag)
	}
	http.ServeContent(c.Response(), c.Request(), "", fc.ModTime, fc.Body)
	return nil
}
