package upload

import (
	"archive/zip"
	"bytes"
	"io"
	"testing"

	"github.com/dreamseed/messenger"
)

// FuzzDetect: Detect never panics, answers only domain errors for bytes in memory, and what
// it accepts is consistent: a known kind, its content type, dimensions within the limit for
// images and none for the rest; an accepted JPEG or PNG can be stripped.
func FuzzDetect(f *testing.F) {
	for _, seed := range [][]byte{
		mustPNG(f, 4, 3), mustJPEG(f, 9, 7), mustGIF(f, 5, 5), webpLossless, webpLossy,
		pngHeaderOnly(10000, 6000), []byte("%PDF-1.4\n%%EOF"), []byte("hello 안녕"), []byte("\xFF\xFEh\x00"),
		ooxml(f, "word/document.xml", docxMain), ooxml(f, "xl/workbook.xml", xlsxMain), hwpx(f),
		mustZip(f, zipEntry{name: "../a", data: []byte("x"), method: zip.Deflate}),
		cfb("FileHeader", []byte("HWP Document File")), []byte("MZ"), []byte("<svg/>"),
	} {
		f.Add(seed)
	}
	limits := Limits{MaxBytes: 1 << 20, MaxPixels: 1 << 20, MaxZipUncompressed: 8 << 20}
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := Detect(bytes.NewReader(data), int64(len(data)), limits)
		if err != nil {
			switch messenger.ErrorCode(err) {
			case messenger.EINVALID, messenger.EUNSUPPORTED, messenger.ETOOLARGE:
				return
			}
			t.Fatalf("Detect: %v", err)
		}
		if info.ContentType == "" || info.Kind.ContentType() == "application/octet-stream" {
			t.Fatalf("Detect = %+v", info)
		}
		if info.Kind.IsImage() {
			if info.Width <= 0 || info.Height <= 0 || int64(info.Width)*int64(info.Height) > limits.MaxPixels {
				t.Fatalf("Detect = %+v", info)
			}
		} else if info.Width != 0 || info.Height != 0 {
			t.Fatalf("Detect = %+v", info)
		}
		switch info.Kind {
		case JPEG:
			if err := StripJPEGMetadata(bytes.NewReader(data), io.Discard); err != nil {
				t.Fatalf("accepted JPEG cannot be stripped: %v", err)
			}
		case PNG:
			if err := StripPNGMetadata(bytes.NewReader(data), io.Discard); err != nil {
				t.Fatalf("accepted PNG cannot be stripped: %v", err)
			}
		}
	})
}
