package handlers

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/labstack/echo/v5"
)

// minGzipBytes is the smallest body worth compressing: below about one packet gzip saves
// nothing a client would notice.
const minGzipBytes = 1400

// acceptsGzip reports whether the client takes a gzip-encoded answer (Accept-Encoding
// names gzip, or *, without q=0).
func acceptsGzip(c *echo.Context) bool {
	for _, part := range strings.Split(c.Request().Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name != "gzip" && name != "*" {
			continue
		}
		q := strings.TrimSpace(params)
		if v, ok := strings.CutPrefix(strings.ReplaceAll(q, " ", ""), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil && f == 0 {
				return false
			}
		}
		return true
	}
	return false
}

var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	return w
}}

// writeHTML sends a rendered page or fragment, gzip-encoded when the client asks and it
// is worth it. Only complete bodies come here: the event streams write their own frames
// and are never compressed, since each frame must reach the browser at once.
func writeHTML(c *echo.Context, status int, body []byte) error {
	h := c.Response().Header()
	h.Set("Content-Type", "text/html; charset=UTF-8")
	h.Add("Vary", "Accept-Encoding")
	if len(body) < minGzipBytes || !acceptsGzip(c) {
		h.Set("Content-Length", strconv.Itoa(len(body)))
		c.Response().WriteHeader(status)
		_, err := c.Response().Write(body)
		return err
	}
	buf := bodyBuffers.Get().(*bytes.Buffer)
	defer bodyBuffers.Put(buf)
	buf.Reset()
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(buf)
	if _, err := zw.Write(body); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	h.Set("Content-Encoding", "gzip")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	c.Response().WriteHeader(status)
	_, err := c.Response().Write(buf.Bytes())
	return err
}

var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// gzipParts is a page compressed once with holes in it: the deflate stream of each part
// between the holes, ended by a sync flush so that the next block starts on a byte. A
// request fills the holes with its own value (stored, uncompressed: a few bytes) and
// the page goes out as one gzip member without compressing it again. The CRC-32 of the
// whole is combined from each part's with a precomputed shift (zlib's crc32_combine),
// so the page's bytes need not be kept.
type gzipParts struct {
	parts [][]byte     // deflate stream of each part, sync-flushed
	crcs  []uint32     // CRC-32 of each part's text
	sizes []int        // length of each part's text
	shift [][32]uint32 // shift[i]: the CRC operator of len(part i) zero bytes (i >= 1)
	plain int          // length of the text without its holes
	wire  int          // compressed bytes without the holes
	raw   bool         // parts are the text itself, for a client without gzip (newRawParts)
}

// newRawParts keeps page split at each occurrence of hole, uncompressed, for a client that
// does not take gzip.
func newRawParts(page, hole []byte) *gzipParts {
	g := &gzipParts{raw: true}
	for _, t := range bytes.Split(page, hole) {
		g.parts = append(g.parts, bytes.Clone(t))
		g.plain += len(t)
	}
	g.wire = g.plain
	return g
}

// flateWriters keeps level-6 compressors between pages: each holds about a megabyte of
// state, which a page rendered afresh (a cache miss) would otherwise allocate and clear.
var flateWriters sync.Pool

// newGzipParts compresses page split at each occurrence of hole.
func newGzipParts(page, hole []byte) (*gzipParts, error) {
	texts := bytes.Split(page, hole)
	g := &gzipParts{}
	var buf bytes.Buffer
	fw, _ := flateWriters.Get().(*flate.Writer)
	if fw == nil {
		var err error
		if fw, err = flate.NewWriter(&buf, 6); err != nil {
			return nil, err
		}
	}
	defer flateWriters.Put(fw)
	for i, t := range texts {
		buf.Reset()
		fw.Reset(&buf)
		if _, err := fw.Write(t); err != nil {
			return nil, err
		}
		if err := fw.Flush(); err != nil {
			return nil, err
		}
		g.parts = append(g.parts, bytes.Clone(buf.Bytes()))
		g.crcs = append(g.crcs, crc32.ChecksumIEEE(t))
		g.sizes = append(g.sizes, len(t))
		var m [32]uint32
		if i > 0 {
			m = crc32ShiftOperator(int64(len(t)))
		}
		g.shift = append(g.shift, m)
		g.plain += len(t)
		g.wire += len(buf.Bytes())
	}
	return g, nil
}

// gzipHeader is a gzip member's header: deflate, no name, no time, unknown OS.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}

// finalBlock ends the deflate stream: an empty stored block marked last.
var finalBlock = []byte{0x01, 0x00, 0x00, 0xff, 0xff}

// size answers the length of the gzip member with every hole filled with a value of n
// bytes.
func (g *gzipParts) size(n int) int {
	holes := len(g.parts) - 1
	if g.raw {
		return g.wire + holes*n
	}
	return len(gzipHeader) + g.wire + holes*(5+n) + len(finalBlock) + 8
}

// writeTo writes the gzip member with every hole filled with value (at most 65535
// bytes).
func (g *gzipParts) writeTo(w io.Writer, value []byte) error {
	if g.raw {
		for i, p := range g.parts {
			if i > 0 {
				if _, err := w.Write(value); err != nil {
					return err
				}
			}
			if _, err := w.Write(p); err != nil {
				return err
			}
		}
		return nil
	}
	var stored [5]byte
	binary.LittleEndian.PutUint16(stored[1:], uint16(len(value)))
	binary.LittleEndian.PutUint16(stored[3:], ^uint16(len(value)))
	crc := g.crcs[0]
	total := g.sizes[0]
	bufs := make([][]byte, 0, 3*len(g.parts)+3)
	bufs = append(bufs, gzipHeader, g.parts[0])
	for i := 1; i < len(g.parts); i++ {
		bufs = append(bufs, stored[:], value, g.parts[i])
		crc = crc32.Update(crc, crc32.IEEETable, value)
		crc = gf2Times(&g.shift[i], crc) ^ g.crcs[i]
		total += len(value) + g.sizes[i]
	}
	var trailer [8]byte
	binary.LittleEndian.PutUint32(trailer[:4], crc)
	binary.LittleEndian.PutUint32(trailer[4:], uint32(total))
	bufs = append(bufs, finalBlock, trailer[:])
	for _, b := range bufs {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// gf2Times multiplies the GF(2) 32x32 matrix mat by vec.
func gf2Times(mat *[32]uint32, vec uint32) uint32 {
	var sum uint32
	for i := 0; vec != 0; i, vec = i+1, vec>>1 {
		if vec&1 != 0 {
			sum ^= mat[i]
		}
	}
	return sum
}

func gf2Square(square, mat *[32]uint32) {
	for n := 0; n < 32; n++ {
		square[n] = gf2Times(mat, mat[n])
	}
}

// crc32Combine answers the CRC-32 (IEEE) of A followed by B from crc1 of A, crc2 of B
// and B's length (zlib's crc32_combine).
func crc32Combine(crc1, crc2 uint32, len2 int64) uint32 {
	if len2 <= 0 {
		return crc1
	}
	var even, odd [32]uint32
	odd[0] = 0xedb88320 // the CRC-32 polynomial, reflected
	row := uint32(1)
	for n := 1; n < 32; n++ {
		odd[n] = row
		row <<= 1
	}
	gf2Square(&even, &odd) // two zero bits
	gf2Square(&odd, &even) // four zero bits
	for {
		gf2Square(&even, &odd)
		if len2&1 != 0 {
			crc1 = gf2Times(&even, crc1)
		}
		len2 >>= 1
		if len2 == 0 {
			break
		}
		gf2Square(&odd, &even)
		if len2&1 != 0 {
			crc1 = gf2Times(&odd, crc1)
		}
		len2 >>= 1
		if len2 == 0 {
			break
		}
	}
	return crc1 ^ crc2
}

// crc32ShiftOperator answers the matrix that takes the CRC-32 of A to the CRC-32 of A
// followed by n zero bytes, less the CRC of those zeros alone: crc32Combine with crc2 0,
// which is linear in crc1, applied to each bit.
func crc32ShiftOperator(n int64) [32]uint32 {
	var m [32]uint32
	for i := range m {
		m[i] = crc32Combine(1<<i, 0, n)
	}
	return m
}
