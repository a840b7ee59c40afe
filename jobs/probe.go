package jobs

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// DefaultProbeInterval is how often the queue probe is scheduled.
const DefaultProbeInterval = time.Minute

// ProbeArgs is the queue probe: a periodic job that does nothing but note how late it ran.
// It proves end to end, in production, that jobs are enqueued, fetched and worked: when no
// process works jobs (workers stuck, all processes started with no workers, the leader that
// schedules periodic jobs gone), messenger_jobs_probe_last_run_timestamp_seconds stops
// moving, which an alert can watch before any user's file waits for its scan.
type ProbeArgs struct{}

// Kind answers the probe's job kind.
func (ProbeArgs) Kind() string { return "queue_probe" }

// InsertOpts makes probes that pile up while nobody works them count as one (River requires
// the running state among the unique states).
func (ProbeArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable, rivertype.JobStateRunning,
		rivertype.JobStateScheduled,
	}}}
}

type probeWorker struct {
	river.WorkerDefaults[ProbeArgs]
	lag     prometheus.Gauge
	lastRun prometheus.Gauge
}

// Work records how long the probe waited past its scheduled time.
func (w *probeWorker) Work(ctx context.Context, job *river.Job[ProbeArgs]) error {
	w.lag.Set(max(time.Since(job.ScheduledAt), 0).Seconds())
	w.lastRun.SetToCurrentTime()
	return nil
}

func newProbeWorker() *probeWorker {
	return &probeWorker{
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "messenger_jobs_probe_lag_seconds",
			Help: "How late the last queue probe ran after its scheduled time, as seen by the process that worked it.",
		}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "messenger_jobs_probe_last_run_timestamp_seconds",
			Help: "When this process last worked the queue probe (take the max over processes).",
		}),
	}
}
