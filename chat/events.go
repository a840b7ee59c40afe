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
)

// Live event types, as docs/api.md names them.
const (
	EventMessageNew          = "message.new"
	EventConversationUpdated = "conversation.updated"
	EventReadReceipt         = "message.read_receipt"
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
	if len(userIDs) == 0 {
		return
	}
	raw, err := json.Marshal(data)
	if err != nil {
		s.logger.Error("encode event", slog.String("type", typ), slog.String("error", err.Error()))
		return
	}
	channels := make([]string, len(userIDs))
	for i, id := range userIDs {
		channels[i] = UserChannel(id)
	}
	// The request may end meanwhile, but the event must still go out; a broker that does
	// not answer within publishTimeout gives the event up to the engine's repair.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if err := s.events.PublishMany(pctx, channels, realtime.Event{Type: typ, Data: raw, Droppable: droppable}); err != nil {
		s.metrics.errors.WithLabelValues("publish").Inc()
		s.logger.Error("publish event", slog.String("type", typ), slog.Int("recipients", len(userIDs)),
			slog.String("error", err.Error()), slog.String("request_id", messenger.RequestID(ctx)))
	}
}

// metrics of the use cases.
type metrics struct {
	messages     *prometheus.CounterVec
	sendDuration prometheus.Histogram
	errors       *prometheus.CounterVec
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
			Help: "Errors by where they happened.",
		}, []string{"where"}),
		scans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "messenger_file_scans_total",
			Help: "Files scanned, by verdict (clean, infected; skipped without a scanner).",
		}, []string{"verdict"}),
		scanFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "messenger_scan_failures_total",
			Help: "Scans that gave no verdict (the scanner down or erring): the upload waits and its job retries.",
		}),
		thumbWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "messenger_thumbnail_wait_seconds",
			Help:    "Time a picture waited for room in the thumbnail decoding budget (MESSENGER_THUMBNAIL_MAX_PIXELS).",
			Buckets: []float64{.001, .01, .1, .5, 1, 2.5, 5, 10, 30, 60},
		}),
	}
	reg.MustRegister(m.messages, m.sendDuration, m.errors, m.scans, m.scanFailures, m.thumbWait)
	return m
}
