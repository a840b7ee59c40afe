package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/views"
)

const (
	// heartbeatEvery keeps proxies and browsers from timing out an idle stream, and finds
	// dead connections by failing to write.
	heartbeatEvery = 20 * time.Second
	// writeTimeout bounds one write: a client that stops reading is dropped, never waited on.
	writeTimeout = 10 * time.Second
)

// events is the live stream of the pages: the same events as the API's, with HTML
// fragments as data, rendered for this viewer in their language.
func (s *Server) events(c *echo.Context) error {
	me, _ := auth.UserFrom(c.Request().Context())
	return s.stream(c, me, func(ctx context.Context, ev realtime.Event) (string, error) {
		buf := new(bytes.Buffer)
		switch ev.Type {
		case chat.EventMessageNew:
			var m messenger.APIMessage
			if err := json.Unmarshal(ev.Data, &m); err != nil {
				return "", err
			}
			err := views.LiveMessage(m.Message(), me.Sub).Render(ctx, buf)
			return buf.String(), err
		case chat.EventMessageUpdated:
			var m messenger.APIMessage
			if err := json.Unmarshal(ev.Data, &m); err != nil {
				return "", err
			}
			err := views.LiveMessage(m.Message(), me.Sub).Render(ctx, buf)
			return buf.String(), err
		case chat.EventUploadUpdated:
			var u messenger.APIUpload
			if err := json.Unmarshal(ev.Data, &u); err != nil {
				return "", err
			}
			err := views.LiveUpload(uploadOf(u)).Render(ctx, buf)
			return buf.String(), err
		case chat.EventConversationUpdated:
			var u chat.ConversationUpdate
			if err := json.Unmarshal(ev.Data, &u); err != nil {
				return "", err
			}
			err := views.LiveConversationUpdate(u.ConversationID, u.Reason).Render(ctx, buf)
			return buf.String(), err
		case chat.EventReadReceipt:
			var r chat.ReadReceipt
			if err := json.Unmarshal(ev.Data, &r); err != nil {
				return "", err
			}
			err := views.LiveReadReceipt(r.ConversationID, r.UserID, r.LastReadSeq, r.UserID == me.Sub).Render(ctx, buf)
			return buf.String(), err
		case chat.EventTyping:
			var t chat.Typing
			if err := json.Unmarshal(ev.Data, &t); err != nil {
				return "", err
			}
			err := views.LiveTyping(t.ConversationID, t.UserID, t.Name, t.Typing).Render(ctx, buf)
			return buf.String(), err
		case chat.EventPresence:
			var p chat.PresenceChange
			if err := json.Unmarshal(ev.Data, &p); err != nil {
				return "", err
			}
			err := views.LivePresence(p.UserID, p.Online, p.LastSeenAt, time.Now()).Render(ctx, buf)
			return buf.String(), err
		case chat.EventResync:
			return `<template data-resync="true"></template>`, nil
		}
		return string(ev.Data), nil
	})
}

// apiEvents is the live stream of the JSON API: data is the event's JSON as published.
func (s *Server) apiEvents(c *echo.Context) error {
	me, _ := auth.UserFrom(c.Request().Context())
	return s.stream(c, me, func(_ context.Context, ev realtime.Event) (string, error) {
		if ev.Type == chat.EventResync {
			return "{}", nil
		}
		return string(ev.Data), nil
	})
}

// stream serves one Server-Sent Events connection of me: the events of me's user channel,
// resumed after Last-Event-ID from the engine's history when it still has it and a resync
// when it does not; the announcements of me's zone, resumed from the database; and a
// heartbeat comment. A client too slow to keep up overflows its bounded queue and is
// disconnected; it reconnects and resumes or resyncs. The same subscription carries the
// notices of the user's streams channel to the stream's guard, which may end it early.
//
// An event id is the stream's position on both: "<user channel id>.z<announcement seq>",
// or the user channel's id alone for a user without a zone.
func (s *Server) stream(c *echo.Context, me messenger.User, format func(context.Context, realtime.Event) (string, error)) error {
	ctx := c.Request().Context()
	channel := chat.UserChannel(me.ID)
	// The user's streams channel carries the notices that end streams to the guard.
	streams := streamsChannel(me.ID)
	channels := []string{channel, streams}
	zoneChannel := ""
	if me.ZoneID != 0 {
		zoneChannel = chat.ZoneChannel(me.ZoneID)
		channels = append(channels, zoneChannel)
	}
	sub, err := s.engine.Subscribe(ctx, channels...)
	if err != nil {
		return err
	}
	defer sub.Close()
	s.metrics.streamOpened(me.ID)
	defer s.metrics.streamClosed(me.ID)

	// This stream keeps me online; the last one closing anywhere makes me offline.
	connID := auth.NewToken()
	if err := s.chat.Connected(ctx, me, connID); err != nil {
		c.Logger().Warn("presence connect", slog.String("error", err.Error()))
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		s.chat.Disconnected(ctx, me, connID)
	}()

	// The stream ends early when the user opens too many, or its credentials end.
	guard := s.guardStream(ctx, me, connID)
	defer guard.Close()

	lastID := c.Request().Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = c.QueryParam("last_event_id")
	}
	pos := parseStreamPosition(lastID)

	// The zone's position: where the client was (if it was in this zone), else the newest
	// notice now. A client that resumes without a position in this zone may have missed
	// notices: it is told to resync.
	zoneResync := false
	switch {
	case zoneChannel == "":
		pos.hasZone = false
	case !pos.hasZone || pos.zone != me.ZoneID:
		zoneResync = lastID != ""
		pos.zone, pos.zoneSeq, pos.hasZone = me.ZoneID, -1, true
	}

	w := c.Response()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache, no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	// send writes a frame and flushes it, unless more events wait in the subscription's
	// queue: then the loop flushes once they are written (a batch of messages published
	// together goes out in one write, not one each), and never leaves one unflushed while
	// it waits for more.
	unflushed := false
	send := func(raw string) error {
		rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := w.Write([]byte(raw)); err != nil {
			return err
		}
		if len(sub.C()) > 0 {
			unflushed = true
			return nil
		}
		unflushed = false
		return rc.Flush()
	}
	sendEvent := func(ev realtime.Event) error {
		data, err := format(ctx, ev)
		if err != nil {
			c.Logger().Error("render live event", slog.String("type", ev.Type), slog.String("error", err.Error()))
			return nil
		}
		return send(frame(ev.Type, ev.ID, data))
	}
	// sendUser sends an event of the user channel, sendZone one of the zone, each with the
	// stream's position after it as id (none for droppable events).
	marks := receiptMarks{}
	sendUser := func(ev realtime.Event) error {
		if ev.Type == chat.EventReadReceipt && marks.stale(ev) {
			if ev.ID == "" {
				return nil
			}
			// Not sent, but passed: the client's position moves on without an event.
			pos.user = ev.ID
			return send(idFrame(pos.String()))
		}
		if ev.ID != "" {
			pos.user = ev.ID
			ev.ID = pos.String()
		}
		return sendEvent(ev)
	}
	sendZone := func(ev realtime.Event, seq int64) error {
		pos.zoneSeq = seq
		ev.ID = pos.String()
		return sendEvent(ev)
	}
	// zoneCatchUp sends the notices after the stream's zone position from the database
	// (from the newest on, for a position not known yet). Notices of two processes may be
	// published out of seq order, and a publish may fail: a live notice that is not the
	// next one makes the stream catch up, so each goes out once, in order. needResync
	// reports what could not be caught up this way.
	zoneCatchUp := func() (needResync bool, err error) {
		missed, last, err := s.chat.ZoneCatchUp(ctx, me, pos.zoneSeq, chat.PageSize)
		if err != nil {
			c.Logger().Warn("stream zone catch-up", slog.String("error", err.Error()))
			return true, nil
		}
		if pos.zoneSeq < 0 {
			pos.zoneSeq = last
			return false, nil
		}
		for _, m := range missed {
			raw, err := json.Marshal(m.API())
			if err != nil {
				return false, err
			}
			if err := sendZone(realtime.Event{Type: chat.EventMessageNew, Data: raw}, m.Seq); err != nil {
				return false, err
			}
		}
		return len(missed) == chat.PageSize, nil
	}
	// resync tells the client to catch up from the database. Its id is the user channel's
	// position now, so a client that reconnects after catching up resumes from there
	// instead of being told to resync again; what was published before it and is still
	// queued here is skipped (the catch-up has it).
	resynced := false
	resync := func() error {
		id, err := s.engine.Head(ctx, channel)
		if err != nil {
			c.Logger().Warn("stream head", slog.String("error", err.Error()))
			id = "resync-" + strconv.FormatInt(time.Now().UnixMilli(), 10)
		}
		resynced = true
		return sendUser(realtime.Event{Type: chat.EventResync, ID: id})
	}

	if err := send("retry: 1000\n\n"); err != nil {
		return nil
	}
	c.Logger().Debug("stream opened")

	if zoneChannel != "" {
		again, err := zoneCatchUp()
		if err != nil {
			return nil
		}
		zoneResync = zoneResync || again
	}

	// Events published between Subscribe and History arrive twice: from history and live.
	// Live events with ids come in id order, so the first one not replayed ends the
	// skipping; droppable ones (no id, never in the history) pass without ending it.
	var replayed map[string]bool
	if pos.user != "" {
		missed, err := s.engine.History(ctx, channel, pos.user)
		switch {
		case errors.Is(err, realtime.ErrHistoryGone):
			err = resync()
		case err != nil:
			c.Logger().Warn("stream history", slog.String("error", err.Error()))
			err = resync()
		default:
			replayed = make(map[string]bool, len(missed))
			for _, ev := range missed {
				replayed[ev.ID] = true
				if err = sendUser(ev); err != nil {
					break
				}
			}
		}
		if err != nil {
			return nil
		}
	}
	if zoneResync && !resynced {
		if err := resync(); err != nil {
			return nil
		}
	}

	// end sends the stream's last event, which says why the guard ends it.
	end := func(reason string) error {
		c.Logger().Info("stream ended", slog.String("reason", reason))
		send(closedFrame(reason, pos.String()))
		return nil
	}

	heartbeat := time.NewTicker(heartbeatEvery)
	defer heartbeat.Stop()
	for {
		var err error
		if unflushed && len(sub.C()) == 0 {
			unflushed = false
			if err := rc.Flush(); err != nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case d, ok := <-sub.C():
			if !ok {
				return nil
			}
			if d.Channel == streams { // for the guard, never for the client
				if reason := guard.Notice(ctx, d.Event); reason != "" {
					return end(reason)
				}
				continue
			}
			if d.Channel == zoneChannel && d.Event.Type == chat.EventMessageUpdated {
				// A notice changed in place (a tombstone): live only, it moves no position.
				ev := d.Event
				ev.ID = pos.String()
				err = sendEvent(ev)
				break
			}
			if d.Channel == zoneChannel {
				seq, perr := strconv.ParseInt(d.Event.ID, 10, 64)
				lost := d.Event.Type == chat.EventResync // the engine failed to publish notices
				switch {
				case !lost && (perr != nil || (pos.zoneSeq >= 0 && seq <= pos.zoneSeq)):
					continue // sent already, from the database
				case !lost && (pos.zoneSeq < 0 || seq == pos.zoneSeq+1):
					err = sendZone(d.Event, seq)
				default: // notices before it are missing here: from the database, in order
					var again bool
					if again, err = zoneCatchUp(); err == nil && again {
						err = resync()
					}
				}
				break
			}
			if replayed != nil && d.Event.ID != "" {
				if replayed[d.Event.ID] {
					continue
				}
				replayed = nil
			}
			if resynced && d.Event.ID != "" {
				if cmp, ok := realtime.CompareEventIDs(d.Event.ID, pos.user); ok && cmp <= 0 {
					continue // published before the resync: the client's catch-up has it
				}
			}
			err = sendUser(d.Event)
		case <-sub.Resync():
			// Notices to the guard may have been lost too.
			if reason := guard.Lost(ctx); reason != "" {
				return end(reason)
			}
			err = resync()
		case <-sub.Overflowed():
			c.Logger().Warn("stream overflowed: closing it so the client resumes", slog.Uint64("dropped", sub.Dropped()))
			return nil
		case <-heartbeat.C:
			err = send(": ping\n\n")
		case <-guard.Expired():
			return end(closedExpired)
		case reason := <-guard.Ended():
			return end(reason)
		}
		if err != nil {
			c.Logger().Debug("stream closed", slog.String("reason", err.Error()))
			return nil
		}
	}
}

// receiptMarks is the highest watermark a stream has announced per (conversation,
// reader). Two marks of one reader commit in order, but their receipts are published
// after the commits, by whichever process served each, so they can arrive the other way
// round: a receipt at or below what the stream announced already is stale, and is not
// sent (clients keep the higher one anyway), so the watermarks a client sees only rise.
type receiptMarks map[string]int64

// maxReceiptMarks bounds the memory of a long-lived stream; forgetting only lets a rare
// late receipt through as it came.
const maxReceiptMarks = 4096

// stale reports whether receipt ev says nothing new to this stream, and otherwise notes it.
func (m receiptMarks) stale(ev realtime.Event) bool {
	var r chat.ReadReceipt
	if err := json.Unmarshal(ev.Data, &r); err != nil {
		return false
	}
	key := strconv.FormatInt(r.ConversationID, 10) + " " + r.UserID
	if high, ok := m[key]; ok && r.LastReadSeq <= high {
		return true
	}
	if len(m) >= maxReceiptMarks {
		clear(m)
	}
	m[key] = r.LastReadSeq
	return false
}

// streamPosition is where a stream is: the last event id of the user channel ("" before
// any), and, for a user with a zone, the zone and its newest announcement seq sent (-1:
// not known yet).
type streamPosition struct {
	user    string
	zone    int64
	zoneSeq int64
	hasZone bool
}

// parseStreamPosition reads a Last-Event-ID ("<user id>.z<zone>-<seq>"); a malformed
// zone part counts as none.
func parseStreamPosition(id string) streamPosition {
	user, zonePart, found := strings.Cut(id, ".z")
	p := streamPosition{user: user}
	if !found {
		return p
	}
	zone, seq, ok := strings.Cut(zonePart, "-")
	z, err1 := strconv.ParseInt(zone, 10, 64)
	n, err2 := strconv.ParseInt(seq, 10, 64)
	if ok && err1 == nil && err2 == nil && z > 0 && n >= 0 {
		p.zone, p.zoneSeq, p.hasZone = z, n, true
	}
	return p
}

// String is the position as an SSE id.
func (p streamPosition) String() string {
	if !p.hasZone || p.zoneSeq < 0 {
		return p.user
	}
	return p.user + ".z" + strconv.FormatInt(p.zone, 10) + "-" + strconv.FormatInt(p.zoneSeq, 10)
}

// frame encodes one SSE event; multi-line data becomes several data lines. A client ends a
// line at CRLF, a lone CR or a lone LF, so data is split at all three (each becomes LF for
// the client) and the event name and id lose theirs: nothing in them can start a field of
// its own (an id, a retry, another event).
func frame(event, id, data string) string {
	var b strings.Builder
	b.WriteString("event: ")
	b.WriteString(sseField(event))
	b.WriteByte('\n')
	if id = sseField(id); id != "" {
		b.WriteString("id: ")
		b.WriteString(id)
		b.WriteByte('\n')
	}
	data = strings.ReplaceAll(data, "\r\n", "\n")
	data = strings.ReplaceAll(data, "\r", "\n")
	for line := range strings.SplitSeq(data, "\n") {
		b.WriteString("data: ")
		b.WriteString(line)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	return b.String()
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

// uploadOf answers the upload an upload.updated event describes, for rendering it as HTML.
func uploadOf(a messenger.APIUpload) messenger.Upload {
	u := messenger.Upload{ID: a.ID, ConversationID: a.ConversationID, ClientMsgID: a.ClientMsgID,
		Caption: a.Caption, State: a.State, CreatedAt: a.CreatedAt, Dismissed: a.Dismissed,
		Files: messenger.APIMessage{Files: a.Files}.Message().Files}
	if a.MessageID != nil {
		u.MessageID = *a.MessageID
	}
	return u
}
