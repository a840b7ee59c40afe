package upload

import (
	"archive/zip"
	"bytes"
	"testing"

	"github.com/dreamseed/messenger"
)

// FuzzDetect: Detect never panics, answers only domain errors for bytes in memory, and what
// it accepts is consistent: a known kind, its content type, dimensions within the limit for
// images and none for the rest; an accepted image can be stripped, and the stripped copy is
// accepted as the same kind and size.
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
	webpPhoto, _ := photoWebP(f)
	gifPhoto, _ := gifWithMetadata(f)
	f.Add(webpPhoto)
	f.Add(gifPhoto)
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
		if info.Kind.IsImage() {
			var stripped bytes.Buffer
			if err := StripMetadata(info.Kind, bytes.NewReader(data), &stripped); err != nil {
				t.Fatalf("accepted %s cannot be stripped: %v", info.Kind, err)
			}
			again, err := Detect(bytes.NewReader(stripped.Bytes()), int64(stripped.Len()), limits)
			if err != nil || again.Kind != info.Kind || again.Width != info.Width || again.Height != info.Height {
				t.Fatalf("stripped %s is %+v, %v; was %+v", info.Kind, again, err, info)
			}
		}
	})
}

// FuzzThumbnails: whatever Detect accepts as an image either gets its three thumbnails,
// each fitting its box as messenger.FitBox says for the display size, or a domain error;
// never a panic, never a thumbnail larger than its box.
func FuzzThumbnails(f *testing.F) {
	for _, seed := range [][]byte{
		mustPNG(f, 4, 3), mustJPEG(f, 9, 7), mustGIF(f, 5, 5), webpLossless, webpLossy,
		withExif(mustJPEG(f, 12, 5), 6), withExif(mustJPEG(f, 3, 8), 7), animatedWebP(f, 6, 4, red, blue),
	} {
		f.Add(seed)
	}
	limits := Limits{MaxBytes: 1 << 20, MaxPixels: 1 << 16}
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := Detect(bytes.NewReader(data), int64(len(data)), limits)
		if err != nil || !info.Kind.IsImage() {
			return
		}
		th, err := Thumbnails(bytes.NewReader(data), info)
		if err != nil {
			switch messenger.ErrorCode(err) {
			case messenger.EINVALID, messenger.EUNSUPPORTED:
				return
			}
			t.Fatalf("Thumbnails: %v", err)
		}
		if th.Width*th.Height != info.Width*info.Height || len(th.Items) != len(messenger.ThumbSizes) {
			t.Fatalf("Thumbnails = %dx%d, %d items, for %+v", th.Width, th.Height, len(th.Items), info)
		}
		for i, item := range th.Items {
			w, h := messenger.FitBox(th.Width, th.Height, messenger.ThumbEdge(messenger.ThumbSizes[i]))
			if item.Variant.Width != w || item.Variant.Height != h || len(item.Data) == 0 {
				t.Fatalf("thumbnail %+v, want %dx%d", item.Variant, w, h)
			}
		}
	})
}
