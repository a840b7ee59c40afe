package handlers

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/riverqueue/river"

	"github.com/dreamseed/messenger/chat"
)

// UploadRouteForTest adds POST path to e as an upload route of limit bytes, whose handler
// answers the total size of the files it received: the body limit's exception is tested
// with it until the messenger has upload routes of its own.
func (s *Server) UploadRouteForTest(e *echo.Echo, path string, limit int64) {
	s.upload(e.POST(path, func(c *echo.Context) error {
		// As every route with middleware that signs a request in, replace the request.
		c.SetRequest(c.Request().WithContext(context.WithoutCancel(c.Request().Context())))
		if err := c.Request().ParseMultipartForm(1 << 10); err != nil {
			if tooLarge(err) {
				return errTooLarge
			}
			return err
		}
		var total int64
		for _, files := range c.Request().MultipartForm.File {
			for _, fh := range files {
				f, err := fh.Open()
				if err != nil {
					return err
				}
				n, err := io.Copy(io.Discard, f)
				f.Close()
				if err != nil {
					return err
				}
				total += n
			}
		}
		return c.String(http.StatusOK, fmt.Sprint(total))
	}), limit)
}

// CountSessionChecksForTest has the process's session checker check every interval, and
// counts its lookups (queries); call it before any stream opens.
func (s *Server) CountSessionChecksForTest(every time.Duration) *atomic.Int64 {
	n := new(atomic.Int64)
	lookup := s.sessions.lookup
	s.sessions.every = every
	s.sessions.lookup = func(ctx context.Context, hashes [][]byte) (map[string]time.Time, error) {
		n.Add(1)
		return lookup(ctx, hashes)
	}
	return n
}

// EnableFilesForTest gives the server's chat service its storage, scanner and job queue.
func (s *Server) EnableFilesForTest(f chat.Files) { s.chat.EnableFiles(f) }

// RegisterFileWorkersForTest adds the file jobs of the server's chat service to w.
func (s *Server) RegisterFileWorkersForTest(w *river.Workers) { s.chat.RegisterWorkers(w) }
