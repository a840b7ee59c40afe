package handlers

import (
	"errors"
	"mime"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
)

var (
	errTooLarge    = messenger.Errorf(messenger.ETOOLARGE, "error.body_too_large")
	errMultipart   = messenger.Errorf(messenger.EUNSUPPORTED, "error.multipart_refused")
	errInvalidForm = messenger.Errorf(messenger.EINVALID, "error.form_invalid")
)

// DefaultUploadReadTimeout is how long an upload's body may take to arrive: 10 MB × the
// files of an upload over a slow phone connection, not forever.
const DefaultUploadReadTimeout = 10 * time.Minute

// errSlowBody is an upload body that did not arrive within UploadReadTimeout: limitBody
// answers it with 408 and closes the connection.
var errSlowBody = errors.New("the body did not arrive in time")

// DefaultBodyReadTimeout is how long a form or JSON body may take to arrive: a client
// that trickles one ties up a connection and a goroutine no longer than this.
const DefaultBodyReadTimeout = 30 * time.Second

// limitBody bounds every request body before anything reads it: MaxBodyBytes for forms
// and JSON, an upload route's own limit on upload routes, the only ones that take
// multipart/form-data. A form is parsed here, so that a body over the limit is a 413
// whatever the handler reads later; such a body must arrive within BodyReadTimeout.
// Runs before any route middleware.
func (s *Server) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		req := c.Request()
		ri := c.RouteInfo()
		limit, upload := s.uploads[ri.Method+" "+ri.Path]
		if !upload {
			limit = s.cfg.MaxBodyBytes
		}
		mediaType, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
		if strings.HasPrefix(mediaType, "multipart/") && !upload {
			return errMultipart
		}
		if req.ContentLength > limit {
			return errTooLarge
		}
		if req.Body == nil || req.Body == http.NoBody {
			return next(c)
		}
		w := http.ResponseWriter(c.Response())
		if resp, err := echo.UnwrapResponse(w); err == nil {
			w = resp.ResponseWriter // so that net/http closes the connection after a 413
		}
		req.Body = http.MaxBytesReader(w, req.Body, limit)
		// Only bodies get a read deadline (an expired one would end a live stream), and it
		// is lifted when the handler is done, before the connection's next request. An
		// upload has its own, longer one: ten megabytes from a phone take a while.
		rc := http.NewResponseController(w)
		slow := false
		timeout := s.cfg.BodyReadTimeout
		if upload {
			timeout = s.cfg.UploadReadTimeout
		}
		if err := rc.SetReadDeadline(time.Now().Add(timeout)); err == nil {
			defer func() {
				if !slow {
					rc.SetReadDeadline(time.Time{})
				}
			}()
		}
		if upload {
			// Handlers replace the request (WithContext) and net/http removes only the
			// temporary files of the request it handed in: the last one's are removed here.
			defer func() {
				if f := c.Request().MultipartForm; f != nil {
					f.RemoveAll()
				}
			}()
			err := next(c)
			if errors.Is(err, errSlowBody) {
				slow = true
				c.Response().Header().Set("Connection", "close")
				return c.NoContent(http.StatusRequestTimeout)
			}
			return err
		}
		if mediaType == "application/x-www-form-urlencoded" {
			if err := req.ParseForm(); err != nil {
				switch {
				case tooLarge(err):
					return errTooLarge
				case errors.Is(err, os.ErrDeadlineExceeded):
					// 408, and the connection closes after it: net/http would otherwise
					// wait for the rest of the body before answering. (The request's
					// context ends with the read, so no page is rendered.)
					slow = true
					c.Response().Header().Set("Connection", "close")
					return c.NoContent(http.StatusRequestTimeout)
				}
				return errInvalidForm
			}
		}
		return next(c)
	}
}

// tooLarge reports whether err comes from reading past a body limit.
func tooLarge(err error) bool {
	var e *http.MaxBytesError
	return errors.As(err, &e)
}

// upload makes route an upload route: it takes multipart/form-data bodies of up to limit
// bytes instead of the form and JSON limit.
func (s *Server) upload(route echo.RouteInfo, limit int64) {
	s.uploads[route.Method+" "+route.Path] = limit
}
