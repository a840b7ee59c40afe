package jobs

import (
	"context"
	"database/sql/driver"
	"errors"
)

// Connector wraps the connector of the runner's own pool: each of its connections commits
// without waiting for PostgreSQL to flush the commit to disk (synchronous_commit off).
//
// That pool carries River's own bookkeeping only: fetching a job (running), completing it,
// its retry, the leader's lease, the periodic inserts. Each of those commits would otherwise
// wait for a flush of the write-ahead log, a dozen a second beside the sends' own, and a
// send's commit that comes just after one waits for it too: with push on, the sends' p99
// showed it. A crash can forget the last fraction of a second of these commits, which
// leaves a job to run again: at least once, as every job is already run (a crash between
// a job's work and its completion does the same). Nothing else is at stake: a job's own
// work writes through the application's pool, and a job inserted with a message goes in
// that message's transaction, both flushed as usual; and the log is replayed in order, so a
// remembered completion never outlives the insert before it.
func Connector(c driver.Connector) driver.Connector { return asyncCommit{c} }

type asyncCommit struct{ driver.Connector }

func (c asyncCommit) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	ex, ok := conn.(driver.ExecerContext)
	if !ok {
		conn.Close()
		return nil, errors.New("jobs: the driver's connections cannot run a statement")
	}
	if _, err := ex.ExecContext(ctx, "SET synchronous_commit = off", nil); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}
