// Package scan is a ClamAV clamd client that fails closed: a file is clean only when clamd
// says so in a well-formed reply; every other outcome (size limit, ERROR, timeout, a closed
// or refused connection, a reply it cannot read) is an error.
package scan

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// Defaults for Options: a zero field takes these.
const (
	// DefaultChunkSize is how many bytes go to clamd per INSTREAM chunk; it is also the only
	// buffer a scan holds, however large the file.
	DefaultChunkSize = 64 << 10
	// DefaultDialTimeout bounds connecting to clamd.
	DefaultDialTimeout = 5 * time.Second
	// DefaultTimeout bounds one command (a whole scan, a PING) when the caller's context
	// allows longer or has no deadline: a clamd that stops answering must not hold a job
	// forever.
	DefaultTimeout = 2 * time.Minute
	// MaxChunkSize is the largest chunk New accepts; clamd refuses a chunk longer than its
	// StreamMaxLength, and larger chunks only cost memory.
	MaxChunkSize = 1 << 20
)

// maxReply bounds a reply so a peer that is not clamd cannot make a scan read forever.
const maxReply = 4 << 10

// ErrSizeLimit means the stream was longer than clamd's StreamMaxLength: clamd answered
// "INSTREAM size limit exceeded. ERROR" and the file was not scanned.
var ErrSizeLimit = errors.New("scan: stream larger than clamd's StreamMaxLength")

// ErrScanner means clamd answered with an ERROR, or with a reply this client cannot read; the
// error's text carries the reply.
var ErrScanner = errors.New("scan: clamd gave no verdict")

// Options tunes a Client; zero fields take the Default constants.
type Options struct {
	// ChunkSize is the INSTREAM chunk length in bytes, at most MaxChunkSize.
	ChunkSize int
	// DialTimeout bounds connecting to clamd.
	DialTimeout time.Duration
	// Timeout bounds each command, on top of the caller's context.
	Timeout time.Duration
}

// Result is clamd's verdict on a stream that it scanned. Its zero value, which every error
// comes with, is neither clean nor infected, so a caller that forgets the error still does not
// pass a file.
type Result struct {
	// Clean is true only when clamd scanned the whole stream and found nothing.
	Clean bool
	// Signature is the name clamd reported, e.g. "Eicar-Signature.UNOFFICIAL"; empty when clean.
	Signature string
}

// Infected reports whether clamd found a signature.
func (r Result) Infected() bool { return r.Signature != "" }

// Client talks to one clamd; it opens a connection per command and is safe for concurrent use.
type Client struct {
	network, address string
	opts             Options
}

// New returns a Client for addr, "tcp://host:port" or "unix:///path/to/clamd.sock". It does
// not connect: use Ping to check that clamd answers.
func New(addr string, opts Options) (*Client, error) {
	c := &Client{opts: opts}
	if rest, ok := strings.CutPrefix(addr, "tcp://"); ok {
		if _, _, err := net.SplitHostPort(rest); err != nil {
			return nil, fmt.Errorf("scan: clamd address %q: %w", addr, err)
		}
		c.network, c.address = "tcp", rest
	} else if rest, ok := strings.CutPrefix(addr, "unix://"); ok && strings.HasPrefix(rest, "/") {
		c.network, c.address = "unix", rest
	} else {
		return nil, fmt.Errorf("scan: clamd address %q: want tcp://host:port or unix:///path", addr)
	}
	if c.opts.ChunkSize == 0 {
		c.opts.ChunkSize = DefaultChunkSize
	}
	if c.opts.ChunkSize < 0 || c.opts.ChunkSize > MaxChunkSize {
		return nil, fmt.Errorf("scan: chunk size %d: want 1..%d", c.opts.ChunkSize, MaxChunkSize)
	}
	if c.opts.DialTimeout <= 0 {
		c.opts.DialTimeout = DefaultDialTimeout
	}
	if c.opts.Timeout <= 0 {
		c.opts.Timeout = DefaultTimeout
	}
	return c, nil
}

// Addr returns the address the client was made for, as given to New.
func (c *Client) Addr() string { return c.network + "://" + c.address }

// Scan streams r to clamd with INSTREAM, one chunk at a time, and returns its verdict. It
// never holds more than one chunk of r. A Result comes back only when clamd scanned the whole
// stream; everything else is an error: ErrSizeLimit, ErrScanner, the context's error, or a
// network error. The context bounds the connection to clamd, not r's own reads.
func (c *Client) Scan(ctx context.Context, r io.Reader) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	conn, err := c.dial(ctx)
	if err != nil {
		return Result{}, err
	}
	defer conn.Close()

	// One buffer holds the length prefix and the chunk, so each chunk is one write.
	buf := make([]byte, 4+c.opts.ChunkSize)
	if _, err := io.WriteString(conn, "zINSTREAM\x00"); err != nil {
		return Result{}, c.afterWriteError(ctx, conn, err)
	}
	for {
		n, rerr := io.ReadFull(r, buf[4:])
		if n > 0 {
			binary.BigEndian.PutUint32(buf[:4], uint32(n))
			if _, err := conn.Write(buf[:4+n]); err != nil {
				return Result{}, c.afterWriteError(ctx, conn, err)
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return Result{}, fmt.Errorf("scan: reading the stream: %w", rerr)
		}
	}
	// A zero-length chunk ends the stream.
	if _, err := conn.Write([]byte{0, 0, 0, 0}); err != nil {
		return Result{}, c.afterWriteError(ctx, conn, err)
	}
	reply, err := readReply(conn)
	if err != nil {
		return Result{}, c.netError(ctx, "reading the verdict", err)
	}
	return parseVerdict(reply)
}

// Ping checks that clamd answers PING with PONG.
func (c *Client) Ping(ctx context.Context) error {
	reply, err := c.command(ctx, "zPING\x00")
	if err != nil {
		return err
	}
	if reply != "PONG" {
		return fmt.Errorf("%w: PING answered %q", ErrScanner, reply)
	}
	return nil
}

// Version returns clamd's VERSION reply, e.g. "ClamAV 1.4.6/0/…" (the middle number is the
// signature database's version, 0 for a private database).
func (c *Client) Version(ctx context.Context) (string, error) {
	reply, err := c.command(ctx, "zVERSION\x00")
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(reply, "ClamAV ") {
		return "", fmt.Errorf("%w: VERSION answered %q", ErrScanner, reply)
	}
	return reply, nil
}

func (c *Client) command(ctx context.Context, cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	conn, err := c.dial(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, cmd); err != nil {
		return "", c.netError(ctx, "sending "+strings.Trim(cmd, "z\x00"), err)
	}
	reply, err := readReply(conn)
	if err != nil {
		return "", c.netError(ctx, "reading the reply", err)
	}
	if strings.HasSuffix(reply, " ERROR") {
		return "", fmt.Errorf("%w: %q", ErrScanner, reply)
	}
	return reply, nil
}

// dial connects and ties the connection to ctx: its deadline becomes the connection's, and a
// cancellation unblocks any read or write at once.
func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: c.opts.DialTimeout}
	conn, err := d.DialContext(ctx, c.network, c.address)
	if err != nil {
		return nil, c.netError(ctx, "connecting to clamd", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	return &ctxConn{Conn: conn, stop: stop}, nil
}

type ctxConn struct {
	net.Conn
	stop func() bool
}

func (c *ctxConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// afterWriteError reads clamd's reply when a write fails: over StreamMaxLength clamd answers
// and closes, so the write fails with a broken pipe while the reason waits in the socket.
func (c *Client) afterWriteError(ctx context.Context, conn net.Conn, werr error) error {
	if ctx.Err() == nil {
		// The reply is already sent when the pipe is broken; do not wait long for one that
		// is not coming.
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		if reply, err := readReply(conn); err == nil {
			if _, perr := parseVerdict(reply); perr != nil {
				return perr
			}
			return fmt.Errorf("%w: %q before the stream ended", ErrScanner, reply)
		}
	}
	return c.netError(ctx, "sending the stream", werr)
}

// netError names the context's error when it is the cause, so callers can tell a timeout
// (errors.Is(err, context.DeadlineExceeded)) from a scanner that is down.
func (c *Client) netError(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("scan: %s: %w", op, cerr)
	}
	// The connection's deadline is the context's, and may fire a moment before the context
	// notices.
	if dl, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(dl.Add(-10*time.Millisecond)) {
		return fmt.Errorf("scan: %s: %w", op, context.DeadlineExceeded)
	}
	return fmt.Errorf("scan: %s: %w", op, err)
}

// readReply reads one NUL-terminated reply (the z-form of the commands). A reply cut short is
// an error, never a verdict.
func readReply(conn net.Conn) (string, error) {
	var reply []byte
	buf := make([]byte, 256)
	for {
		n, err := conn.Read(buf)
		reply = append(reply, buf[:n]...)
		if i := bytes.IndexByte(reply, 0); i >= 0 {
			return string(reply[:i]), nil
		}
		if len(reply) > maxReply {
			return "", fmt.Errorf("%w: reply longer than %d bytes", ErrScanner, maxReply)
		}
		if err == io.EOF {
			if len(reply) == 0 {
				return "", fmt.Errorf("%w: connection closed without a reply", ErrScanner)
			}
			return "", fmt.Errorf("%w: reply cut short: %q", ErrScanner, reply)
		}
		if err != nil {
			return "", err
		}
	}
}

// parseVerdict reads an INSTREAM reply: "stream: OK", "stream: NAME FOUND", or an ERROR.
func parseVerdict(reply string) (Result, error) {
	if strings.HasSuffix(reply, " ERROR") {
		if strings.Contains(reply, "size limit exceeded") {
			return Result{}, ErrSizeLimit
		}
		return Result{}, fmt.Errorf("%w: %q", ErrScanner, reply)
	}
	rest, ok := strings.CutPrefix(reply, "stream: ")
	if !ok {
		return Result{}, fmt.Errorf("%w: malformed reply %q", ErrScanner, reply)
	}
	if rest == "OK" {
		return Result{Clean: true}, nil
	}
	name, ok := strings.CutSuffix(rest, " FOUND")
	if !ok || name == "" || strings.ContainsAny(name, " \n") {
		return Result{}, fmt.Errorf("%w: malformed reply %q", ErrScanner, reply)
	}
	return Result{Signature: name}, nil
}
