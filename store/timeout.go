package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"net"
	"time"

	"github.com/lib/pq"

	"github.com/dreamseed/messenger"
)

// DefaultTimeout is how long the pool waits for PostgreSQL to answer when Open is given no
// Timeout (MESSENGER_DB_TIMEOUT's default).
const DefaultTimeout = 5 * time.Second

// Option sets how Open builds the pool.
type Option func(*options)

type options struct {
	timeout  time.Duration
	maxConns int
}

// Timeout bounds how long the pool waits for PostgreSQL: a statement sent must start being
// answered, and a connection must come free, within d. A stalled server (paused, a lost
// network, a stuck disk) then fails the transaction with EUNAVAILABLE instead of holding
// the request until it answers.
func Timeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// MaxConns bounds the pool's open (and idle) connections: several processes on one
// PostgreSQL must together stay under its max_connections.
func MaxConns(n int) Option {
	return func(o *options) { o.maxConns = n }
}

// Connector answers lib/pq's connector for dsn whose connections give up on a PostgreSQL
// silent for longer than timeout (see deadlineConn), for a pool of its own (sql.OpenDB).
func Connector(dsn string, timeout time.Duration) (driver.Connector, error) {
	c, err := pq.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	c.Dialer(&deadlineDialer{timeout: timeout})
	return c, nil
}

// deadlineDialer is lib/pq's dialer with a read deadline on every connection it makes.
// lib/pq gives up on nothing by itself: a cancelled context sends a cancel request over a
// new connection, which a stalled server does not answer either.
type deadlineDialer struct {
	d       net.Dialer
	timeout time.Duration
}

func (d *deadlineDialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

func (d *deadlineDialer) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return d.DialContext(ctx, network, address)
}

// DialContext connects within the timeout (or the context's earlier end).
func (d *deadlineDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	c, err := d.d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return &deadlineConn{Conn: c, timeout: d.timeout}, nil
}

// deadlineConn is a connection to PostgreSQL on which the server may stay silent at most
// timeout once it has been sent something: each write sets the read deadline, and each
// read that brings bytes moves it on, so a long result that keeps arriving is not cut.
// An idle pooled connection reads nothing and so never times out. A read past the
// deadline fails with an i/o timeout, and lib/pq marks the connection bad (database/sql
// discards it).
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

func (c *deadlineConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && err == nil {
		err = c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	}
	return n, err
}

// errPoolWait is the cause of an unavailable error whose transaction found no free
// connection within the timeout.
var errPoolWait = errors.New("no database connection came free within the timeout")

// unavailableError is EUNAVAILABLE for the user and its cause for the log.
type unavailableError struct {
	domain *messenger.Error
	cause  error
}

func (e *unavailableError) Error() string {
	return "database not answering: " + e.cause.Error()
}

// Unwrap answers both: errors.As finds the domain error (its code and words), errors.Is
// the cause.
func (e *unavailableError) Unwrap() []error { return []error{e.domain, e.cause} }

// unavailable turns a failure to hear from PostgreSQL in time into EUNAVAILABLE.
func unavailable(cause error) error {
	return &unavailableError{domain: messenger.Errorf(messenger.EUNAVAILABLE, "error.unavailable"), cause: cause}
}

// isTimeout reports whether err is PostgreSQL not answering within the timeout.
func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, errPoolWait) || (errors.As(err, &netErr) && netErr.Timeout())
}
