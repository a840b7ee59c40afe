package upload

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"os"
)

// StripMetadata copies the file of kind read from r to w without its metadata, losslessly
// (see StripJPEGMetadata, StripPNGMetadata, StripWebPMetadata, StripGIFMetadata); a file
// that is not an image is copied unchanged. On error, w holds a partial copy that must not
// be used.
func StripMetadata(kind Kind, r io.Reader, w io.Writer) error {
	switch kind {
	case JPEG:
		return StripJPEGMetadata(r, w)
	case PNG:
		return StripPNGMetadata(r, w)
	case WebP:
		return StripWebPMetadata(r, w)
	case GIF:
		return StripGIFMetadata(r, w)
	}
	_, err := io.Copy(w, r)
	return err
}

// webpKept are the RIFF chunks StripWebPMetadata copies: the image data (lossy, lossless,
// alpha, animation frames), the extended header and the colour profile, which decoding
// needs. EXIF and XMP (GPS, camera, editing history) and any unknown chunk are left out.
var webpKept = map[string]bool{"VP8X": true, "VP8 ": true, "VP8L": true, "ALPH": true, "ANIM": true, "ANMF": true, "ICCP": true}

// VP8X flags that announce the chunks StripWebPMetadata drops.
const (
	vp8xEXIF      = 0x08
	vp8xXMP       = 0x04
	vp8xAnimation = 0x02
)

type riffChunk struct {
	fourCC string
	size   uint32 // the payload's, without the pad byte
}

// StripWebPMetadata copies the WebP read from r to w without its EXIF and XMP chunks
// (and any chunk a decoder does not need), clearing their flags in the VP8X header and
// fixing the RIFF size; the image chunks are copied byte for byte. The RIFF size comes
// first in the file, so the chunks are read twice: r is read from twice when it is an
// io.ReadSeeker (an uploaded part is), else spooled to a temporary file first. Nothing
// after the RIFF chunk is copied. On error, w holds a partial copy that must not be used.
func StripWebPMetadata(r io.Reader, w io.Writer) error {
	rs, ok := r.(io.ReadSeeker)
	if !ok {
		tmp, err := os.CreateTemp("", "webp-strip-*")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		if _, err := io.Copy(tmp, r); err != nil {
			return err
		}
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return err
		}
		rs = tmp
	}
	start, err := rs.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	chunks, err := riffChunks(rs)
	if err != nil {
		return err
	}
	size := uint32(4) // "WEBP"
	for _, c := range chunks {
		if webpKept[c.fourCC] {
			size += 8 + c.size + c.size&1
		}
	}
	if _, err := rs.Seek(start+12, io.SeekStart); err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	bw.WriteString("RIFF")
	bw.Write(binary.LittleEndian.AppendUint32(nil, size))
	bw.WriteString("WEBP")
	br := bufio.NewReader(rs)
	for _, c := range chunks {
		n := int64(8 + c.size + c.size&1)
		if !webpKept[c.fourCC] {
			if _, err := br.Discard(int(n)); err != nil {
				return errTruncated
			}
			continue
		}
		if c.fourCC == "VP8X" {
			if err := copyVP8X(br, bw, n); err != nil {
				return err
			}
			continue
		}
		if _, err := io.CopyN(bw, br, n); err != nil {
			return errTruncated
		}
	}
	return bw.Flush()
}

// riffChunks reads a WebP's RIFF header and answers its chunks, seeking over their
// payloads.
func riffChunks(rs io.ReadSeeker) ([]riffChunk, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(rs, hdr[:]); err != nil {
		return nil, errTruncated
	}
	if string(hdr[:4]) != "RIFF" || string(hdr[8:]) != "WEBP" {
		return nil, errCorrupt
	}
	left := int64(binary.LittleEndian.Uint32(hdr[4:8])) - 4
	var chunks []riffChunk
	for left > 0 {
		var ch [8]byte
		if left < 8 {
			return nil, errCorrupt
		}
		if _, err := io.ReadFull(rs, ch[:]); err != nil {
			return nil, errTruncated
		}
		c := riffChunk{fourCC: string(ch[:4]), size: binary.LittleEndian.Uint32(ch[4:])}
		padded := int64(c.size) + int64(c.size&1)
		if 8+padded > left {
			return nil, errCorrupt
		}
		if _, err := rs.Seek(padded, io.SeekCurrent); err != nil {
			return nil, err
		}
		chunks = append(chunks, c)
		left -= 8 + padded
	}
	if len(chunks) == 0 {
		return nil, errCorrupt
	}
	return chunks, nil
}

// copyVP8X copies the extended header chunk (n bytes with its header) with the EXIF and
// XMP flags cleared.
func copyVP8X(br *bufio.Reader, w io.Writer, n int64) error {
	if n < 9 {
		return errCorrupt
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(br, b); err != nil {
		return errTruncated
	}
	b[8] &^= vp8xEXIF | vp8xXMP
	_, err := w.Write(b)
	return err
}

// StripGIFMetadata copies the GIF read from r to w without its comment extensions and its
// application extensions (XMP, vendor data) except NETSCAPE2.0, which makes an animation
// loop; the header, colour tables, graphic controls and frames are copied byte for byte, and
// nothing after the trailer. On error, w holds a partial copy that must not be used.
func StripGIFMetadata(r io.Reader, w io.Writer) error {
	c := newCounter(r)
	bw := bufio.NewWriter(w)
	hdr := make([]byte, 13)
	if err := c.readFull(hdr); err != nil {
		return err
	}
	if string(hdr[:6]) != "GIF87a" && string(hdr[:6]) != "GIF89a" {
		return errCorrupt
	}
	bw.Write(hdr)
	if hdr[10]&0x80 != 0 {
		if err := copyN(c, bw, 3<<(hdr[10]&7+1)); err != nil {
			return err
		}
	}
	for {
		b, err := c.readByte()
		if err != nil {
			return err
		}
		switch b {
		case 0x21:
			err = copyGIFExtension(c, bw)
		case 0x2C:
			err = copyGIFImage(c, bw)
		case 0x3B:
			bw.WriteByte(0x3B)
			return bw.Flush()
		default:
			return errCorrupt
		}
		if err != nil {
			return err
		}
	}
}

// copyGIFExtension copies (or drops) one extension, its introducer already read.
func copyGIFExtension(c *counter, w *bufio.Writer) error {
	label, err := c.readByte()
	if err != nil {
		return err
	}
	keep := label != 0xFE // comment
	var first []byte
	if label == 0xFF { // application: keep only the looping one
		n, err := c.readByte()
		if err != nil {
			return err
		}
		first = make([]byte, n)
		if err := c.readFull(first); err != nil {
			return err
		}
		keep = string(first) == "NETSCAPE2.0"
		first = append([]byte{n}, first...)
	}
	out := io.Discard
	if keep {
		out = w
		w.Write([]byte{0x21, label})
		w.Write(first)
	}
	return copySubBlocks(c, out)
}

// copyGIFImage copies an image descriptor, its local colour table and its data.
func copyGIFImage(c *counter, w *bufio.Writer) error {
	desc := make([]byte, 10) // descriptor (9) and the LZW code size
	if err := c.readFull(desc[:9]); err != nil {
		return err
	}
	w.WriteByte(0x2C)
	w.Write(desc[:9])
	if desc[8]&0x80 != 0 {
		if err := copyN(c, w, 3<<(desc[8]&7+1)); err != nil {
			return err
		}
	}
	lzw, err := c.readByte()
	if err != nil {
		return err
	}
	w.WriteByte(lzw)
	return copySubBlocks(c, w)
}

// copySubBlocks copies data sub-blocks up to and with the empty one that ends them.
func copySubBlocks(c *counter, w io.Writer) error {
	for {
		n, err := c.readByte()
		if err != nil {
			return err
		}
		w.Write([]byte{n})
		if n == 0 {
			return nil
		}
		if err := copyN(c, w, int(n)); err != nil {
			return err
		}
	}
}

func copyN(c *counter, w io.Writer, n int) error {
	copied, err := io.CopyN(w, c.br, int64(n))
	c.n += copied
	if err != nil {
		if errors.Is(err, io.EOF) {
			return errTruncated
		}
		return err
	}
	return nil
}
