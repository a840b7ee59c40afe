package upload

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"testing"
)

// Real WebP files, 1×1: a lossless (VP8L) and a lossy (VP8) one; TestWebPSamplesDecode
// proves they decode.
var (
	webpLossless = mustHex("524946461a000000574542505650384c0d0000002f00000010071011118888fe0700")
	webpLossy    = mustHex("52494646220000005745425056503820160000003001009d012a010001000ec0fe25a400037000000000")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// testPicture is a w×h gradient, so that a JPEG of it has real scan data.
func testPicture(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8((x + y) % 256), 255})
		}
	}
	return img
}

func mustPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, testPicture(w, h)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func mustJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, testPicture(w, h), &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func mustGIF(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewPaletted(image.Rect(0, 0, w, h), palette.Plan9)
	for y := range h {
		for x := range w {
			img.SetColorIndex(x, y, uint8(x+y))
		}
	}
	var b bytes.Buffer
	if err := gif.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// pngChunk builds one PNG chunk with its CRC.
func pngChunk(typ string, data []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	out = append(out, typ...)
	out = append(out, data...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(append([]byte(typ), data...)))
}

// pngHeaderOnly is a PNG of the given size with no pixel data: enough for its header to be
// real, so that refusing it proves nothing was decoded.
func pngHeaderOnly(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 6, 0, 0, 0) // 8-bit RGBA
	out := append([]byte(nil), pngSignature...)
	out = append(out, pngChunk("IHDR", ihdr)...)
	return append(out, pngChunk("IEND", nil)...)
}

// insertPNGChunks puts chunks right after IHDR (8 + 25 bytes).
func insertPNGChunks(p []byte, chunks ...[]byte) []byte {
	out := append([]byte(nil), p[:33]...)
	for _, c := range chunks {
		out = append(out, c...)
	}
	return append(out, p[33:]...)
}

// jpegSegment builds a marker segment with its length.
func jpegSegment(marker byte, payload []byte) []byte {
	n := len(payload) + 2
	return append([]byte{0xFF, marker, byte(n >> 8), byte(n)}, payload...)
}

// exifWithGPS is an APP1 payload: EXIF with orientation 6 and a GPS IFD (latitude
// 37°33'59.88" N, datum "WGS-84"), the kind of block a phone writes into a photo.
func exifWithGPS() []byte {
	le := binary.LittleEndian
	t := []byte("II*\x00")
	t = le.AppendUint32(t, 8)
	// IFD0 at 8: two entries, then next-IFD 0.
	t = le.AppendUint16(t, 2)
	entry := func(tag, typ uint16, count, value uint32) {
		t = le.AppendUint16(t, tag)
		t = le.AppendUint16(t, typ)
		t = le.AppendUint32(t, count)
		t = le.AppendUint32(t, value)
	}
	entry(0x0112, 3, 1, 6)  // Orientation: rotate 90° CW
	entry(0x8825, 4, 1, 38) // GPS IFD pointer
	t = le.AppendUint32(t, 0)
	// GPS IFD at 38: latitude ref, latitude (3 rationals at 80), map datum (at 104).
	t = le.AppendUint16(t, 3)
	entry(0x0001, 2, 2, uint32('N'))
	entry(0x0002, 5, 3, 80)
	entry(0x0012, 2, 7, 104)
	t = le.AppendUint32(t, 0)
	for _, r := range [][2]uint32{{37, 1}, {33, 1}, {5988, 100}} {
		t = le.AppendUint32(t, r[0])
		t = le.AppendUint32(t, r[1])
	}
	t = append(t, "WGS-84\x00"...)
	return append([]byte("Exif\x00\x00"), t...)
}

type zipEntry struct {
	name   string
	data   []byte
	method uint16
}

func mustZip(t testing.TB, entries ...zipEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, e := range entries {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: e.method})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func contentTypes(part, contentType string, extra ...string) zipEntry {
	x := `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/` + part + `" ContentType="` + contentType + `"/>`
	for _, e := range extra {
		x += e
	}
	return zipEntry{name: "[Content_Types].xml", data: []byte(x + "</Types>"), method: zip.Deflate}
}

const rels = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="%s"/></Relationships>`

// ooxml builds an Office document whose main part is part, declared as contentType.
func ooxml(t testing.TB, part, contentType string, more ...zipEntry) []byte {
	entries := append([]zipEntry{
		contentTypes(part, contentType),
		{name: "_rels/.rels", data: []byte(rels), method: zip.Deflate},
		{name: part, data: []byte(`<?xml version="1.0" encoding="UTF-8"?><root/>`), method: zip.Deflate},
	}, more...)
	return mustZip(t, entries...)
}

const (
	docxMain = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
	xlsxMain = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
	pptxMain = "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"
	docmMain = "application/vnd.ms-word.document.macroEnabled.main+xml"
	xlsmMain = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"
)

func hwpx(t testing.TB) []byte {
	return mustZip(t,
		zipEntry{name: "mimetype", data: []byte("application/hwp+zip"), method: zip.Store},
		zipEntry{name: "version.xml", data: []byte(`<?xml version="1.0"?><hv:HCFVersion/>`), method: zip.Deflate},
		zipEntry{name: "META-INF/container.xml", data: []byte(`<?xml version="1.0"?><ocf:container/>`), method: zip.Deflate},
		zipEntry{name: "Contents/content.hpf", data: []byte(`<?xml version="1.0"?><opf:package/>`), method: zip.Deflate},
		zipEntry{name: "Contents/section0.xml", data: []byte(`<?xml version="1.0"?><hs:sec>안녕하세요</hs:sec>`), method: zip.Deflate},
	)
}

// cfb builds a real compound file (CFB version 3, 512-byte sectors) with one stream,
// stored in the mini stream as HWP stores its FileHeader: sector 0 the FAT, 1 the
// directory, 2 the mini FAT, 3 the mini stream.
func cfb(streamName string, stream []byte) []byte {
	le := binary.LittleEndian
	const end, free, fatSect, noStream = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF
	stream = append(stream, make([]byte, 256-len(stream))...) // 4 mini sectors
	f := make([]byte, 512*5)
	h := f[:512]
	copy(h, cfbSignature)
	le.PutUint16(h[0x18:], 0x3E)
	le.PutUint16(h[0x1A:], 3)
	le.PutUint16(h[0x1C:], 0xFFFE)
	le.PutUint16(h[0x1E:], 9)
	le.PutUint16(h[0x20:], 6)
	le.PutUint32(h[0x2C:], 1)    // FAT sectors
	le.PutUint32(h[0x30:], 1)    // first directory sector
	le.PutUint32(h[0x38:], 4096) // mini stream cutoff
	le.PutUint32(h[0x3C:], 2)    // first mini FAT sector
	le.PutUint32(h[0x40:], 1)
	le.PutUint32(h[0x44:], end) // no DIFAT sectors
	le.PutUint32(h[0x4C:], 0)   // the FAT is sector 0
	for i := 1; i < 109; i++ {
		le.PutUint32(h[0x4C+4*i:], free)
	}
	sector := func(n int) []byte { return f[512*(n+1) : 512*(n+2)] }
	fat := sector(0)
	for i, v := range []uint32{fatSect, end, end, end} {
		le.PutUint32(fat[4*i:], v)
	}
	for i := 4; i < 128; i++ {
		le.PutUint32(fat[4*i:], free)
	}
	miniFAT := sector(2)
	for i, v := range []uint32{1, 2, 3, end} {
		le.PutUint32(miniFAT[4*i:], v)
	}
	for i := 4; i < 128; i++ {
		le.PutUint32(miniFAT[4*i:], free)
	}
	dir := sector(1)
	entry := func(i int, name string, typ byte, child, start, size uint32) {
		e := dir[128*i : 128*(i+1)]
		for j, c := range name {
			e[2*j] = byte(c)
		}
		if name != "" {
			le.PutUint16(e[0x40:], uint16(2*len(name)+2))
		}
		e[0x42] = typ
		e[0x43] = 1 // black
		le.PutUint32(e[0x44:], noStream)
		le.PutUint32(e[0x48:], noStream)
		le.PutUint32(e[0x4C:], child)
		le.PutUint32(e[0x74:], start)
		le.PutUint32(e[0x78:], size)
	}
	entry(0, "Root Entry", 5, 1, 3, 256)
	entry(1, streamName, 2, noStream, 0, 256)
	entry(2, "", 0, noStream, 0, 0)
	entry(3, "", 0, noStream, 0, 0)
	copy(sector(3), stream)
	return f
}

// readCounter is a real ReaderAt over b that records whether anything was read.
type readCounter struct {
	*bytes.Reader
	reads int
}

func (r *readCounter) ReadAt(p []byte, off int64) (int, error) {
	r.reads++
	return r.Reader.ReadAt(p, off)
}
