package handlers

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// A live stream spends nearly all its life waiting, and a process holds ten thousand of
// them. Served by net/http, each waits in its request's goroutine under the middleware's
// frames (a stack that grows to 16 KiB), beside net/http's goroutine reading the
// connection, with the connection's 4 KiB read buffer, 4 KiB write buffer and 2 KiB chunk
// buffer: more than the stream's own state. So once the headers and the catch-up have gone
// out through net/http, an HTTP/1.x stream takes its connection over (Hijack) and goes on
// from a goroutine of its own, writing its frames straight to the connection in HTTP/1.1
// chunks from a buffer it holds only while it writes, and a second goroutine reading the
// connection with a one-byte buffer, which ends the stream the moment the client goes.
// HTTP/2 (which has no hijacking) keeps the stream on net/http, as it is served before.

// streamOut is where a stream's frames go.
type streamOut interface {
	// Write adds raw to what the next Flush sends.
	Write(raw []byte) error
	// Flush sends what was written; a client that does not take it within the write timeout
	// fails it.
	Flush() error
}

// httpOut writes through net/http's response.
type httpOut struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration // of each write (Config.StreamWriteTimeout)
}

func newHTTPOut(w http.ResponseWriter, timeout time.Duration) *httpOut {
	return &httpOut{w: w, rc: http.NewResponseController(w), timeout: timeout}
}

func (o *httpOut) Write(raw []byte) error {
	o.rc.SetWriteDeadline(time.Now().Add(o.timeout))
	_, err := o.w.Write(raw)
	return err
}

func (o *httpOut) Flush() error { return o.rc.Flush() }

// connOut writes to a connection taken from net/http: the frames written since the last
// flush, in one chunk of the response's chunked body (HTTP/1.1), or as they are (HTTP/1.0,
// whose body ends when the connection closes).
type connOut struct {
	conn    net.Conn
	timeout time.Duration // of each flush (Config.StreamWriteTimeout)
	chunked bool
	buf     *[]byte // from outBuffers while frames wait, nil between flushes
}

// outBuffers are the frames' buffers of detached streams, held only from a write to its
// flush. Each starts with room for a chunk's size line, so that a flush is one write.
var outBuffers = sync.Pool{New: func() any { b := make([]byte, chunkHead, 1<<10); return &b }}

// chunkHead is the room for a chunk's size line before its frames: up to 16 hex digits
// and CRLF.
const chunkHead = 18

// maxPending sends the frames written so far once they are this large, before the flush.
const maxPending = 64 << 10

func (o *connOut) Write(raw []byte) error {
	if o.buf == nil {
		o.buf = outBuffers.Get().(*[]byte)
	}
	*o.buf = append(*o.buf, raw...)
	if len(*o.buf)-chunkHead >= maxPending {
		return o.Flush()
	}
	return nil
}

func (o *connOut) Flush() error {
	if o.buf == nil {
		return nil
	}
	b := o.buf
	o.buf = nil
	defer func() {
		if cap(*b) <= 2*maxPending {
			*b = (*b)[:chunkHead]
			outBuffers.Put(b)
		}
	}()
	frames := len(*b) - chunkHead
	if frames == 0 {
		return nil
	}
	out := (*b)[chunkHead:]
	if o.chunked {
		// The size line goes right before the frames, and CRLF after them: one write.
		var head [chunkHead]byte
		line := append(strconv.AppendInt(head[:0], int64(frames), 16), '\r', '\n')
		start := chunkHead - len(line)
		copy((*b)[start:], line)
		*b = append(*b, '\r', '\n')
		out = (*b)[start:]
	}
	o.conn.SetWriteDeadline(time.Now().Add(o.timeout))
	_, err := o.conn.Write(out)
	return err
}

// finish ends the response (the last chunk) and closes the connection.
func (o *connOut) finish() {
	if o.Flush() == nil && o.chunked {
		o.conn.SetWriteDeadline(time.Now().Add(time.Second))
		o.conn.Write([]byte("0\r\n\r\n"))
	}
	o.conn.Close()
}

// detach takes the stream's connection over from net/http and serves the rest of the
// stream from a goroutine of its own; it reports whether it did (not for HTTP/2, nor when
// the response cannot be hijacked, nor with MESSENGER_STREAMS_DETACH=0). The request's
// goroutine then returns: nothing of its request or echo context is touched again.
func (st *stream) detach() bool {
	if st.req.ProtoMajor != 1 || st.s.cfg.StreamsOnHTTP {
		return false
	}
	if err := st.out.Flush(); err != nil {
		return false
	}
	if !st.s.startDetached() {
		return false // the process is shutting down: the stream ends on net/http
	}
	// What Hijack hands over besides the connection is let go: bytes the client sent
	// after its request (a stream reads none) and a write buffer made for the caller.
	conn, _, err := st.out.(*httpOut).rc.Hijack()
	if err != nil {
		st.s.detached.Add(-2)
		return false
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(st.ctx))
	st.ctx = ctx
	out := &connOut{conn: conn, timeout: st.s.cfg.StreamWriteTimeout, chunked: st.req.ProtoAtLeast(1, 1)}
	st.out, st.req = out, nil
	go func() {
		// The client sends nothing on a stream: a read ends when it closes the connection
		// (or it breaks), which ends the stream at once, as net/http's reader did.
		defer st.s.detached.Done()
		defer cancel()
		var b [1]byte
		for {
			if _, err := conn.Read(b[:]); err != nil {
				return
			}
		}
	}()
	go func() {
		defer st.s.detached.Done()
		defer cancel()
		st.loop()
		out.finish()
		st.close()
	}()
	return true
}
