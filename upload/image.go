package upload

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/webp"

	"github.com/dreamseed/messenger"
)

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// markupMarkers are what a polyglot needs near an image's start to be read as a page or a
// script by a browser that sniffs (served files carry nosniff, this is the second wall).
// XMP packets ("<?xpacket", "<x:xmpmeta") are deliberately not among them.
var markupMarkers = [][]byte{
	[]byte("<script"), []byte("<html"), []byte("<svg"), []byte("<iframe"), []byte("<body"),
	[]byte("<!doctype"), []byte("<?php"), []byte("<object"), []byte("<embed"), []byte("javascript:"),
}

var (
	errTruncated = errors.New("upload: file ends too early")
	errCorrupt   = errors.New("upload: file is malformed")
)

func damaged() error {
	return messenger.Errorf(messenger.EINVALID, "error.image.damaged")
}

// detectImage checks an image in this order: markup in its first bytes, its header's
// dimensions against the pixel limit (no pixel decoded), then its structure to the end.
//
// The trailing-data rule: a PNG must end with IEND, a GIF with its trailer, a WebP with the
// end of its RIFF chunk; anything after is refused, since that is where a polyglot keeps its
// script or archive. A JPEG must reach its EOI (so a truncated one is refused) but may carry
// data after it: cameras append their Multi-Picture previews and phones their motion-photo
// videos there, and StripJPEGMetadata drops everything after the EOI anyway.
func detectImage(r io.ReaderAt, size int64, head []byte, kind Kind, limits Limits) (Info, error) {
	lower := bytes.ToLower(head)
	for _, m := range markupMarkers {
		if bytes.Contains(lower, m) {
			return Info{}, messenger.Errorf(messenger.EUNSUPPORTED, "error.image.script")
		}
	}
	decodeConfig := map[Kind]func(io.Reader) (image.Config, error){
		PNG: png.DecodeConfig, JPEG: jpeg.DecodeConfig, GIF: gif.DecodeConfig, WebP: webp.DecodeConfig,
	}[kind]
	cfg, err := decodeConfig(io.NewSectionReader(r, 0, size))
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 {
		return Info{}, damaged()
	}
	if int64(cfg.Width)*int64(cfg.Height) > limits.MaxPixels {
		return Info{}, messenger.Errorf(messenger.ETOOLARGE, "error.image.too_many_pixels",
			cfg.Width, cfg.Height, pixels(limits.MaxPixels))
	}
	var end int64
	switch kind {
	case PNG:
		end, err = copyPNG(io.NewSectionReader(r, 0, size), io.Discard, false)
	case GIF:
		end, err = walkGIF(io.NewSectionReader(r, 0, size))
	case WebP:
		// Its chunks must tile the RIFF chunk exactly, as the metadata stripper reads them.
		end = int64(binary.LittleEndian.Uint32(head[4:8])) + 8
		if end > size {
			err = errTruncated
		} else {
			_, err = riffChunks(io.NewSectionReader(r, 0, size))
		}
	case JPEG:
		err = copyJPEG(io.NewSectionReader(r, 0, size), io.Discard, false)
		end = size
	}
	if errors.Is(err, errTooManyScans) {
		return Info{}, messenger.Errorf(messenger.EUNSUPPORTED, "error.image.scans", MaxJPEGScans)
	}
	if err != nil {
		return Info{}, damaged()
	}
	if end != size {
		return Info{}, messenger.Errorf(messenger.EUNSUPPORTED, "error.image.trailing")
	}
	return Info{Kind: kind, Width: cfg.Width, Height: cfg.Height}, nil
}

// counter is a buffered reader that knows how many bytes it has consumed.
type counter struct {
	br *bufio.Reader
	n  int64
}

func newCounter(r io.Reader) *counter { return &counter{br: bufio.NewReader(r)} }

func (c *counter) readByte() (byte, error) {
	b, err := c.br.ReadByte()
	if err != nil {
		return 0, errTruncated
	}
	c.n++
	return b, nil
}

func (c *counter) readFull(p []byte) error {
	n, err := io.ReadFull(c.br, p)
	c.n += int64(n)
	if err != nil {
		return errTruncated
	}
	return nil
}

func (c *counter) discard(n int) error {
	d, err := c.br.Discard(n)
	c.n += int64(d)
	if err != nil {
		return errTruncated
	}
	return nil
}

// walkGIF follows a GIF's blocks to its trailer and answers the offset just after it.
func walkGIF(r io.Reader) (int64, error) {
	c := newCounter(r)
	hdr := make([]byte, 13)
	if err := c.readFull(hdr); err != nil {
		return 0, err
	}
	if hdr[10]&0x80 != 0 {
		if err := c.discard(3 << (hdr[10]&7 + 1)); err != nil {
			return 0, err
		}
	}
	skipSubBlocks := func() error {
		for {
			n, err := c.readByte()
			if err != nil || n == 0 {
				return err
			}
			if err := c.discard(int(n)); err != nil {
				return err
			}
		}
	}
	for {
		b, err := c.readByte()
		if err != nil {
			return 0, err
		}
		switch b {
		case 0x21: // extension: label, then sub-blocks
			if _, err := c.readByte(); err != nil {
				return 0, err
			}
		case 0x2C: // image descriptor, local colour table, LZW code size, then sub-blocks
			desc := make([]byte, 9)
			if err := c.readFull(desc); err != nil {
				return 0, err
			}
			// A frame outside the logical screen is what decoders refuse or allocate
			// beyond the checked dimensions for.
			le := binary.LittleEndian
			if int(le.Uint16(desc[0:]))+int(le.Uint16(desc[4:])) > int(le.Uint16(hdr[6:])) ||
				int(le.Uint16(desc[2:]))+int(le.Uint16(desc[6:])) > int(le.Uint16(hdr[8:])) {
				return 0, errCorrupt
			}
			if desc[8]&0x80 != 0 {
				if err := c.discard(3 << (desc[8]&7 + 1)); err != nil {
					return 0, err
				}
			}
			if _, err := c.readByte(); err != nil {
				return 0, err
			}
		case 0x3B:
			return c.n, nil
		default:
			return 0, errCorrupt
		}
		if err := skipSubBlocks(); err != nil {
			return 0, err
		}
	}
}

func pixels(n int64) string {
	if n%1_000_000 == 0 {
		return fmt.Sprintf("%d megapixels", n/1_000_000)
	}
	return fmt.Sprintf("%d pixels", n)
}
