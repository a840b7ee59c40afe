package handlers

import (
	"bytes"
	"net/http"
	"strconv"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/views"
)

// cacheable reports whether a page request may be answered from the page cache: a plain
// GET of the page itself (no query: no older page, no open panel); anything else is
// rendered afresh.
func (s *Server) cacheable(c *echo.Context) bool {
	req := c.Request()
	return req.Method == http.MethodGet && req.URL.RawQuery == ""
}

// servePage answers the page of conversation conv (0: the list) for me's session from
// the page cache (gzipped for a client that takes it, which every browser does), or
// renders it with render — whose clientMsgID is the cache's hole, which each answer fills
// with a new id for the composer — and keeps it; requests that miss while it renders wait
// for it (pageFill). render also says whether the page shows someone typing, which lapses
// without an event: such a page serves only briefly.
func (s *Server) servePage(c *echo.Context, me messenger.User, conv int64,
	render func(clientMsgID string) (templ.Component, bool, error)) error {
	ctx := c.Request().Context()
	var key pageKey
	copy(key.session[:], auth.HashToken(auth.SessionTokenFrom(ctx)))
	key.conv, key.locale, key.gzip = conv, views.Locale(ctx), acceptsGzip(c)
	now := time.Now()
	body, ok := s.pages.page(key, now)
	if ok {
		s.metrics.pageHit.Inc()
	} else {
		stamp := s.pages.pageStamp(me)
		fill, leader := s.pages.join(key, stamp, minuteOf(now))
		if !leader {
			s.metrics.pageWait.Inc()
			select {
			case <-fill.done:
				body = fill.body
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if body == nil { // the leader, or a waiter whose leader failed
			s.metrics.pageRender.Inc()
			var err error
			func() {
				if leader { // its waiters go on even if the render panics
					defer func() { s.pages.finish(key, fill, body) }()
				}
				body, err = s.renderPage(c, me, key, stamp, now, render)
			}()
			if err != nil {
				return err
			}
		}
	}
	var id []byte
	if len(body.parts) > 1 {
		id = []byte(newClientMsgID())
	}
	h := c.Response().Header()
	h.Set("Content-Type", "text/html; charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	h.Add("Vary", "Accept-Encoding")
	if key.gzip {
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Length", strconv.Itoa(body.size(len(id))))
	// One write: the body goes to the connection in one system call, not one per part.
	buf := bodyBuffers.Get().(*bytes.Buffer)
	defer bodyBuffers.Put(buf)
	buf.Reset()
	if err := body.writeTo(buf, id); err != nil {
		return err
	}
	c.Response().WriteHeader(http.StatusOK)
	_, err := c.Response().Write(buf.Bytes())
	return err
}

// renderPage renders key's page with render, read since stamp, and keeps it.
func (s *Server) renderPage(c *echo.Context, me messenger.User, key pageKey, stamp pageStamp, now time.Time,
	render func(clientMsgID string) (templ.Component, bool, error)) (*gzipParts, error) {
	page, typing, err := render(string(s.hole))
	if err != nil {
		return nil, err
	}
	buf := templ.GetBuffer()
	defer templ.ReleaseBuffer(buf)
	if err := page.Render(c.Request().Context(), buf); err != nil {
		return nil, err
	}
	var body *gzipParts
	if !key.gzip {
		body = newRawParts(buf.Bytes(), s.hole)
	} else if body, err = newGzipParts(buf.Bytes(), s.hole); err != nil {
		return nil, err
	}
	var until time.Time
	if typing {
		until = now.Add(typingPageTTL)
	}
	s.pages.putPage(key, me, body, stamp, now, until)
	return body, nil
}
