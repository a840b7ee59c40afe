package upload

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"image"
	"image/gif"
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/image/webp"

	"github.com/dreamseed/messenger"
)

func TestDetectAccepts(t *testing.T) {
	jpg := mustJPEG(t, 64, 48)
	exifJPEG := append(append([]byte{0xFF, 0xD8}, jpegSegment(0xE1, exifWithGPS())...), jpg[2:]...)
	tests := []struct {
		name        string
		data        []byte
		kind        Kind
		contentType string
		w, h        int
	}{
		{"png", mustPNG(t, 30, 20), PNG, "image/png", 30, 20},
		{"jpeg", jpg, JPEG, "image/jpeg", 64, 48},
		{"jpeg with exif and gps", exifJPEG, JPEG, "image/jpeg", 64, 48},
		{"jpeg with a camera preview after its end", append(append([]byte{}, jpg...), mustJPEG(t, 8, 8)...), JPEG, "image/jpeg", 64, 48},
		{"gif", mustGIF(t, 17, 9), GIF, "image/gif", 17, 9},
		{"webp lossless", webpLossless, WebP, "image/webp", 1, 1},
		{"webp lossy", webpLossy, WebP, "image/webp", 1, 1},
		{"pdf", []byte("%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"), PDF, "application/pdf", 0, 0},
		{"docx", ooxml(t, "word/document.xml", docxMain), DOCX, "application/vnd.openxmlformats-officedocument.wordprocessingml.document", 0, 0},
		{"xlsx", ooxml(t, "xl/workbook.xml", xlsxMain), XLSX, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", 0, 0},
		{"pptx", ooxml(t, "ppt/presentation.xml", pptxMain), PPTX, "application/vnd.openxmlformats-officedocument.presentationml.presentation", 0, 0},
		{"hwpx", hwpx(t), HWPX, "application/hwp+zip", 0, 0},
		{"hwp", cfb("FileHeader", []byte("HWP Document File\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")), HWP, "application/x-hwp", 0, 0},
		{"txt utf-8 korean", []byte("가정통신문\r\n내일은 현장학습입니다.\tTab\f"), TXT, "text/plain; charset=utf-8", 0, 0},
		{"txt utf-8 with bom", []byte("\xEF\xBB\xBFhello"), TXT, "text/plain; charset=utf-8", 0, 0},
		{"txt utf-16le", []byte("\xFF\xFEa\x00\x00\xAC\n\x00"), TXT, "text/plain; charset=utf-16le", 0, 0},
		{"txt utf-16be with a surrogate pair", []byte("\xFE\xFF\x00a\xD8\x3D\xDE\x00"), TXT, "text/plain; charset=utf-16be", 0, 0},
		{"txt mentioning html later", []byte("Use <b> for bold."), TXT, "text/plain; charset=utf-8", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := Detect(bytes.NewReader(tt.data), int64(len(tt.data)), Limits{})
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			want := Info{Kind: tt.kind, ContentType: tt.contentType, Width: tt.w, Height: tt.h}
			if info != want {
				t.Fatalf("Detect = %+v, want %+v", info, want)
			}
		})
	}
}

func TestDetectRefuses(t *testing.T) {
	gifData := mustGIF(t, 10, 10)
	// A comment extension right after the global colour table, carrying a script.
	gctEnd := 13 + 3<<(gifData[10]&7+1)
	scriptGIF := append(append(append([]byte{}, gifData[:gctEnd]...),
		append([]byte{0x21, 0xFE, 25}, "<script>alert(1)</script>\x00"...)...), gifData[gctEnd:]...)
	if gifData[gctEnd] != 0x2C {
		t.Fatalf("expected the image descriptor after the colour table, found %#x", gifData[gctEnd])
	}
	bigFrame := append([]byte{}, gifData...)
	bigFrame[gctEnd+5] = 0xFF // the frame's width, inside a 10×10 screen
	jpg := mustJPEG(t, 64, 48)
	pngData := mustPNG(t, 10, 10)
	peHeader := append([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff"), "This program cannot be run in DOS mode."...)
	svg := []byte(`<?xml version="1.0" standalone="no"?>
<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(document.cookie)</script></svg>`)
	bombDoc := func() []byte {
		// 64 MiB of zeros deflate to ~64 KiB: a 1000:1 part inside a real DOCX.
		return ooxml(t, "word/document.xml", docxMain,
			zipEntry{name: "word/media/image1.bin", data: make([]byte, 64<<20), method: zip.Deflate})
	}
	many := []zipEntry{contentTypes("word/document.xml", docxMain), {name: "word/document.xml", data: []byte("<w/>")}}
	for i := range 20 {
		many = append(many, zipEntry{name: "word/media/" + strings.Repeat("x", i+1)})
	}
	loopingFAT := func(sector int) []byte {
		f := cfb("FileHeader", []byte("HWP Document File"))
		binary.LittleEndian.PutUint32(f[512+4*sector:], uint32(sector)) // the chain points at itself
		return f
	}
	withTrailer := func(b []byte, tail string) []byte { return append(append([]byte{}, b...), tail...) }
	tests := []struct {
		name   string
		data   []byte
		limits Limits
		code   string
	}{
		{"renamed windows executable", peHeader, Limits{}, messenger.EUNSUPPORTED},
		{"mach-o", []byte{0xCF, 0xFA, 0xED, 0xFE, 7, 0, 0, 1}, Limits{}, messenger.EUNSUPPORTED},
		{"shell script", []byte("#!/bin/sh\nrm -rf /\n"), Limits{}, messenger.EUNSUPPORTED},
		{"zip bomb inside a docx", bombDoc(), Limits{}, messenger.EUNSUPPORTED},
		{"docx unpacking past the total limit", ooxml(t, "word/document.xml", docxMain, zipEntry{name: "word/a.xml", data: make([]byte, 2000)}), Limits{MaxZipUncompressed: 1000}, messenger.EUNSUPPORTED},
		{"docx with too many parts", mustZip(t, many...), Limits{MaxZipEntries: 10}, messenger.EUNSUPPORTED},
		{"docx with a ../ part", ooxml(t, "word/document.xml", docxMain, zipEntry{name: "../../etc/cron.d/x", data: []byte("x")}), Limits{}, messenger.EUNSUPPORTED},
		{"docx with an absolute part", ooxml(t, "word/document.xml", docxMain, zipEntry{name: "/etc/passwd", data: []byte("x")}), Limits{}, messenger.EUNSUPPORTED},
		{"docm", ooxml(t, "word/document.xml", docmMain), Limits{}, messenger.EUNSUPPORTED},
		{"xlsm", ooxml(t, "xl/workbook.xml", xlsmMain), Limits{}, messenger.EUNSUPPORTED},
		{"docx carrying a vba project", ooxml(t, "word/document.xml", docxMain, zipEntry{name: "word/vbaProject.bin", data: []byte("x")}), Limits{}, messenger.EUNSUPPORTED},
		{"docx whose main part is missing", mustZip(t, contentTypes("word/document.xml", docxMain)), Limits{}, messenger.EUNSUPPORTED},
		{"plain zip", mustZip(t, zipEntry{name: "a.txt", data: []byte("hi")}), Limits{}, messenger.EUNSUPPORTED},
		{"docx with data after the archive", withTrailer(ooxml(t, "word/document.xml", docxMain), "<script>"), Limits{}, messenger.EUNSUPPORTED},
		{"hwpx with a wrong mimetype", mustZip(t, zipEntry{name: "mimetype", data: []byte("application/zip")}, zipEntry{name: "Contents/content.hpf"}), Limits{}, messenger.EUNSUPPORTED},
		{"old office file", cfb("WordDocument", []byte("Microsoft Word")), Limits{}, messenger.EUNSUPPORTED},
		{"compound file whose FileHeader is not HWP's", cfb("FileHeader", []byte("Something Else")), Limits{}, messenger.EUNSUPPORTED},
		{"hwp with a looping directory chain", loopingFAT(1), Limits{}, messenger.EUNSUPPORTED},
		{"hwp with a looping mini stream chain", loopingFAT(3), Limits{}, messenger.EUNSUPPORTED},
		{"hwp cut after its header", cfb("FileHeader", []byte("HWP Document File"))[:600], Limits{}, messenger.EUNSUPPORTED},
		{"60-megapixel png", pngHeaderOnly(10000, 6000), Limits{}, messenger.ETOOLARGE},
		{"png over a lowered limit", mustPNG(t, 20, 20), Limits{MaxPixels: 399}, messenger.ETOOLARGE},
		{"truncated jpeg", jpg[:len(jpg)/2], Limits{}, messenger.EINVALID},
		{"jpeg without its end", jpg[:len(jpg)-2], Limits{}, messenger.EINVALID},
		{"truncated png", pngData[:len(pngData)-20], Limits{}, messenger.EINVALID},
		{"truncated gif", gifData[:len(gifData)-5], Limits{}, messenger.EINVALID},
		{"gif frame wider than its screen", bigFrame, Limits{}, messenger.EINVALID},
		{"polyglot gif/js: script after the trailer", withTrailer(gifData, "*/=alert(1);"), Limits{}, messenger.EUNSUPPORTED},
		{"polyglot gif/js: script in a comment", scriptGIF, Limits{}, messenger.EUNSUPPORTED},
		{"png with a zip appended", withTrailer(pngData, string(mustZip(t, zipEntry{name: "a", data: []byte("b")}))), Limits{}, messenger.EUNSUPPORTED},
		{"png with html in a text chunk", insertPNGChunks(pngData, pngChunk("tEXt", []byte("Comment\x00<html><script>alert(1)</script>"))), Limits{}, messenger.EUNSUPPORTED},
		{"webp with trailing data", withTrailer(webpLossless, "<x>"), Limits{}, messenger.EUNSUPPORTED},
		{"svg", svg, Limits{}, messenger.EUNSUPPORTED},
		{"svg without a declaration", []byte("\n  <svg onload=alert(1)>"), Limits{}, messenger.EUNSUPPORTED},
		{"html", []byte("<!DOCTYPE html><html><body>hi</body></html>"), Limits{}, messenger.EUNSUPPORTED},
		{"heic", append([]byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"), make([]byte, 64)...), Limits{}, messenger.EUNSUPPORTED},
		{"text with a nul", []byte("hello\x00world"), Limits{}, messenger.EUNSUPPORTED},
		{"text with an escape sequence", []byte("hello \x1b[31mred"), Limits{}, messenger.EUNSUPPORTED},
		{"latin-1 bytes", []byte("caf\xe9"), Limits{}, messenger.EUNSUPPORTED},
		{"utf-16 with a lone surrogate", []byte("\xFF\xFE\x00\xD8a\x00"), Limits{}, messenger.EUNSUPPORTED},
		{"random binary", []byte{0x00, 0x01, 0x02, 0x03, 0xFF}, Limits{}, messenger.EUNSUPPORTED},
		{"empty", []byte{}, Limits{}, messenger.EINVALID},
	}
	// Part of the message, where the reason matters.
	says := map[string]string{
		"renamed windows executable":                "Programs",
		"zip bomb inside a docx":                    "zip bomb",
		"docx unpacking past the total limit":       "unpacks to more than",
		"docx with too many parts":                  "too many parts",
		"docx with a ../ part":                      "unsafe name",
		"docx with an absolute part":                "unsafe name",
		"docm":                                      "macros",
		"xlsm":                                      "macros",
		"docx carrying a vba project":               "macros",
		"60-megapixel png":                          "10000×6000",
		"png over a lowered limit":                  "399 pixels",
		"truncated jpeg":                            "incomplete",
		"polyglot gif/js: script after the trailer": "extra data",
		"polyglot gif/js: script in a comment":      "script",
		"png with a zip appended":                   "extra data",
		"svg":                                       "SVG",
		"svg without a declaration":                 "SVG",
		"heic":                                      "HEIC",
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := Detect(bytes.NewReader(tt.data), int64(len(tt.data)), tt.limits)
			if err == nil {
				t.Fatalf("Detect = %+v, want an error", info)
			}
			if got := messenger.ErrorCode(err); got != tt.code {
				t.Fatalf("code = %q (%v), want %q", got, err, tt.code)
			}
			if msg := messenger.ErrorMessage(err); msg == "" || strings.Contains(msg, "upload:") || !strings.Contains(msg, says[tt.name]) {
				t.Fatalf("message %q is not one for the user saying %q", msg, says[tt.name])
			}
		})
	}
}

// A real program, renamed to anything, is still a program.
func TestDetectRefusesTheTestBinary(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Detect(f, st.Size(), Limits{MaxBytes: st.Size()})
	if messenger.ErrorCode(err) != messenger.EUNSUPPORTED || !strings.Contains(messenger.ErrorMessage(err), "Programs") {
		t.Fatalf("Detect(test binary) = %v, want programs refused", err)
	}
}

// A file one byte over the limit is refused by its size alone, before a byte is read.
func TestDetectRefusesOversizeUnread(t *testing.T) {
	data := make([]byte, DefaultMaxBytes+1)
	copy(data, "%PDF-1.7\n")
	r := &readCounter{Reader: bytes.NewReader(data)}
	_, err := Detect(r, int64(len(data)), Limits{})
	if messenger.ErrorCode(err) != messenger.ETOOLARGE {
		t.Fatalf("Detect(10 MB + 1) = %v, want too large", err)
	}
	if r.reads != 0 {
		t.Fatalf("Detect read the oversize file %d times", r.reads)
	}
	if _, err := Detect(bytes.NewReader(data[:DefaultMaxBytes]), DefaultMaxBytes, Limits{}); err != nil {
		t.Fatalf("Detect(10 MB exactly) = %v, want accepted", err)
	}
}

// The 60-megapixel PNG is refused from its header: decoding it would take 240 MB.
func TestDetectPixelBombAllocatesLittle(t *testing.T) {
	data := pngHeaderOnly(10000, 6000)
	detect := func() {
		if _, err := Detect(bytes.NewReader(data), int64(len(data)), Limits{}); messenger.ErrorCode(err) != messenger.ETOOLARGE {
			t.Fatalf("Detect = %v, want too large", err)
		}
	}
	detect() // warm up lazily initialised tables
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	detect()
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Fatalf("refusing the pixel bomb allocated %d bytes, want under 1 MiB", alloc)
	}
}

func TestWebPSamplesDecode(t *testing.T) {
	for _, b := range [][]byte{webpLossless, webpLossy} {
		img, err := webp.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if img.Bounds() != image.Rect(0, 0, 1, 1) {
			t.Fatalf("bounds %v", img.Bounds())
		}
	}
}

// The GIF samples with a script are still GIFs a decoder reads: the refusal is by rule.
func TestPolyglotGIFsAreRealGIFs(t *testing.T) {
	g := mustGIF(t, 10, 10)
	if _, err := gif.Decode(bytes.NewReader(append(append([]byte{}, g...), "*/=alert(1);"...))); err != nil {
		t.Fatal(err)
	}
}
