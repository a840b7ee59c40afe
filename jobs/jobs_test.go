package jobs_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/dreamseed/messenger/jobs"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

// recordArgs is a job that writes its name into job_runs, failing its first Fail attempts
// and taking Hold to run.
type recordArgs struct {
	Name string        `json:"name"`
	Fail int           `json:"fail"`
	Hold time.Duration `json:"hold"`
}

func (recordArgs) Kind() string { return "test_record" }

type recordWorker struct {
	river.WorkerDefaults[recordArgs]
	db *sql.DB
}

func (w *recordWorker) Work(ctx context.Context, job *river.Job[recordArgs]) error {
	if job.Attempt <= job.Args.Fail {
		return fmt.Errorf("attempt %d fails on purpose", job.Attempt)
	}
	select {
	case <-time.After(job.Args.Hold):
	case <-ctx.Done():
		return ctx.Err()
	}
	_, err := w.db.ExecContext(ctx, `INSERT INTO job_runs (name, attempt) VALUES ($1, $2)`, job.Args.Name, job.Attempt)
	return err
}

type env struct {
	app, owner *sql.DB
}

// newEnv makes a fresh migrated database, with a job_runs table the app role may write.
func newEnv(t *testing.T) env {
	t.Helper()
	d := storetest.NewDatabase(t)
	owner := storetest.Conn(t, d.OwnerDSN)
	if _, err := owner.Exec(`CREATE TABLE job_runs (name text NOT NULL, attempt int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
		GRANT SELECT, INSERT ON job_runs TO ` + store.AppRole); err != nil {
		t.Fatal(err)
	}
	return env{app: storetest.Conn(t, d.AppDSN), owner: owner}
}

var quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

func (e env) runner(t *testing.T, cfg jobs.Config, reg prometheus.Registerer) *jobs.Runner {
	t.Helper()
	return e.runnerLogging(t, quiet, cfg, reg)
}

// runnerLogging is runner writing its lines to logger.
func (e env) runnerLogging(t *testing.T, logger *slog.Logger, cfg jobs.Config, reg prometheus.Registerer) *jobs.Runner {
	t.Helper()
	r, err := jobs.New(e.app, logger, cfg, reg, func(w *river.Workers) {
		river.AddWorker(w, &recordWorker{db: e.app})
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (e env) start(t *testing.T, cfg jobs.Config, reg prometheus.Registerer) *jobs.Runner {
	t.Helper()
	return e.started(t, e.runner(t, cfg, reg))
}

// started starts r, to be stopped when the test ends.
func (e env) started(t *testing.T, r *jobs.Runner) *jobs.Runner {
	t.Helper()
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r.Stop(ctx)
	})
	return r
}

// insert enqueues args in a transaction of the app role that commits or rolls back.
func (e env) insert(t *testing.T, r *jobs.Runner, args recordArgs, commit bool) {
	t.Helper()
	ctx := context.Background()
	tx, err := e.app.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.InsertTx(ctx, tx, args); err != nil {
		tx.Rollback()
		t.Fatal(err)
	}
	if commit {
		err = tx.Commit()
	} else {
		err = tx.Rollback()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// runs answers how many times the job named name has run to completion.
func (e env) runs(t *testing.T, name string) int {
	t.Helper()
	var n int
	if err := e.owner.QueryRow(`SELECT count(*) FROM job_runs WHERE name = $1`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitRuns waits until the job named name has run want times, within limit.
func (e env) waitRuns(t *testing.T, name string, want int, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		n := e.runs(t, name)
		if n == want {
			return time.Since(start)
		}
		if n > want || time.Since(start) > limit {
			t.Fatalf("job %q ran %d times after %v, want %d", name, n, time.Since(start), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCommittedJobRunsRolledBackNever(t *testing.T) {
	e := newEnv(t)
	r := e.start(t, jobs.Config{Workers: jobs.DefaultWorkers}, nil)
	e.insert(t, r, recordArgs{Name: "rolled-back"}, false)
	e.insert(t, r, recordArgs{Name: "committed"}, true)
	took := e.waitRuns(t, "committed", 1, 2*time.Second)
	t.Logf("committed job ran after %v", took)
	// The rolled-back job was inserted first; the committed one has run, so a rolled-back
	// job that existed would have run too. River's table has no trace of it.
	time.Sleep(3 * jobs.DefaultPollInterval)
	if n := e.runs(t, "rolled-back"); n != 0 {
		t.Fatalf("rolled-back job ran %d times", n)
	}
	var n int
	if err := e.owner.QueryRow(`SELECT count(*) FROM river_job WHERE args->>'name' = 'rolled-back'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d river_job rows for the rolled-back job", n)
	}
}

func TestFailedJobRetriedWithBackoffAndCounted(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	r := e.start(t, jobs.Config{Workers: jobs.DefaultWorkers, RetryBase: 300 * time.Millisecond}, reg)
	e.insert(t, r, recordArgs{Name: "flaky", Fail: 2}, true)
	e.waitRuns(t, "flaky", 1, 10*time.Second)

	var attempt int
	var started, finished time.Time
	if err := e.owner.QueryRow(`SELECT r.attempt, j.created_at, r.at FROM job_runs r
		JOIN river_job j ON j.args->>'name' = r.name WHERE r.name = 'flaky'`).Scan(&attempt, &started, &finished); err != nil {
		t.Fatal(err)
	}
	if attempt != 3 {
		t.Fatalf("succeeded at attempt %d, want 3", attempt)
	}
	// Two retries: 300 ms, then 600 ms.
	if d := finished.Sub(started); d < 900*time.Millisecond {
		t.Fatalf("three attempts took %v: retries did not back off", d)
	}
	waitMetric(t, func() float64 {
		return testutil.ToFloat64(collectorOf(t, reg, "messenger_job_failures_total"))
	}, 2)
}

func TestJobSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	// The first process stops before it works the job: here it has no workers at all, as a
	// process killed between the commit and the fetch.
	first := e.runner(t, jobs.Config{Workers: 0}, nil)
	if err := first.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.insert(t, first, recordArgs{Name: "survivor"}, true)
	if err := first.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * jobs.DefaultPollInterval)
	if n := e.runs(t, "survivor"); n != 0 {
		t.Fatalf("job ran %d times without workers", n)
	}

	e.start(t, jobs.Config{Workers: jobs.DefaultWorkers}, nil)
	e.waitRuns(t, "survivor", 1, 3*time.Second)
	time.Sleep(5 * jobs.DefaultPollInterval)
	if n := e.runs(t, "survivor"); n != 1 {
		t.Fatalf("job ran %d times after the restart, want exactly 1", n)
	}
}

func TestInterruptedJobRunsAgainAfterRestart(t *testing.T) {
	e := newEnv(t)
	first := e.runner(t, jobs.Config{Workers: jobs.DefaultWorkers, RetryBase: 100 * time.Millisecond}, nil)
	if err := first.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.insert(t, first, recordArgs{Name: "interrupted", Hold: 3 * time.Second}, true)
	waitState(t, e.owner, "interrupted", "running")
	// Shutdown runs out of patience: the running job is cancelled, not lost.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := first.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v, want the deadline", err)
	}
	if n := e.runs(t, "interrupted"); n != 0 {
		t.Fatalf("cancelled job recorded %d runs", n)
	}
	e.start(t, jobs.Config{Workers: jobs.DefaultWorkers}, nil)
	e.waitRuns(t, "interrupted", 1, 10*time.Second)
}

func TestStopWaitsForRunningJob(t *testing.T) {
	e := newEnv(t)
	r := e.runner(t, jobs.Config{Workers: jobs.DefaultWorkers}, nil)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.insert(t, r, recordArgs{Name: "slow", Hold: time.Second}, true)
	waitState(t, e.owner, "slow", "running")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.runs(t, "slow"); n != 1 {
		t.Fatalf("after Stop the running job has run %d times, want 1", n)
	}
}

func TestQueueDepthMetric(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	r := e.runner(t, jobs.Config{Workers: 0}, reg)
	e.insert(t, r, recordArgs{Name: "a"}, true)
	e.insert(t, r, recordArgs{Name: "b"}, true)
	want := `
# HELP messenger_jobs Jobs waiting or running, by kind and state (available, running, retryable, scheduled).
# TYPE messenger_jobs gauge
messenger_jobs{kind="test_record",state="available"} 2
# HELP messenger_jobs_scrape_error 1 when the queue depth could not be read at this scrape.
# TYPE messenger_jobs_scrape_error gauge
messenger_jobs_scrape_error 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "messenger_jobs", "messenger_jobs_scrape_error"); err != nil {
		t.Fatal(err)
	}
}

func TestMigrationsIdempotentAndAppRoleLimited(t *testing.T) {
	e := newEnv(t)
	d := storetest.NewDatabase(t)
	for range 2 {
		if err := store.Migrate(context.Background(), d.OwnerDSN, quiet); err != nil {
			t.Fatalf("migrate again: %v", err)
		}
	}
	for _, stmt := range []string{
		`DROP TABLE river_job`,
		`TRUNCATE river_job`,
		`ALTER TABLE river_job ADD COLUMN x int`,
		`DELETE FROM river_migration`,
		`REINDEX TABLE river_job`,
	} {
		if _, err := e.app.Exec(stmt); err == nil || !strings.Contains(err.Error(), "must be owner") && !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("app role: %s = %v, want refused", stmt, err)
		}
	}
}

func waitState(t *testing.T, db *sql.DB, name, state string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var got string
		err := db.QueryRow(`SELECT state::text FROM river_job WHERE args->>'name' = $1`, name).Scan(&got)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			t.Fatal(err)
		}
		if got == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %q is %q, want %q", name, got, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitMetric(t *testing.T, value func() float64, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := value()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metric = %v, want %v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// collectorOf answers the registered metric family named name as a collector.
func collectorOf(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	return gathered{reg, name}
}

type gathered struct {
	reg  *prometheus.Registry
	name string
}

func (g gathered) Describe(chan<- *prometheus.Desc) {}
func (g gathered) Collect(ch chan<- prometheus.Metric) {
	fams, _ := g.reg.Gather()
	for _, f := range fams {
		if f.GetName() != g.name {
			continue
		}
		// One value: the sum over the family's series (those of other kinds are at zero).
		sum := 0.0
		for _, m := range f.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(g.name, "", nil, nil), prometheus.CounterValue, sum)
	}
}

func TestQueueProbeRuns(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	e.start(t, jobs.Config{Workers: 1, ProbeInterval: 500 * time.Millisecond}, reg)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var completed int
		if err := e.owner.QueryRow(`SELECT count(*) FROM river_job WHERE kind = 'queue_probe' AND state = 'completed'`).Scan(&completed); err != nil {
			t.Fatal(err)
		}
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var last float64
		for _, f := range fams {
			if f.GetName() == "messenger_jobs_probe_last_run_timestamp_seconds" {
				last = f.GetMetric()[0].GetGauge().GetValue()
			}
		}
		// Run on start, then again after the interval: the schedule works, not only the start.
		if completed >= 2 && time.Since(time.Unix(int64(last), 0)) < 5*time.Second {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d probes completed, last run metric %v", completed, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestJobOfKilledProcessIsRescued(t *testing.T) {
	e := newEnv(t)
	inserter := e.runner(t, jobs.Config{Workers: 0}, nil)
	e.insert(t, inserter, recordArgs{Name: "orphan"}, true)
	// What kill -9 leaves behind: the job running, attempted long ago by a process now gone.
	if _, err := e.owner.Exec(`UPDATE river_job SET state = 'running', attempt = 1,
		attempted_at = now() - interval '10 minutes', attempted_by = '{killed}' WHERE args->>'name' = 'orphan'`); err != nil {
		t.Fatal(err)
	}
	e.start(t, jobs.Config{Workers: jobs.DefaultWorkers, JobTimeout: time.Second, RescueAfter: 2 * time.Second, RetryBase: 100 * time.Millisecond}, nil)
	e.waitRuns(t, "orphan", 1, 15*time.Second)
}

// TestScheduledJobsRunWhenDue: a job scheduled at least River's scheduler interval (5 s)
// ahead runs when it is due, not on a later round: each round makes available the jobs due
// within the next interval, and a fetch takes them once due. Of five jobs due 5 to 9 s after
// their insert, none starts more than a second late. (A job due sooner than a round may
// wait for the next one: the push's delay, 5 s by default, is not shorter.)
func TestScheduledJobsRunWhenDue(t *testing.T) {
	e := newEnv(t)
	r := e.start(t, jobs.Config{Workers: 2, PollInterval: 100 * time.Millisecond}, nil)
	start := time.Now()
	for i := 1; i <= 5; i++ {
		if _, err := r.Client().Insert(context.Background(), recordArgs{Name: fmt.Sprintf("due-%d", i)},
			&river.InsertOpts{ScheduledAt: start.Add(time.Duration(4+i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 5; i++ {
		e.waitRuns(t, fmt.Sprintf("due-%d", i), 1, 15*time.Second)
	}
	startedWhenDue(t, e.owner, "test_record")
}

// dueArgs is a recordArgs job whose insert makes it available at its time, unless its name
// is "scheduled" (AvailableAtItsTime's choice).
type dueArgs struct {
	recordArgs
}

func (dueArgs) Kind() string { return "test_due" }

func (dueArgs) Hooks() []rivertype.Hook {
	return []rivertype.Hook{jobs.AvailableAtItsTime(func(a rivertype.JobArgs) bool { return a.(dueArgs).Name != "scheduled" })}
}

type dueWorker struct {
	river.WorkerDefaults[dueArgs]
	record *recordWorker
}

func (w *dueWorker) Work(ctx context.Context, job *river.Job[dueArgs]) error {
	return w.record.Work(ctx, &river.Job[recordArgs]{JobRow: job.JobRow, Args: job.Args.recordArgs})
}

// TestAvailableAtItsTime: a job inserted available at a time ahead waits for it, as a
// scheduled one does, and runs when due; the metric counts it as scheduled meanwhile. The
// hook's choice leaves other jobs scheduled; a queue of Queues is worked beside the default.
func TestAvailableAtItsTime(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	r, err := jobs.New(e.app, quiet, jobs.Config{Workers: 1, PollInterval: 50 * time.Millisecond, Queues: map[string]int{"due": 1}},
		reg, func(w *river.Workers) {
			record := &recordWorker{db: e.app}
			river.AddWorker(w, record)
			river.AddWorker(w, &dueWorker{record: record})
		})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i, name := range []string{"early", "late", "scheduled"} {
		if _, err := r.Client().Insert(context.Background(), dueArgs{recordArgs{Name: name}},
			&river.InsertOpts{Queue: "due", ScheduledAt: start.Add(time.Duration(2+i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	states := map[string]string{}
	rows, err := e.owner.Query(`SELECT args->>'name', state FROM river_job WHERE kind = 'test_due'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name, state string
		if err := rows.Scan(&name, &state); err != nil {
			t.Fatal(err)
		}
		states[name] = state
	}
	rows.Close()
	if want := map[string]string{"early": "available", "late": "available", "scheduled": "scheduled"}; !maps.Equal(states, want) {
		t.Fatalf("states %v, want %v", states, want)
	}
	want := `
# HELP messenger_jobs Jobs waiting or running, by kind and state (available, running, retryable, scheduled).
# TYPE messenger_jobs gauge
messenger_jobs{kind="test_due",state="scheduled"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "messenger_jobs"); err != nil {
		t.Fatal(err)
	}
	e.started(t, r)
	for _, name := range []string{"early", "late", "scheduled"} {
		e.waitRuns(t, name, 1, 10*time.Second)
	}
	startedWhenDue(t, e.owner, "test_due")
}

// startedWhenDue checks that each job of kind started within a second after it was due.
func startedWhenDue(t *testing.T, db *sql.DB, kind string) {
	t.Helper()
	rows, err := db.Query(`SELECT args->>'name', extract(epoch FROM attempted_at - scheduled_at)
	                         FROM river_job WHERE kind = $1 ORDER BY scheduled_at`, kind)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var late float64
		if err := rows.Scan(&name, &late); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s started %.2f s after it was due", name, late)
		if late < 0 || late > 1 {
			t.Errorf("%s started %.2f s after it was due", name, late)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}
