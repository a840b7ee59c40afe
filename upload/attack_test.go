package upload

import (
	"bytes"
	"image/jpeg"
	"testing"
	"time"

	"github.com/dreamseed/messenger"
)

// bitWriter writes a JPEG scan's entropy-coded bits, most significant first, stuffing a
// zero after every 0xFF byte.
type bitWriter struct {
	out  []byte
	acc  uint32
	nacc uint
}

func (w *bitWriter) write(v uint32, n uint) {
	for i := int(n) - 1; i >= 0; i-- {
		w.acc = w.acc<<1 | (v>>uint(i))&1
		w.nacc++
		if w.nacc == 8 {
			b := byte(w.acc)
			w.out = append(w.out, b)
			if b == 0xFF {
				w.out = append(w.out, 0)
			}
			w.acc, w.nacc = 0, 0
		}
	}
}

func (w *bitWriter) flush() []byte {
	for w.nacc != 0 {
		w.write(1, 1)
	}
	return w.out
}

// progressiveScanBomb is a valid grey progressive JPEG of w×h pixels with one DC scan and
// then `scans` AC scans that each code every block of the image as empty with a few
// end-of-band runs: a handful of bytes per scan, each of which a decoder walks over every
// block of the image for.
func progressiveScanBomb(w, h, scans int) []byte {
	b := []byte{0xFF, 0xD8}
	dqt := append([]byte{0}, bytes.Repeat([]byte{1}, 64)...)
	b = append(b, jpegSegment(0xDB, dqt)...)
	b = append(b, jpegSegment(0xC2, []byte{8, byte(h >> 8), byte(h), byte(w >> 8), byte(w), 1, 1, 0x11, 0})...)
	// DC table 0: one code '0' for category 0. AC table 0: one code '0' for EOB14 (0xE0).
	dht := func(class byte, sym byte) []byte {
		counts := make([]byte, 16)
		counts[0] = 1
		return append(append([]byte{class << 4}, counts...), sym)
	}
	b = append(b, jpegSegment(0xC4, dht(0, 0))...)
	b = append(b, jpegSegment(0xC4, dht(1, 0xE0))...)
	blocks := ((w + 7) / 8) * ((h + 7) / 8)
	// The DC scan: every block's DC difference is 0.
	b = append(b, jpegSegment(0xDA, []byte{1, 1, 0x00, 0, 0, 0})...)
	var dc bitWriter
	for range blocks {
		dc.write(0, 1)
	}
	b = append(b, dc.flush()...)
	// AC scans: runs of 1<<14 + 0x2AAA empty blocks until every block is covered.
	const run = 1<<14 + 0x2AAA
	var ac bitWriter
	for left := blocks; left > 0; left -= run {
		ac.write(0, 1)
		ac.write(0x2AAA, 14)
	}
	data := ac.flush()
	sos := jpegSegment(0xDA, []byte{1, 1, 0x00, 1, 63, 0})
	for range scans {
		b = append(b, sos...)
		b = append(b, data...)
	}
	return append(b, 0xFF, 0xD9)
}

// TestDetectRefusesProgressiveScanBomb: a JPEG of a few megabytes made of tens of thousands
// of tiny progressive scans, within the pixel limit and under the upload limit, would keep
// the thumbnail job's decoder busy for minutes per attempt (Go's image/jpeg walks every
// block of the image for every scan and cannot be cancelled). Detect refuses it from its
// structure, before anything is stored; an ordinary progressive photo (about ten scans)
// still passes.
func TestDetectRefusesProgressiveScanBomb(t *testing.T) {
	limits := DefaultLimits()
	ok := progressiveScanBomb(64, 48, 10)
	if _, err := jpeg.Decode(bytes.NewReader(ok)); err != nil {
		t.Fatalf("the generator's JPEG does not decode: %v", err)
	}
	if info, err := Detect(bytes.NewReader(ok), int64(len(ok)), limits); err != nil || info.Kind != JPEG {
		t.Fatalf("a progressive JPEG of 10 scans: %+v, %v", info, err)
	}

	// One scan of a 2000×2000 picture costs Go's decoder about a millisecond: measured, so
	// the test shows what the bomb would cost without needing to run it.
	one := progressiveScanBomb(2000, 2000, 50)
	start := time.Now()
	if _, err := jpeg.Decode(bytes.NewReader(one)); err != nil {
		t.Fatalf("the generator's JPEG does not decode: %v", err)
	}
	perScan := time.Since(start) / 50
	bomb := progressiveScanBomb(2000, 2000, 200_000)
	t.Logf("%d bytes, %d scans of %v each: about %v of decoding", len(bomb), 200_000, perScan, perScan*200_000)
	if int64(len(bomb)) > limits.MaxBytes {
		t.Fatalf("the bomb is %d bytes, above the upload limit", len(bomb))
	}
	_, err := Detect(bytes.NewReader(bomb), int64(len(bomb)), limits)
	if code := messenger.ErrorCode(err); code != messenger.ETOOLARGE && code != messenger.EUNSUPPORTED {
		t.Fatalf("Detect of a progressive JPEG with 200,000 scans: %v, want too_large or unsupported", err)
	}
	var out bytes.Buffer
	if err := StripJPEGMetadata(bytes.NewReader(bomb), &out); err == nil {
		t.Error("StripJPEGMetadata copied a JPEG with 200,000 scans")
	}
}

// TestThumbnailsRefuseProgressiveScanBomb: Thumbnails, handed a stored JPEG that Detect
// never saw (its Info from the database), stops reading at the scan limit instead of
// decoding every scan.
func TestThumbnailsRefuseProgressiveScanBomb(t *testing.T) {
	bomb := progressiveScanBomb(2000, 2000, 200_000)
	start := time.Now()
	_, err := Thumbnails(bytes.NewReader(bomb), Info{Kind: JPEG, ContentType: "image/jpeg", Width: 2000, Height: 2000})
	if messenger.ErrorCode(err) != messenger.EINVALID {
		t.Errorf("Thumbnails of a scan bomb: %v, want invalid", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Thumbnails of a scan bomb took %v", d)
	}
	ok := progressiveScanBomb(64, 48, MaxJPEGScans-1) // and its DC scan
	if _, err := Thumbnails(bytes.NewReader(ok), Info{Kind: JPEG, ContentType: "image/jpeg", Width: 64, Height: 48}); err != nil {
		t.Errorf("Thumbnails of a JPEG with %d scans: %v", MaxJPEGScans, err)
	}
}

// TestStripPNGMetadataDropsEveryMetadataChunk: a PNG's EXIF (GPS) is not only in eXIf:
// software written before that chunk was registered stores it in exIf or zxIf, C2PA content
// credentials (caBX) may carry the place a photo was taken, and any private chunk can hold
// anything. The stored original keeps only the chunks that draw the picture.
func TestStripPNGMetadataDropsEveryMetadataChunk(t *testing.T) {
	plain := mustPNG(t, 20, 10)
	gps := exifWithGPS()[6:]
	for _, chunk := range [][]byte{
		pngChunk("exIf", gps),
		pngChunk("zxIf", gps),
		pngChunk("caBX", append([]byte("jumb c2pa stds.exif "), gps...)),
		pngChunk("gpsL", []byte("37.5665 N 126.9780 E")),
		pngChunk("vpAg", []byte{0, 0, 0, 20, 0, 0, 0, 10, 0}),
	} {
		var out bytes.Buffer
		if err := StripPNGMetadata(bytes.NewReader(insertPNGChunks(plain, chunk)), &out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), plain) {
			t.Errorf("the %s chunk survives the stripping", chunk[4:8])
		}
	}
	// What draws the picture stays, byte for byte.
	kept := insertPNGChunks(plain,
		pngChunk("gAMA", []byte{0, 0, 0xB1, 0x8F}),
		pngChunk("sRGB", []byte{0}),
		pngChunk("pHYs", []byte{0, 0, 0x0B, 0x13, 0, 0, 0x0B, 0x13, 1}),
	)
	var out bytes.Buffer
	if err := StripPNGMetadata(bytes.NewReader(kept), &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), kept) {
		t.Error("the stripping dropped a chunk that draws the picture")
	}
}
