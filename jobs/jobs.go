// Package jobs runs the messenger's background work on River, a job queue kept in
// PostgreSQL: a job is enqueued with InsertTx inside the same transaction as the row that
// needs it, so a rolled-back transaction leaves no job and a committed one never loses it.
// River polls (lib/pq has no LISTEN pool River can use), retries failed jobs with backoff and
// picks up, after a restart, every job a stopped process left.
package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivertype"

	"github.com/dreamseed/messenger/internal/trace"
)

// Defaults of Config.
const (
	DefaultWorkers      = 4
	DefaultPollInterval = 200 * time.Millisecond
	DefaultJobTimeout   = time.Minute
	DefaultMaxAttempts  = 10
	DefaultRetryBase    = time.Second
	DefaultRetryMax     = time.Hour
)

// Config holds the runner's limits; a zero field takes its default, except Workers: 0 means
// this process only enqueues and works no jobs (DefaultWorkers is the usual value).
type Config struct {
	Workers      int           // jobs worked at once by this process; 0: none (insert only)
	PollInterval time.Duration // how often an idle runner looks for new jobs
	JobTimeout   time.Duration // a job's context ends after this long, and the attempt fails
	MaxAttempts  int           // attempts before a job is discarded
	RetryBase    time.Duration // delay before the first retry; doubled after each attempt
	RetryMax     time.Duration // the longest delay between two attempts
	// RescueAfter is how long a job may stay running before it is taken for abandoned (its
	// process was killed) and run again; more than JobTimeout, default JobTimeout + 1 min.
	RescueAfter time.Duration
	// ProbeInterval is how often the queue probe (ProbeArgs) is scheduled.
	ProbeInterval time.Duration
	// Periodic are more periodic jobs (the email digest's scan), run by a working runner.
	Periodic []*river.PeriodicJob
	// Kinds are the job kinds register adds, whose failure series exist from the start (at
	// zero) on a working runner; the probe's is always there.
	Kinds []string
	// Queues are more queues than River's default one (which has Workers), by name, with the
	// jobs of each worked at once: a kind of job that comes in bursts gets its own, so that it
	// neither waits behind the others nor holds them up. Ignored when Workers is 0.
	Queues map[string]int
}

// withDefaults answers c with every unset limit at its default.
func (c Config) withDefaults() Config {
	c.Workers = max(c.Workers, 0)
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.JobTimeout <= 0 {
		c.JobTimeout = DefaultJobTimeout
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.RetryBase <= 0 {
		c.RetryBase = DefaultRetryBase
	}
	if c.RetryMax <= 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.RescueAfter <= c.JobTimeout {
		c.RescueAfter = c.JobTimeout + time.Minute
	}
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	return c
}

// Runner enqueues jobs and, unless configured with no workers, works them.
type Runner struct {
	client  *river.Client[*sql.Tx]
	logger  *slog.Logger
	metrics *metrics
	working bool
	events  <-chan *river.Event
	unsub   func()
	done    chan struct{}
}

// New builds a runner on db, which must connect as the application role, with the job kinds
// that register adds to workers (river.AddWorker). Its metrics are registered on reg.
func New(db *sql.DB, logger *slog.Logger, cfg Config, reg prometheus.Registerer, register func(*river.Workers)) (*Runner, error) {
	cfg = cfg.withDefaults()
	rc := &river.Config{
		Logger:            logger.With(slog.String("component", "jobs")),
		FetchPollInterval: cfg.PollInterval,
		FetchCooldown:     min(cfg.PollInterval, 100*time.Millisecond),
		JobTimeout:        cfg.JobTimeout,
		MaxAttempts:       cfg.MaxAttempts,
		RetryPolicy:       backoff{base: cfg.RetryBase, max: cfg.RetryMax},
		PollOnly:          true,
		// River's default is an hour: a scan cut by kill -9 would keep its file waiting that long.
		RescueStuckJobsAfter: cfg.RescueAfter,
		// REINDEX needs the tables' owner; the application role is not, and should not be.
		ReindexerSchedule: river.NeverSchedule(),
		Middleware:        []rivertype.Middleware{&traceMiddleware{logger: logger}},
	}
	probe := newProbeWorker()
	working := cfg.Workers > 0
	if working {
		workers := river.NewWorkers()
		river.AddWorker(workers, probe)
		if register != nil {
			register(workers)
		}
		rc.Workers = workers
		rc.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.Workers}}
		for name, n := range cfg.Queues {
			if name != river.QueueDefault && n > 0 {
				rc.Queues[name] = river.QueueConfig{MaxWorkers: n}
			}
		}
		rc.PeriodicJobs = []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(cfg.ProbeInterval),
			func() (river.JobArgs, *river.InsertOpts) { return ProbeArgs{}, nil },
			&river.PeriodicJobOpts{ID: "queue_probe", RunOnStart: true})}
		rc.PeriodicJobs = append(rc.PeriodicJobs, cfg.Periodic...)
	}
	client, err := river.NewClient(riverdatabasesql.New(db), rc)
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	m := newMetrics(db)
	if working {
		for _, k := range append([]string{ProbeArgs{}.Kind()}, cfg.Kinds...) {
			m.failures.WithLabelValues(k)
		}
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m, probe.lag, probe.lastRun} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("jobs: metrics: %w", err)
			}
		}
	}
	return &Runner{client: client, logger: logger, metrics: m, working: working}, nil
}

// Start begins working jobs; it does nothing for a runner without workers. Cancelling ctx
// does not stop the runner (Stop does, gracefully).
func (r *Runner) Start(ctx context.Context) error {
	if !r.working {
		return nil
	}
	r.events, r.unsub = r.client.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed)
	r.done = make(chan struct{})
	go r.observe()
	// River stops hard (cancelling running jobs) when Start's context ends; shutdown goes
	// through Stop instead, which lets running jobs finish.
	if err := r.client.Start(context.WithoutCancel(ctx)); err != nil {
		r.unsub()
		<-r.done
		return fmt.Errorf("jobs: start: %w", err)
	}
	return nil
}

// Stop stops fetching jobs and waits for the running ones to finish; when ctx ends first,
// it cancels them (River puts them back to be retried) and answers ctx's error.
func (r *Runner) Stop(ctx context.Context) error {
	if !r.working || r.done == nil {
		return nil
	}
	err := r.client.Stop(ctx)
	if err != nil && ctx.Err() != nil {
		hard, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		err = errors.Join(err, r.client.StopAndCancel(hard))
	}
	r.unsub()
	<-r.done
	return err
}

// InsertTx enqueues a job in tx, the transaction that records what the job is for: the job
// exists if and only if tx commits.
func (r *Runner) InsertTx(ctx context.Context, tx *sql.Tx, args river.JobArgs) error {
	if _, err := r.client.InsertTx(ctx, tx, args, nil); err != nil {
		return fmt.Errorf("jobs: insert %s: %w", args.Kind(), err)
	}
	return nil
}

// InsertManyTx enqueues jobs in tx in one statement, each with its own insert options
// (a unique job that exists already is not inserted again).
func (r *Runner) InsertManyTx(ctx context.Context, tx *sql.Tx, args []river.JobArgs) error {
	if len(args) == 0 {
		return nil
	}
	params := make([]river.InsertManyParams, len(args))
	for i, a := range args {
		params[i] = river.InsertManyParams{Args: a}
	}
	if _, err := r.client.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("jobs: insert %d %s: %w", len(args), args[0].Kind(), err)
	}
	return nil
}

// Client answers the River client, for a job that enqueues others outside a transaction
// of the project's (the digest's scan).
func (r *Runner) Client() *river.Client[*sql.Tx] { return r.client }

// observe turns River's job events into metrics until the subscription ends.
func (r *Runner) observe() {
	defer close(r.done)
	for ev := range r.events {
		if ev.Job == nil || ev.JobStats == nil {
			continue
		}
		outcome := "completed"
		if ev.Kind == river.EventKindJobFailed {
			outcome = "failed"
			r.metrics.failures.WithLabelValues(ev.Job.Kind).Inc()
			r.logger.WarnContext(trace.Start(context.Background(), jobTrace(ev.Job.Metadata)), "job failed", slog.String("kind", ev.Job.Kind), slog.Int64("job", ev.Job.ID),
				slog.Int("attempt", ev.Job.Attempt), slog.String("state", string(ev.Job.State)), slog.String("error", lastError(ev.Job)))
		}
		r.metrics.duration.WithLabelValues(ev.Job.Kind, outcome).Observe(ev.JobStats.RunDuration.Seconds())
	}
}

func lastError(job *rivertype.JobRow) string {
	if len(job.Errors) == 0 {
		return ""
	}
	return job.Errors[len(job.Errors)-1].Error
}

// backoff retries after base, 2·base, 4·base … up to max: a scanner that is down for a
// while gets waited for without the queue spinning on it.
type backoff struct{ base, max time.Duration }

// NextRetry answers when the job's next attempt is due. It counts by the attempt that
// just failed: River calls it before that attempt's error is in job.Errors.
func (b backoff) NextRetry(job *rivertype.JobRow) time.Time {
	n := max(job.Attempt, 1) - 1
	d := time.Duration(float64(b.base) * math.Pow(2, float64(min(n, 30))))
	if d > b.max || d <= 0 {
		d = b.max
	}
	return time.Now().Add(d)
}

// AvailableAtItsTime is an insert hook (river.JobArgsWithHooks) for a kind of job that is
// scheduled a few seconds ahead, many a second: it inserts the job available rather than
// scheduled, its time kept. River's fetch takes an available job only once its scheduled_at
// has come, so it runs when it would have; what it saves is River's scheduler, which every
// 5 s moves the jobs due within the next 5 s from scheduled to available, all in one
// statement: a row version each under the table's indexes, in a burst that the sends
// running beside it feel. when decides, for each job, whether it is one of those.
func AvailableAtItsTime(when func(rivertype.JobArgs) bool) rivertype.Hook {
	return river.HookInsertBeginFunc(func(_ context.Context, p *rivertype.JobInsertParams) error {
		if p.State == rivertype.JobStateScheduled && when(p.Args) {
			p.State = rivertype.JobStateAvailable
		}
		return nil
	})
}
