package jobs

import (
	"context"
	"database/sql"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the runner's Prometheus metrics: queue depth read from River's table at each
// scrape, and duration and failures observed from the jobs this process works.
type metrics struct {
	db       *sql.DB
	depth    *prometheus.Desc
	scrape   *prometheus.Desc
	duration *prometheus.HistogramVec
	failures *prometheus.CounterVec
}

func newMetrics(db *sql.DB) *metrics {
	return &metrics{
		db: db,
		depth: prometheus.NewDesc("messenger_jobs",
			"Jobs waiting or running, by kind and state (available, running, retryable, scheduled).",
			[]string{"kind", "state"}, nil),
		scrape: prometheus.NewDesc("messenger_jobs_scrape_error",
			"1 when the queue depth could not be read at this scrape.", nil, nil),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "messenger_job_duration_seconds",
			Help:    "Run time of job attempts by kind and outcome (completed, failed).",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"kind", "outcome"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "messenger_job_failures_total",
			Help: "Failed job attempts by kind (each failed attempt, retried or not).",
		}, []string{"kind"}),
	}
}

// Describe sends the metrics' descriptions.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.depth
	ch <- m.scrape
	m.duration.Describe(ch)
	m.failures.Describe(ch)
}

// Collect reads the queue depth — one grouped count over the states River's fetch index
// leads with, so it stays cheap — and sends every metric.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.duration.Collect(ch)
	m.failures.Collect(ch)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	failed := 0.0
	// An available job whose time is still ahead (AvailableAtItsTime) counts as scheduled:
	// available is what waits for a worker.
	rows, err := m.db.QueryContext(ctx, `SELECT kind, CASE WHEN state = 'available' AND scheduled_at > now()
		THEN 'scheduled' ELSE state::text END AS st, count(*) FROM river_job
		WHERE state IN ('available', 'running', 'retryable', 'scheduled') GROUP BY kind, st`)
	if err != nil {
		failed = 1
	} else {
		defer rows.Close()
		for rows.Next() {
			var kind, state string
			var n float64
			if err := rows.Scan(&kind, &state, &n); err != nil {
				failed = 1
				break
			}
			ch <- prometheus.MustNewConstMetric(m.depth, prometheus.GaugeValue, n, kind, state)
		}
		if rows.Err() != nil {
			failed = 1
		}
	}
	ch <- prometheus.MustNewConstMetric(m.scrape, prometheus.GaugeValue, failed)
}
