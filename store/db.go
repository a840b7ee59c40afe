// Package store is the PostgreSQL access of the messenger: hand-written SQL next to its
// scan, one file per aggregate. Every method runs inside a transaction scoped to one
// identity, so that row-level security sees who is asking.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/dreamseed/messenger"
)

// maxAttempts bounds how often a transaction is tried when PostgreSQL reports a transient
// failure: the first try and at most three retries.
const maxAttempts = 4

// retryBase is the wait before the first retry; the n-th waits n² times as long.
const retryBase = 10 * time.Millisecond

// DB is the application's connection pool. It connects as the messenger_app role, which
// owns nothing and is subject to row-level security.
type DB struct {
	db        *sqlx.DB
	prepared  preparedStatements
	retryBase time.Duration // a field, so a test can lengthen it for its pool alone
	timeout   time.Duration // the longest PostgreSQL may stay silent, and a connection busy
}

// DefaultMaxConns bounds a process's pool unless the MaxConns option says otherwise.
const DefaultMaxConns = 40

// Open connects to dsn and checks the connection. PostgreSQL must answer within
// DefaultTimeout, or the Timeout option's; the pool holds DefaultMaxConns connections, or
// the MaxConns option's.
func Open(ctx context.Context, dsn string, opts ...Option) (*DB, error) {
	o := options{timeout: DefaultTimeout, maxConns: DefaultMaxConns}
	for _, opt := range opts {
		opt(&o)
	}
	connector, err := Connector(dsn, o.timeout)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db := sqlx.NewDb(sql.OpenDB(connector), "postgres")
	db.SetMaxOpenConns(o.maxConns)
	db.SetMaxIdleConns(o.maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return &DB{db: db, retryBase: retryBase, timeout: o.timeout}, nil
}

// Close closes the pool.
func (db *DB) Close() error {
	db.closePrepared()
	return db.db.Close()
}

// Pool answers the underlying pool, for its statistics (collectors.NewDBStatsCollector):
// queries go through DB's methods, which set the caller's identity.
func (db *DB) Pool() *sql.DB { return db.db.DB }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.db.PingContext(ctx) }

// Tx is a transaction whose row-level security settings name one identity.
type Tx struct {
	tx *sqlx.Tx
	id messenger.Identity
	db *DB
}

// Identity answers who the transaction acts as.
func (tx *Tx) Identity() messenger.Identity { return tx.id }

// InTx runs fn in a transaction acting as id, and commits if fn succeeds. A transient
// failure (serialization failure, deadlock, a dropped connection) reruns the whole
// transaction, at most three times, so fn must not have effects outside it. PostgreSQL
// not answering within the pool's timeout is not retried (a stalled server would make
// every retry wait as long): it fails with EUNAVAILABLE. A transaction whose COMMIT timed
// out may have committed.
func (db *DB) InTx(ctx context.Context, id messenger.Identity, fn func(tx *Tx) error) error {
	_, err := db.InTxAttempts(ctx, id, maxAttempts, fn)
	return err
}

// InTxAttempts is InTx tried at most attempts times (InTx: 4, the first and three
// retries), and answers how many tries it took: a caller that splits a failed batch of
// sends into single ones gives them the tries the batch left.
func (db *DB) InTxAttempts(ctx context.Context, id messenger.Identity, attempts int, fn func(tx *Tx) error) (int, error) {
	var err error
	tries := min(max(attempts, 1), maxAttempts)
	for attempt := 1; attempt <= tries; attempt++ {
		err = db.inTx(ctx, id, fn)
		if err != nil && ctx.Err() != nil {
			return attempt, ctx.Err() // the request was abandoned: not a database failure
		}
		if err != nil && isTimeout(err) {
			return attempt, unavailable(err)
		}
		if err == nil || !isTransient(err) {
			return attempt, err
		}
		if attempt < tries { // no wait after the last try
			if err := wait(ctx, time.Duration(attempt*attempt)*db.retryBase); err != nil {
				return attempt, err
			}
		}
	}
	return tries, err
}

// wait waits d, or until ctx ends: a retry of an abandoned request is not waited for.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// MaxAttempts is how often InTx tries a transaction at most.
const MaxAttempts = maxAttempts

// IsTransient reports whether err is a failure that a retry of the transaction may not meet.
func IsTransient(err error) bool { return isTransient(err) }

func (db *DB) inTx(ctx context.Context, id messenger.Identity, fn func(tx *Tx) error) error {
	db.prepare(ctx)
	conn, err := db.conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	sqltx, err := conn.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer sqltx.Rollback()

	tx := &Tx{tx: sqltx, id: id, db: db}
	if id.UserID != 0 {
		if err := tx.ActAs(ctx, id); err != nil {
			return err
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := sqltx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// conn takes a connection from the pool, waiting at most the pool's timeout for one (or
// to open one): past it, every connection is held by a transaction PostgreSQL does not
// answer. The wait's bound is not the transaction's, which keeps the caller's context.
func (db *DB) conn(ctx context.Context) (*sqlx.Conn, error) {
	waitCtx, cancel := context.WithTimeout(ctx, db.timeout)
	defer cancel()
	conn, err := db.db.Connx(waitCtx)
	if err != nil && ctx.Err() == nil && waitCtx.Err() != nil {
		return nil, fmt.Errorf("%w: %w", errPoolWait, err)
	}
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return conn, nil
}

// ActAs names id as the transaction's user from here on, for row-level security and for
// the methods that write in the user's name: a transaction that writes for several
// users (a batch of sends) names each before writing for them.
func (tx *Tx) ActAs(ctx context.Context, id messenger.Identity) error {
	var user, org, zone string
	if err := tx.queryRow(ctx, sqlSetIdentity,
		strconv.FormatInt(id.UserID, 10), strconv.FormatInt(id.OrgID, 10), zoneSetting(id.ZoneID),
	).Scan(&user, &org, &zone); err != nil {
		return fmt.Errorf("set identity: %w", err)
	}
	tx.id = id
	return nil
}

// sqlSetIdentity names the transaction's user for row-level security.
const sqlSetIdentity = `SELECT set_config('app.user_id', $1, true), set_config('app.org_id', $2, true),
	       set_config('app.zone_id', $3, true)`

func zoneSetting(zoneID int64) string {
	if zoneID == 0 {
		return ""
	}
	return strconv.FormatInt(zoneID, 10)
}

// isTransient reports whether err is worth a retry of the whole transaction. A timeout is
// not: the server is stalled, not gone.
func isTransient(err error) bool {
	if isTimeout(err) {
		return false
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch pqErr.Code {
		case "40001", "40P01", "57P01", "57P02", "57P03": // serialization, deadlock, shutdown
			return true
		}
		return pqErr.Code.Class() == "08" // connection exception
	}
	var netErr net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF) || errors.As(err, &netErr)
}

// notFound turns sql.ErrNoRows into the domain's not-found error, worded by key.
func notFound(err error, key string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return messenger.Errorf(messenger.ENOTFOUND, key)
	}
	return err
}
