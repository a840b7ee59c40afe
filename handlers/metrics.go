package handlers

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the Prometheus metrics of one server, in a registry of its own so that
// several servers in one test process do not collide.
type Metrics struct {
	Registry        *prometheus.Registry
	requestDuration *prometheus.HistogramVec
	streams         prometheus.Gauge
	connectedUsers  prometheus.Gauge
	pageHit         prometheus.Counter // pages served by how the page cache answered
	pageRender      prometheus.Counter
	pageWait        prometheus.Counter
	overflows       prometheus.Counter // streams closed because their queue overflowed
	resyncs         prometheus.Counter // resync events sent to clients
	ready           prometheus.Gauge   // 1 when /readyz would answer 200
	depUp           *prometheus.GaugeVec

	mu          sync.Mutex
	userStreams map[int64]int
}

// NewMetrics answers the metrics with the Go runtime and process collectors registered.
func NewMetrics() *Metrics {
	pages := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "messenger_page_cache_total",
		Help: "Thread and list pages served, by how: hit (from the page cache), render (read and rendered), wait (the render of another request under way).",
	}, []string{"result"})
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		// Resolved once: a page served from the cache is a hot path.
		pageHit: pages.WithLabelValues("hit"), pageRender: pages.WithLabelValues("render"), pageWait: pages.WithLabelValues("wait"),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "messenger_http_request_duration_seconds",
			Help:    "Duration of HTTP requests by route, method and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method", "status"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "messenger_streams", Help: "Open live event streams (browser tabs and API clients).",
		}),
		connectedUsers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "messenger_connected_users", Help: "Users with at least one open live stream to this process.",
		}),
		overflows: prometheus.NewCounter(prometheus.CounterOpts{Name: "messenger_stream_overflows_total",
			Help: "Live streams closed because the client fell behind and their queue overflowed (the client reconnects and resumes)."}),
		resyncs: prometheus.NewCounter(prometheus.CounterOpts{Name: "messenger_stream_resyncs_total",
			Help: "Resync events sent on live streams (the client catches up from the database)."}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{Name: "messenger_ready",
			Help: "1 when /readyz would answer 200 (every dependency reachable, not shutting down), from a periodic probe."}),
		depUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "messenger_dependency_up",
			Help: "1 when the dependency answered the last readiness probe: database (PostgreSQL), realtime (the engine: Redis)."},
			[]string{"dependency"}),
		userStreams: make(map[int64]int),
	}
	// Down until the first probe says otherwise: a process that cannot reach its
	// dependencies at start shows it from its first scrape.
	for _, d := range []string{depDatabase, depRealtime} {
		m.depUp.WithLabelValues(d)
	}
	m.Registry.MustRegister(m.requestDuration, m.streams, m.connectedUsers, pages, m.overflows, m.resyncs, m.ready, m.depUp,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observeRequest records a request's duration. Every label comes from a closed set: the
// route is a registered pattern or "unmatched", the method one of the HTTP methods the
// messenger knows or "other", so no client can make new series.
func (m *Metrics) observeRequest(route, method string, status int, d time.Duration) {
	if route == "/events" || route == "/api/v1/events" {
		return // streams last as long as the connection; their length is not latency
	}
	m.requestDuration.WithLabelValues(route, methodLabel(method), strconv.Itoa(status)).Observe(d.Seconds())
}

// methodLabel answers the method's metric label: the method itself when it is a
// standard one, "other" for anything a client made up.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return method
	}
	return "other"
}

// routeLabel answers the route's metric label: its registered pattern, or "unmatched"
// when no route took the request (unknown path or wrong method).
func routeLabel(c *echo.Context) string {
	ri := c.RouteInfo()
	if ri.Path == "" || ri.Name == echo.NotFoundRouteName || ri.Name == echo.MethodNotAllowedRouteName {
		return "unmatched"
	}
	return ri.Path
}

// MetricsHandler serves the Prometheus metrics, the server's and those of the other parts
// of the process (the job queue). It is meant for a listener of its own
// (MESSENGER_METRICS_ADDR) that only operators reach, never the public address.
func (s *Server) MetricsHandler(others ...prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(append(prometheus.Gatherers{s.metrics.Registry}, others...), promhttp.HandlerOpts{})
}

// The dependencies of messenger_dependency_up, a closed set.
const (
	depDatabase = "database"
	depRealtime = "realtime"
)

func (m *Metrics) dependencyUp(dependency string, up bool) {
	m.depUp.WithLabelValues(dependency).Set(gaugeBool(up))
}

func (m *Metrics) setReady(ready bool) { m.ready.Set(gaugeBool(ready)) }

func gaugeBool(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (m *Metrics) streamOpened(userID int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.userStreams[userID]++
	m.streams.Inc()
	m.connectedUsers.Set(float64(len(m.userStreams)))
}

func (m *Metrics) streamClosed(userID int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.userStreams[userID]--; m.userStreams[userID] <= 0 {
		delete(m.userStreams, userID)
	}
	m.streams.Dec()
	m.connectedUsers.Set(float64(len(m.userStreams)))
}
