package chat

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/store"
)

// Live event types, as docs/api.md names them.
const (
	EventMessageNew          = "message.new"
	EventConversationUpdated = "conversation.updated"
	EventReadReceipt         = "message.read_receipt"
	EventReadReceipts        = "message.read_receipts"
	EventTyping              = "message.typing"
	EventPresence            = "presence"
	EventResync              = realtime.EventResync
)

// UserChannel is the realtime channel of one user's live events: each event is published
// once per recipient, so membership decides who hears what, and one channel is one
// resumable position for the user's streams.
func UserChannel(userID int64) string { return "user:" + strconv.FormatInt(userID, 10) }

// ConversationUpdate is the data of a conversation.updated event.
type ConversationUpdate struct {
	ConversationID int64  `json:"conversation_id"`
	Reason         string `json:"reason"` // created, left, ...
}

// publishTimeout bounds one publish, so that a broker that hangs (rather than refusing)
// holds up a request no longer than this.
const publishTimeout = 5 * time.Second

// publish announces an event to users after its transaction committed. The database has
// it already, and an engine that fails to publish it sends the recipients' streams resync
// once it can publish again (realtime.EventResync), so a failure is logged, not returned.
func (s *Service) publish(ctx context.Context, userIDs []int64, typ string, data any) {
	s.publishEvent(ctx, userIDs, typ, data, false)
}

// publishDroppable announces an event worth less than a subscriber's consistency (typing,
// presence): it is dropped first when a queue is full, and not kept for resuming.
func (s *Service) publishDroppable(ctx context.Context, userIDs []int64, typ string, data any) {
	s.publishEvent(ctx, userIDs, typ, data, true)
}

func (s *Service) publishEvent(ctx context.Context, userIDs []int64, typ string, data any, droppable bool) {
	s.publishAll(ctx, s.appendEvent(nil, userIDs, typ, data, droppable))
}

// appendEvent appends to pubs the event of type typ about data for userIDs' streams (none:
// nothing).
func (s *Service) appendEvent(pubs []realtime.Publication, userIDs []int64, typ string, data any, droppable bool) []realtime.Publication {
	if len(userIDs) == 0 {
		return pubs
	}
	ev, err := liveEvent(typ, data, droppable)
	if err != nil {
		s.metrics.errors.WithLabelValues(errEncode).Inc()
		s.logger.Error("encode event", slog.String("type", typ), slog.String("error", err.Error()))
		return pubs
	}
	channels := make([]string, len(userIDs))
	for i, id := range userIDs {
		channels[i] = UserChannel(id)
	}
	return append(pubs, realtime.Publication{Channels: channels, Event: ev})
}

// publishAll publishes pubs in order, in one round trip for a shared engine. The request
// may end meanwhile, but the events must still go out; a broker that does not answer
// within publishTimeout gives them up to the engine's repair.
func (s *Service) publishAll(ctx context.Context, pubs []realtime.Publication) {
	if len(pubs) == 0 {
		return
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if err := s.events.PublishAll(pctx, pubs); err != nil {
		s.metrics.errors.WithLabelValues(errPublish).Inc()
		s.metrics.publishFails.Inc()
		s.logger.ErrorContext(ctx, "publish events", slog.String("type", pubs[0].Event.Type), slog.Int("events", len(pubs)),
			slog.Int("recipients", len(pubs[0].Channels)), slog.String("error", err.Error()),
			slog.String("request_id", messenger.RequestID(ctx)))
		return
	}
	if s.logger.Enabled(ctx, slog.LevelDebug) {
		for _, p := range pubs {
			s.logger.DebugContext(ctx, "event published", slog.String("type", p.Event.Type), slog.Int("recipients", len(p.Channels)))
		}
	}
}

// liveEvent is an event of type typ about data, encoded once for every stream: Data is its
// JSON in the API's shape, which API streams send as it is; Value is the typed value,
// which page streams render without decoding Data. A message or an upload goes as the
// domain value (rendered) and its API shape (encoded); one given in its API shape is
// taken back to the domain value once, here.
func liveEvent(typ string, data any, droppable bool) (realtime.Event, error) {
	value, wire := data, data
	switch d := data.(type) {
	case messenger.Message:
		wire = d.API()
	case messenger.Upload:
		wire = d.API()
	case messenger.APIMessage:
		value = messageOf(d)
	case messenger.APIUpload:
		value = uploadOf(d)
	}
	raw, err := json.Marshal(wire)
	if err != nil {
		return realtime.Event{}, err
	}
	return realtime.Event{Type: typ, Data: raw, Value: value, Droppable: droppable}, nil
}

// EventValue answers the typed value of a live event: a messenger.Message (message.new,
// message.updated), a messenger.Upload (upload.updated), a ConversationUpdate, a
// ReadReceipt, a ReadReceipts, a Typing or a PresenceChange; nil for an event of another type. It is the
// value the event was published with in this process, or, for an event published by
// another process (Redis carries only the data between processes), its data decoded.
func EventValue(ev realtime.Event) (any, error) {
	if ev.Value != nil {
		return ev.Value, nil
	}
	switch ev.Type {
	case EventMessageNew, EventMessageUpdated:
		m, err := decode[messenger.APIMessage](ev.Data)
		return messageOf(m), err
	case EventUploadUpdated:
		u, err := decode[messenger.APIUpload](ev.Data)
		return uploadOf(u), err
	case EventConversationUpdated:
		return decode[ConversationUpdate](ev.Data)
	case EventReadReceipt:
		return decode[ReadReceipt](ev.Data)
	case EventReadReceipts:
		return decode[ReadReceipts](ev.Data)
	case EventTyping:
		return decode[Typing](ev.Data)
	case EventPresence:
		return decode[PresenceChange](ev.Data)
	}
	return nil, nil
}

func decode[T any](data []byte) (T, error) {
	var v T
	err := json.Unmarshal(data, &v)
	return v, err
}

// messageOf answers the message an event's API shape describes, as far as a screen shows it.
func messageOf(a messenger.APIMessage) messenger.Message {
	return messenger.Message{
		ID: a.ID, ConversationID: a.ConversationID, Seq: a.Seq,
		Sender: messenger.User{Sub: a.Sender.ID, Name: a.Sender.Name, Role: a.Sender.Role},
		Kind:   a.Kind, Body: a.Body, ClientMsgID: a.ClientMsgID, CreatedAt: a.CreatedAt, ReadCount: a.ReadCount,
		Event: a.Event, Files: filesOf(a.Files), Deleted: a.Deleted, JoinsPrevious: a.JoinsPrevious,
	}
}

// uploadOf answers the upload an upload.updated event's API shape describes.
func uploadOf(a messenger.APIUpload) messenger.Upload {
	u := messenger.Upload{ID: a.ID, ConversationID: a.ConversationID, ClientMsgID: a.ClientMsgID,
		Caption: a.Caption, State: a.State, CreatedAt: a.CreatedAt, Dismissed: a.Dismissed, Files: filesOf(a.Files)}
	if a.MessageID != nil {
		u.MessageID = *a.MessageID
	}
	return u
}

// filesOf answers the files an event's API shape describes, with the thumbnails it names.
func filesOf(api []messenger.APIFile) []messenger.File {
	if len(api) == 0 {
		return nil
	}
	out := make([]messenger.File, 0, len(api))
	for _, a := range api {
		f := messenger.File{ID: a.ID, Name: a.Name, ContentType: a.ContentType, Size: a.Size, State: a.State,
			Scanned: a.Scanned, Width: a.Width, Height: a.Height}
		for _, size := range messenger.ThumbSizes {
			if _, ok := a.Thumbnails[size]; ok {
				w, h := messenger.FitBox(a.Width, a.Height, messenger.ThumbEdge(size))
				f.Variants = append(f.Variants, messenger.Variant{Size: size, Width: w, Height: h})
			}
		}
		out = append(out, f)
	}
	return out
}

// ErrorKinds are the values of messenger_errors_total's kind label.
var ErrorKinds = []string{errPublish, errEncode, errDatabase, errPresence}

const (
	errPublish  = "publish"
	errEncode   = "encode"
	errDatabase = "database"
	errPresence = "presence" // a batch of users gone offline that failed (chat/presence_batch.go)
)

// DatabaseFailed counts a request that failed because the database did not answer in
// time (EUNAVAILABLE).
func (s *Service) DatabaseFailed() { s.metrics.errors.WithLabelValues(errDatabase).Inc() }

// metrics of the use cases.
type metrics struct {
	messages     *prometheus.CounterVec
	sendDuration prometheus.Histogram
	sendBatch    prometheus.Histogram
	errors       *prometheus.CounterVec
	publishFails prometheus.Counter
	scans        *prometheus.CounterVec
	scanFailures prometheus.Counter
	thumbWait    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "messenger_messages_total",
			Help: "Messages stored, by kind.",
		}, []string{"kind"}),
		sendDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "messenger_messages_sent_duration_seconds",
			Help:    "Time to store and publish a message.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "messenger_errors_total",
			Help: "Errors by kind: publish (live events not published), encode (a live event that could not be encoded), database (requests refused because the database did not answer in time).",
		}, []string{"kind"}),
		publishFails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "messenger_publish_failures_total",
			Help: "Publishes of live events the realtime engine (Redis or memory) failed; their streams resync.",
		}),
		scans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "messenger_file_scans_total",
			Help: "Files scanned, by verdict (clean, infected; skipped without a scanner).",
		}, []string{"verdict"}),
		scanFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "messenger_scan_failures_total",
			Help: "Scans that gave no verdict (the scanner down or erring): the upload waits and its job retries.",
		}),
		sendBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "messenger_send_batch_messages",
			Help:    "Sends stored by one send transaction (group commit; MESSENGER_SEND_TRANSACTIONS bounds those running at once).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
		}),
		thumbWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "messenger_thumbnail_wait_seconds",
			Help:    "Time a picture waited for room in the thumbnail decoding budget (MESSENGER_THUMBNAIL_MAX_PIXELS).",
			Buckets: []float64{.001, .01, .1, .5, 1, 2.5, 5, 10, 30, 60},
		}),
	}
	// Every series of a closed label set exists from the start, at zero.
	for _, k := range ErrorKinds {
		m.errors.WithLabelValues(k)
	}
	for _, k := range []string{messenger.MessageText, messenger.MessageFile, messenger.MessageSystem} {
		m.messages.WithLabelValues(k)
	}
	for _, v := range []string{store.VerdictClean, store.VerdictInfected, store.VerdictSkipped} {
		m.scans.WithLabelValues(v)
	}
	reg.MustRegister(m.messages, m.sendDuration, m.sendBatch, m.errors, m.publishFails, m.scans, m.scanFailures, m.thumbWait)
	return m
}
