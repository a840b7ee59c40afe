package upload

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
)

// StripJPEGMetadata copies the JPEG read from r to w without its metadata, losslessly: the
// compressed image data is copied byte for byte. It drops APP1 (EXIF with GPS, XMP), APP13
// (IPTC), comments, JFXX thumbnails (which may show what an edit cropped away), the
// Multi-Picture index and vendor segments (APP3–APP12, APP15), and everything after the EOI
// (camera previews and motion-photo videos, each with its own EXIF). It keeps JFIF (APP0),
// the ICC colour profile (APP2) and Adobe's colour transform (APP14), which decoding needs.
// A photo taken sideways stays upright: its EXIF block is replaced by one holding only the
// orientation. On error, w holds a partial copy that must not be used.
func StripJPEGMetadata(r io.Reader, w io.Writer) error {
	return copyJPEG(r, w, true)
}

// StripPNGMetadata copies the PNG read from r to w with only the chunks that draw the
// picture (pngKept), each byte for byte, and nothing after IEND: text (tEXt, iTXt, zTXt:
// XMP), EXIF under any of its names (eXIf, and exIf or zxIf from before it was
// registered), time stamps, content credentials (caBX) and every private or unknown chunk
// are left out. On error, w holds a partial copy that must not be used.
func StripPNGMetadata(r io.Reader, w io.Writer) error {
	_, err := copyPNG(r, w, true)
	return err
}

// JPEGOrientation answers the EXIF orientation (1–8, 1 when absent or unreadable) of the
// JPEG read from r, so that a thumbnail can be turned upright after the metadata is gone.
// It reads only the segments before the image data.
func JPEGOrientation(r io.Reader) (int, error) {
	c := newCounter(r)
	soi := make([]byte, 2)
	if err := c.readFull(soi); err != nil {
		return 0, err
	}
	if soi[0] != 0xFF || soi[1] != 0xD8 {
		return 0, errCorrupt
	}
	for {
		m, err := nextMarker(c)
		if err != nil {
			return 0, err
		}
		if m == 0xDA || m == 0xD9 {
			return 1, nil
		}
		if isStandalone(m) {
			continue
		}
		payload, err := readSegment(c)
		if err != nil {
			return 0, err
		}
		if m == 0xE1 && bytes.HasPrefix(payload, []byte("Exif\x00\x00")) {
			return exifOrientation(payload[6:]), nil
		}
	}
}

// exifOrientation reads tag 0x0112 of IFD0 in a TIFF structure, checking every bound.
func exifOrientation(tiff []byte) int {
	if len(tiff) < 8 {
		return 1
	}
	var order binary.ByteOrder
	switch string(tiff[:2]) {
	case "II":
		order = binary.LittleEndian
	case "MM":
		order = binary.BigEndian
	default:
		return 1
	}
	ifd := int64(order.Uint32(tiff[4:8]))
	if ifd+2 > int64(len(tiff)) {
		return 1
	}
	count := int64(order.Uint16(tiff[ifd:]))
	for i := int64(0); i < count; i++ {
		e := ifd + 2 + 12*i
		if e+12 > int64(len(tiff)) {
			return 1
		}
		if order.Uint16(tiff[e:]) == 0x0112 && order.Uint16(tiff[e+2:]) == 3 {
			if v := int(order.Uint16(tiff[e+8:])); v >= 1 && v <= 8 {
				return v
			}
			return 1
		}
	}
	return 1
}

// nextMarker reads a marker (0xFF, any fill bytes, the code) and answers its code.
func nextMarker(c *counter) (byte, error) {
	b, err := c.readByte()
	if err != nil {
		return 0, err
	}
	if b != 0xFF {
		return 0, errCorrupt
	}
	for b == 0xFF {
		if b, err = c.readByte(); err != nil {
			return 0, err
		}
	}
	if b == 0x00 {
		return 0, errCorrupt
	}
	return b, nil
}

// isStandalone reports whether marker m has no length and no payload (TEM, RSTn, SOI).
func isStandalone(m byte) bool { return m == 0x01 || (m >= 0xD0 && m <= 0xD8) }

// readSegment reads a segment's length and answers its payload.
func readSegment(c *counter) ([]byte, error) {
	var l [2]byte
	if err := c.readFull(l[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(l[:]))
	if n < 2 {
		return nil, errCorrupt
	}
	payload := make([]byte, n-2)
	if err := c.readFull(payload); err != nil {
		return nil, err
	}
	return payload, nil
}

// dropJPEGSegment decides which segments StripJPEGMetadata leaves out.
func dropJPEGSegment(m byte, payload []byte) bool {
	switch {
	case m == 0xE0:
		return !bytes.HasPrefix(payload, []byte("JFIF\x00"))
	case m == 0xE2:
		return !bytes.HasPrefix(payload, []byte("ICC_PROFILE\x00"))
	case m == 0xEE:
		return false
	case m >= 0xE1 && m <= 0xEF, m == 0xFE:
		return true
	}
	return false
}

// MaxJPEGScans is how many scans a JPEG may have. A progressive photo has about ten (libjpeg's
// default progression 10, mozjpeg's a few more); each scan costs a decoder a walk over every
// block of the picture, and an empty one costs the file only a few bytes, so without a bound
// a 3 MB upload of 200,000 scans keeps the thumbnail job's decoder busy for minutes, beyond
// its timeout (image/jpeg cannot be cancelled). A fixed sanity rule, ten times what real
// encoders write, like the cap on combining marks.
const MaxJPEGScans = 100

// errTooManyScans is a JPEG with more than MaxJPEGScans scans.
var errTooManyScans = errors.New("upload: JPEG has too many scans")

// copyJPEG follows a JPEG from SOI to EOI, writing it to w (without metadata when strip)
// and copying every scan's entropy-coded data as it is. It fails on a file that ends
// before its EOI, and on one with more than MaxJPEGScans scans.
func copyJPEG(r io.Reader, w io.Writer, strip bool) error {
	c := newCounter(r)
	bw := bufio.NewWriter(w)
	soi := make([]byte, 2)
	if err := c.readFull(soi); err != nil {
		return err
	}
	if soi[0] != 0xFF || soi[1] != 0xD8 {
		return errCorrupt
	}
	bw.Write(soi)
	var pending byte  // a marker found at the end of a scan
	oriented := false // the first EXIF block decided the orientation
	scans := 0
	for {
		m := pending
		pending = 0
		if m == 0 {
			var err error
			if m, err = nextMarker(c); err != nil {
				return err
			}
		}
		if m == 0xD9 {
			bw.Write([]byte{0xFF, 0xD9})
			return bw.Flush()
		}
		if isStandalone(m) {
			if m == 0xD8 {
				return errCorrupt
			}
			bw.Write([]byte{0xFF, m})
			continue
		}
		payload, err := readSegment(c)
		if err != nil {
			return err
		}
		if strip && m == 0xE1 && !oriented && bytes.HasPrefix(payload, []byte("Exif\x00\x00")) {
			oriented = true
			if o := exifOrientation(payload[6:]); o != 1 {
				payload, m = orientationOnlyExif(o), 0xE1
				writeSegment(bw, m, payload)
				continue
			}
		}
		if !strip || !dropJPEGSegment(m, payload) {
			writeSegment(bw, m, payload)
		}
		if m != 0xDA {
			continue
		}
		if scans++; scans > MaxJPEGScans {
			return errTooManyScans
		}
		// Entropy-coded data: copied as it is up to the next marker that is not a stuffed
		// zero or a restart.
		for pending == 0 {
			chunk, err := c.br.ReadSlice(0xFF)
			c.n += int64(len(chunk))
			if err == bufio.ErrBufferFull {
				bw.Write(chunk)
				continue
			}
			if err != nil {
				return errTruncated
			}
			bw.Write(chunk[:len(chunk)-1])
			next, err := c.readByte()
			for err == nil && next == 0xFF {
				next, err = c.readByte()
			}
			if err != nil {
				return err
			}
			if next == 0x00 || (next >= 0xD0 && next <= 0xD7) {
				bw.Write([]byte{0xFF, next})
				continue
			}
			pending = next
		}
	}
}

func writeSegment(w *bufio.Writer, m byte, payload []byte) {
	w.Write([]byte{0xFF, m, byte((len(payload) + 2) >> 8), byte(len(payload) + 2)})
	w.Write(payload)
}

// orientationOnlyExif is an APP1 payload whose EXIF holds nothing but orientation o.
func orientationOnlyExif(o int) []byte {
	le := binary.LittleEndian
	b := []byte("Exif\x00\x00II*\x00")
	b = le.AppendUint32(b, 8)
	b = le.AppendUint16(b, 1)
	b = le.AppendUint16(b, 0x0112)
	b = le.AppendUint16(b, 3)
	b = le.AppendUint32(b, 1)
	b = le.AppendUint32(b, uint32(o))
	return le.AppendUint32(b, 0)
}

// pngKept are the chunks StripPNGMetadata copies: the critical ones, transparency, colour
// (gamma, chromaticities, ICC profile, sRGB, coding-independent code points, HDR mastering
// and light levels), significant bits, background, histogram, pixel size, suggested
// palettes and APNG's animation chunks. A list of what to keep, not of what to drop:
// metadata has too many names.
var pngKept = map[string]bool{
	"IHDR": true, "PLTE": true, "IDAT": true, "IEND": true,
	"tRNS": true, "gAMA": true, "cHRM": true, "iCCP": true, "sRGB": true, "cICP": true, "mDCV": true,
	"mDCv": true, "cLLI": true, "cLLi": true, "sBIT": true, "bKGD": true, "hIST": true, "pHYs": true,
	"sPLT": true, "acTL": true, "fcTL": true, "fdAT": true,
}

// copyPNG follows a PNG's chunks to IEND, writing them to w (without metadata when strip),
// and answers the offset just after IEND.
func copyPNG(r io.Reader, w io.Writer, strip bool) (int64, error) {
	c := newCounter(r)
	bw := bufio.NewWriter(w)
	sig := make([]byte, len(pngSignature))
	if err := c.readFull(sig); err != nil {
		return 0, err
	}
	if !bytes.Equal(sig, pngSignature) {
		return 0, errCorrupt
	}
	bw.Write(sig)
	hdr := make([]byte, 8)
	for {
		if err := c.readFull(hdr); err != nil {
			return 0, err
		}
		n := binary.BigEndian.Uint32(hdr[:4])
		if n > 1<<31-1 {
			return 0, errCorrupt
		}
		typ := string(hdr[4:8])
		if strip && !pngKept[typ] {
			if err := c.discard(int(n) + 4); err != nil {
				return 0, err
			}
		} else {
			bw.Write(hdr)
			copied, err := io.CopyN(bw, c.br, int64(n)+4)
			c.n += copied
			if err != nil {
				return 0, errTruncated
			}
		}
		if typ == "IEND" {
			return c.n, bw.Flush()
		}
	}
}
