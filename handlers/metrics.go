package handlers

import (
	"strconv"
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
}

// NewMetrics answers the metrics with the Go runtime and process collectors registered.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "messenger_http_request_duration_seconds",
			Help:    "Duration of HTTP requests by route, method and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method", "status"}),
	}
	m.Registry.MustRegister(m.requestDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) observeRequest(route, method string, status int, d time.Duration) {
	if route == "/events" || route == "/api/v1/events" {
		return // streams last as long as the connection; their length is not latency
	}
	m.requestDuration.WithLabelValues(route, method, strconv.Itoa(status)).Observe(d.Seconds())
}

func (s *Server) metricsHandler() echo.HandlerFunc {
	return echo.WrapHandler(promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{}))
}
