package handlers

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/internal/trace"
	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/views"
)

const (
	// heartbeatEvery keeps proxies and browsers from timing out an idle stream, and finds
	// dead connections by failing to write.
	heartbeatEvery = 20 * time.Second
	// DefaultStreamWriteTimeout bounds one write (Config.StreamWriteTimeout): a client that
	// stops reading is dropped, never waited on.
	DefaultStreamWriteTimeout = 10 * time.Second
	// DefaultStreamHiddenClose is how long a page's tab stays hidden before the page closes
	// its live stream (Config.StreamHiddenClose): a tab left in the background does not
	// keep its user online, nor a connection open, for ever.
	DefaultStreamHiddenClose = 5 * time.Minute
)

// events is the live stream of the pages: the same events as the API's, with HTML
// fragments as data, rendered for this viewer in their language.
func (s *Server) events(c *echo.Context) error {
	me, _ := auth.UserFrom(c.Request().Context())
	return s.serveStream(c, me, func(ctx context.Context, w *bytes.Buffer, ev realtime.Event) error {
		return liveHTML(ctx, w, me, ev)
	})
}

// apiEvents is the live stream of the JSON API: data is the event's JSON as published.
func (s *Server) apiEvents(c *echo.Context) error {
	me, _ := auth.UserFrom(c.Request().Context())
	return s.serveStream(c, me, func(_ context.Context, w *bytes.Buffer, ev realtime.Event) error {
		if ev.Type == chat.EventResync {
			w.WriteString("{}")
			return nil
		}
		w.Write(ev.Data)
		return nil
	})
}

// formatter writes the data of an event's frame to w.
type formatter func(ctx context.Context, w *bytes.Buffer, ev realtime.Event) error

// liveHTML renders event ev to w as me's page shows it: from the typed value the event
// carries, never from its JSON.
func liveHTML(ctx context.Context, w *bytes.Buffer, me messenger.User, ev realtime.Event) error {
	if ev.Type == chat.EventResync {
		w.WriteString(`<template data-resync="true"></template>`)
		return nil
	}
	v, err := chat.EventValue(ev)
	if err != nil {
		return err
	}
	var view templ.Component
	switch v := v.(type) {
	case messenger.Message:
		view = views.LiveMessage(v, me.Sub)
	case messenger.Upload:
		view = views.LiveUpload(v)
	case chat.ConversationUpdate:
		view = views.LiveConversationUpdate(v.ConversationID, v.Reason)
	case chat.ReadReceipt:
		view = views.LiveReadReceipt(v.ConversationID, v.UserID, v.LastReadSeq, v.UserID == me.Sub)
	case chat.ReadReceipts:
		marks := make(map[string]int64, len(v.Receipts))
		for _, r := range v.Receipts {
			marks[r.UserID] = r.LastReadSeq
		}
		view = views.LiveReadReceipts(v.ConversationID, marks)
	case chat.Typing:
		view = views.LiveTyping(v.ConversationID, v.UserID, v.Name, v.Typing)
	case chat.PresenceChange:
		view = views.LivePresence(v.UserID, v.Online, v.LastSeenAt, time.Now())
	default:
		w.Write(ev.Data)
		return nil
	}
	return view.Render(ctx, w)
}

// stream is one Server-Sent Events connection of a user: the events of the user's chat
// stream (chat.Stream: the user's channel and zone, resumed after Last-Event-ID), each
// written as a frame by format; a heartbeat comment; and the notices of the user's
// streams channel, which go to the stream's guard and may end it early. A client too slow
// to keep up overflows its bounded queue and is disconnected; it reconnects and resumes
// or resyncs.
type stream struct {
	s      *Server
	ctx    context.Context
	logger *slog.Logger // the request's: its lines carry the request's trace
	debug  bool         // the logger takes DEBUG lines (the level is the process's, fixed)
	req    *http.Request
	me     messenger.User
	connID string
	live   *chat.Stream
	sub    *realtime.Subscription
	guard  *streamGuard
	format formatter
	// out is where frames go: the response through net/http, or the connection itself
	// once the stream is detached from net/http.
	out streamOut
	// streams is the user's streams channel, carried by the same subscription.
	streams string
	// unflushed: frames written wait for a flush, once the events taken together are.
	unflushed bool
	// taken is the array the subscription's deliveries are taken into, batch after batch.
	taken []realtime.Delivery
}

// serveStream serves one live stream of me, its events' data encoded by format.
func (s *Server) serveStream(c *echo.Context, me messenger.User, format formatter) error {
	st, err := s.openStream(c, me, format)
	if err != nil {
		return err
	}
	if err := st.catchUp(); err != nil {
		st.close()
		return nil // the client went away
	}
	if st.detach() {
		return nil // the stream goes on in a goroutine of its own
	}
	defer st.close()
	st.loop()
	return nil
}

// openStream opens the stream of me where its client left off: subscribed to its
// channels, counted online, and guarded.
func (s *Server) openStream(c *echo.Context, me messenger.User, format formatter) (*stream, error) {
	ctx := c.Request().Context()
	lastID := c.Request().Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = c.QueryParam("last_event_id")
	}
	st := &stream{s: s, ctx: ctx, logger: c.Logger(), req: c.Request(), me: me, connID: auth.NewToken(), live: s.chat.OpenStream(me, lastID),
		format: format, out: newHTTPOut(c.Response(), s.cfg.StreamWriteTimeout), streams: streamsChannel(me.ID)}
	st.debug = st.logger.Enabled(ctx, slog.LevelDebug)
	sub, err := s.engine.Subscribe(ctx, append(st.live.Channels(), st.streams)...)
	if err != nil {
		return nil, err
	}
	st.sub = sub
	s.metrics.streamOpened(me.ID)
	// This stream keeps me online; the last one closing anywhere makes me offline.
	if err := s.chat.Connected(ctx, me, st.connID); err != nil {
		st.logger.Log(ctx, trace.FailureLevel(err), "presence connect", slog.String("error", err.Error()))
	}
	// The stream ends early when the user opens too many, or its credentials end.
	st.guard = s.guardStream(ctx, me, st.connID)
	return st, nil
}

// close undoes what openStream did, in reverse.
func (st *stream) close() {
	st.guard.Close()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(st.ctx), 5*time.Second)
	defer cancel()
	st.s.chat.Disconnected(ctx, st.me, st.connID)
	st.s.metrics.streamClosed(st.me.ID)
	st.sub.Close()
}

// catchUp starts the response and sends what the client missed while away.
func (st *stream) catchUp() error {
	w := st.out.(*httpOut).w
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache, no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := st.write([]byte("retry: 1000\n\n")); err != nil {
		return err
	}
	st.logger.InfoContext(st.ctx, "stream opened")
	return st.send(st.live.CatchUp(st.ctx)...)
}

// loop sends the stream's events as they come, until the client goes, the guard ends the
// stream, or the client falls too far behind.
func (st *stream) loop() {
	heartbeat := time.NewTicker(heartbeatEvery)
	defer heartbeat.Stop()
	for {
		// The frames of the events taken together go out in one flush.
		if st.unflushed {
			if err := st.flush(); err != nil {
				return
			}
		}
		var err error
		select {
		case <-st.ctx.Done():
			return
		case <-st.sub.Ready():
			var done bool
			if done, err = st.sendTaken(); done {
				return
			}
		case <-st.sub.Resync():
			// The engine logs the loss once, at WARN; a line per stream would be thousands.
			st.logger.DebugContext(st.ctx, "stream resync: events were lost, the client reloads what it shows")
			// Notices to the guard may have been lost too.
			if reason := st.guard.Lost(st.ctx); reason != "" {
				st.end(reason)
				return
			}
			err = st.send(st.live.Resync(st.ctx))
		case <-st.sub.Overflowed():
			st.s.metrics.overflows.Inc()
			st.logger.WarnContext(st.ctx, "stream overflowed: closing it so the client resumes", slog.Uint64("dropped", st.sub.Dropped()))
			return
		case <-heartbeat.C:
			err = st.write([]byte(": ping\n\n"))
		case <-st.guard.Expired():
			st.end(closedExpired)
			return
		case reason := <-st.guard.Ended():
			st.end(reason)
			return
		case <-st.s.draining:
			st.endForShutdown()
			return
		}
		if err != nil {
			st.logger.InfoContext(st.ctx, "stream closed", slog.String("reason", err.Error()))
			return
		}
	}
}

// sendTaken sends what waits in the stream's subscription: the notices of the user's
// streams go to the guard, the rest to the client. done is true when the stream is over:
// the subscription closed, or the guard ended the stream (its last event sent).
func (st *stream) sendTaken() (done bool, err error) {
	var open bool
	st.taken, open = st.sub.Take(st.taken)
	defer func() {
		// The events' bytes are not kept between batches, nor a burst's array.
		clear(st.taken)
		if cap(st.taken) > 16 {
			st.taken = nil
		}
	}()
	for _, d := range st.taken {
		if d.Channel == st.streams { // for the guard, never for the client
			if reason := st.guard.Notice(st.ctx, d.Event); reason != "" {
				st.end(reason)
				return true, nil
			}
			continue
		}
		st.delivered(d)
		if err := st.send(st.live.Deliver(st.ctx, d)...); err != nil {
			return false, err
		}
	}
	return !open, nil
}

// delivered logs, at DEBUG, an event the stream received; the line is made only when
// DEBUG is on, as a stream receives many (asked once a stream, not once an event: 6 % of a
// burst's CPU to 10,000 streams went to asking).
func (st *stream) delivered(d realtime.Delivery) {
	if st.debug {
		st.logger.DebugContext(st.ctx, "event delivered", slog.String("type", d.Event.Type), slog.String("channel", d.Channel))
	}
}

// send writes events as frames; an event without a type moves the client's position alone.
// An event that fails to render is logged and left out.
func (st *stream) send(events ...realtime.Event) error {
	b := frameBuffers.Get().(*frameBuffer)
	defer b.release()
	for _, ev := range events {
		if ev.Type == "" {
			if err := st.write(append(b.frame[:0], idFrame(ev.ID)...)); err != nil {
				return err
			}
			continue
		}
		b.data.Reset()
		if err := st.format(st.ctx, &b.data, ev); err != nil {
			st.logger.ErrorContext(st.ctx, "render live event", slog.String("type", ev.Type), slog.String("error", err.Error()))
			continue
		}
		b.frame = appendFrame(b.frame[:0], ev.Type, ev.ID, b.data.Bytes())
		if err := st.write(b.frame); err != nil {
			return err
		}
		if ev.Type == chat.EventResync {
			st.s.metrics.resyncs.Inc()
		}
	}
	return nil
}

// frameBuffer is where send renders an event's data and frames it: one from a pool per
// batch of events, rather than a string per event per viewer.
type frameBuffer struct {
	data  bytes.Buffer
	frame []byte
}

var frameBuffers = sync.Pool{New: func() any { return new(frameBuffer) }}

// release returns b to the pool, unless an unusually large event grew it.
func (b *frameBuffer) release() {
	const keep = 64 << 10
	if b.data.Cap() > keep || cap(b.frame) > keep {
		return
	}
	frameBuffers.Put(b)
}

// write writes raw, to be flushed before the stream waits for more: a client that stops
// reading is dropped after the configured StreamWriteTimeout, never waited on.
func (st *stream) write(raw []byte) error {
	if err := st.out.Write(raw); err != nil {
		return err
	}
	st.unflushed = true
	return nil
}

// flush sends what was written to the client.
func (st *stream) flush() error {
	st.unflushed = false
	return st.out.Flush()
}

// end sends the stream's last event, which says why the guard ends it.
func (st *stream) end(reason string) {
	st.logger.InfoContext(st.ctx, "stream ended", slog.String("reason", reason))
	if st.write([]byte(closedFrame(reason, st.live.Position()))) == nil {
		st.flush()
	}
}

// endForShutdown sends the stream's last event when the process shuts down:
// stream.closed with reason shutdown at the stream's position, and in it a retry hint of a
// random delay, so that the clients of a process do not all come back at once.
func (st *stream) endForShutdown() {
	st.logger.InfoContext(st.ctx, "stream ended", slog.String("reason", closedShutdown))
	// The retry field belongs to the event itself: a client (hx-sse among them) applies a
	// retry only with an event it dispatches.
	retry := "retry: " + strconv.Itoa(shutdownRetryMin+rand.IntN(shutdownRetryMax-shutdownRetryMin+1)) + "\n"
	if st.write([]byte(retry+closedFrame(closedShutdown, st.live.Position()))) == nil {
		st.flush()
	}
}

// frame encodes one SSE event; multi-line data becomes several data lines. A client ends a
// line at CRLF, a lone CR or a lone LF, so data is split at all three (each becomes LF for
// the client) and the event name and id lose theirs: nothing in them can start a field of
// its own (an id, a retry, another event).
func frame(event, id, data string) string {
	return string(appendFrame(nil, event, id, []byte(data)))
}

// appendFrame appends the frame of an event to dst: its data line by line, each line end
// (CRLF, CR or LF) ending a data field.
func appendFrame(dst []byte, event, id string, data []byte) []byte {
	dst = append(dst, "event: "...)
	dst = append(dst, sseField(event)...)
	dst = append(dst, '\n')
	if id = sseField(id); id != "" {
		dst = append(dst, "id: "...)
		dst = append(dst, id...)
		dst = append(dst, '\n')
	}
	for {
		dst = append(dst, "data: "...)
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			dst = append(dst, data...)
			dst = append(dst, '\n')
			break
		}
		dst = append(dst, data[:i]...)
		dst = append(dst, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	return append(dst, '\n')
}

// idFrame moves a client's position on without an event.
func idFrame(id string) string {
	return "id: " + sseField(id) + "\n\n"
}

// sseField is s made fit for a one-line SSE field (an event name, an id): without the CR
// and LF that would end the line, and without NUL, which makes a browser ignore an id.
func sseField(s string) string {
	if !strings.ContainsAny(s, "\r\n\x00") {
		return s
	}
	return strings.NewReplacer("\r", "", "\n", "", "\x00", "").Replace(s)
}
