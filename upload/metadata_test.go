package upload

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/gif"
	"io"
	"testing"

	"github.com/gen2brain/webp"
	xwebp "golang.org/x/image/webp"
)

func riffChunkBytes(fourCC string, payload []byte) []byte {
	out := append([]byte(fourCC), binary.LittleEndian.AppendUint32(nil, uint32(len(payload)))...)
	out = append(out, payload...)
	if len(payload)%2 == 1 {
		out = append(out, 0)
	}
	return out
}

// photoWebP is an extended WebP as a camera app writes it: VP8X announcing EXIF and XMP,
// the picture, then an EXIF chunk with GPS (odd-sized, so padded) and an XMP chunk.
func photoWebP(t testing.TB) (photo, picture []byte) {
	t.Helper()
	var b bytes.Buffer
	if err := webp.Encode(&b, testPicture(64, 48), webp.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	picture = b.Bytes()
	vp8x := []byte{vp8xEXIF | vp8xXMP, 0, 0, 0, 63, 0, 0, 47, 0, 0}
	var body []byte
	body = append(body, "WEBP"...)
	body = append(body, riffChunkBytes("VP8X", vp8x)...)
	body = append(body, picture[12:]...) // the VP8 chunk
	body = append(body, riffChunkBytes("EXIF", append(exifWithGPS()[6:], 'x'))...)
	body = append(body, riffChunkBytes("XMP ", []byte("<x:xmpmeta><exif:GPSLatitude>37,33.998N</exif:GPSLatitude></x:xmpmeta>"))...)
	photo = append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
	return append(photo, body...), picture
}

// The EXIF (GPS) and XMP chunks go, their VP8X flags are cleared, the RIFF size is right,
// and the picture decodes to the same pixels; from a seekable reader (an uploaded part)
// and from a stream alike.
func TestStripWebPMetadataRemovesGPS(t *testing.T) {
	photo, picture := photoWebP(t)
	if _, err := Detect(bytes.NewReader(photo), int64(len(photo)), Limits{}); err != nil {
		t.Fatalf("the test photo is refused: %v", err)
	}
	for name, r := range map[string]func() io.Reader{
		"seekable": func() io.Reader { return bytes.NewReader(photo) },
		"stream":   func() io.Reader { return io.MultiReader(bytes.NewReader(photo)) },
	} {
		var out bytes.Buffer
		if err := StripWebPMetadata(r(), &out); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, secret := range []string{"EXIF", "XMP ", "WGS-84", "GPSLatitude"} {
			if bytes.Contains(out.Bytes(), []byte(secret)) {
				t.Errorf("%s: stripped WebP still contains %q", name, secret)
			}
		}
		b := out.Bytes()
		if got := binary.LittleEndian.Uint32(b[4:8]); int(got) != len(b)-8 {
			t.Errorf("%s: RIFF size %d for %d bytes", name, got, len(b))
		}
		if b[20]&(vp8xEXIF|vp8xXMP) != 0 {
			t.Errorf("%s: VP8X flags %#x still announce metadata", name, b[20])
		}
		if _, err := Detect(bytes.NewReader(b), int64(len(b)), Limits{}); err != nil {
			t.Errorf("%s: the stripped WebP is refused: %v", name, err)
		}
		want, err := xwebp.Decode(bytes.NewReader(picture))
		if err != nil {
			t.Fatal(err)
		}
		got, err := xwebp.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: stripped WebP does not decode: %v", name, err)
		}
		samePixels(t, want, got)
	}
	var out bytes.Buffer
	if err := StripWebPMetadata(bytes.NewReader(photo[:len(photo)-40]), &out); err == nil {
		t.Error("a truncated WebP was stripped without an error")
	}
}

// gifWithMetadata is a looping two-frame GIF carrying a comment and an XMP application
// extension after its colour table.
func gifWithMetadata(t testing.TB) (photo []byte, frames *gif.GIF) {
	t.Helper()
	pal := color.Palette{color.RGBA{}, color.RGBA{255, 0, 0, 255}, color.RGBA{0, 0, 255, 255}, color.RGBA{255, 255, 255, 255}}
	g := &gif.GIF{LoopCount: 0, Delay: []int{5, 5}}
	for i := range 2 {
		p := image.NewPaletted(image.Rect(0, 0, 20, 10), pal)
		for j := range p.Pix {
			p.Pix[j] = uint8((j + i) % 4)
		}
		g.Image = append(g.Image, p)
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, g); err != nil {
		t.Fatal(err)
	}
	plain := b.Bytes()
	at := 13
	if plain[10]&0x80 != 0 {
		at += 3 << (plain[10]&7 + 1)
	}
	comment := append([]byte{0x21, 0xFE, 20}, "taken at 37.5665 N  "...)
	comment = append(comment, 0)
	xmp := append([]byte{0x21, 0xFF, 11}, "XMP DataXMP"...)
	xmp = append(xmp, 9)
	xmp = append(xmp, "<x:GPS/>."...)
	xmp = append(xmp, 0)
	photo = append(append(append(append([]byte(nil), plain[:at]...), comment...), xmp...), plain[at:]...)
	return photo, g
}

// Comments and XMP go; the looping extension, every frame and the palette stay.
func TestStripGIFMetadata(t *testing.T) {
	photo, want := gifWithMetadata(t)
	if _, err := Detect(bytes.NewReader(photo), int64(len(photo)), Limits{}); err != nil {
		t.Fatalf("the test GIF is refused: %v", err)
	}
	var out bytes.Buffer
	if err := StripGIFMetadata(bytes.NewReader(photo), &out); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"37.5665", "XMP", "GPS"} {
		if bytes.Contains(out.Bytes(), []byte(secret)) {
			t.Errorf("stripped GIF still contains %q", secret)
		}
	}
	if !bytes.Contains(out.Bytes(), []byte("NETSCAPE2.0")) {
		t.Error("stripped GIF lost its looping extension")
	}
	if out.Len() != len(photo)-24-25 { // the comment and the XMP extension
		t.Errorf("stripped GIF has %d bytes, want %d", out.Len(), len(photo)-49)
	}
	got, err := gif.DecodeAll(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatalf("stripped GIF does not decode: %v", err)
	}
	if len(got.Image) != 2 || got.LoopCount != want.LoopCount {
		t.Fatalf("stripped GIF has %d frames, loop %d", len(got.Image), got.LoopCount)
	}
	for i := range got.Image {
		samePixels(t, want.Image[i], got.Image[i])
	}
	if err := StripGIFMetadata(bytes.NewReader(photo[:len(photo)-5]), io.Discard); err == nil {
		t.Error("a truncated GIF was stripped without an error")
	}
}

// StripMetadata strips each image kind and copies anything else byte for byte.
func TestStripMetadata(t *testing.T) {
	webpPhoto, _ := photoWebP(t)
	gifPhoto, _ := gifWithMetadata(t)
	jpegPhoto := withOrientation(t, testPicture(40, 30), 6)
	pngPhoto := insertPNGChunks(mustPNG(t, 8, 8), pngChunk("tEXt", []byte("GPS\x0037.5665 N")))
	for _, tc := range []struct {
		kind Kind
		data []byte
	}{{WebP, webpPhoto}, {GIF, gifPhoto}, {JPEG, jpegPhoto}, {PNG, pngPhoto}} {
		var out bytes.Buffer
		if err := StripMetadata(tc.kind, bytes.NewReader(tc.data), &out); err != nil {
			t.Fatalf("%s: %v", tc.kind, err)
		}
		if out.Len() >= len(tc.data) || bytes.Contains(out.Bytes(), []byte("GPS")) {
			t.Errorf("%s: not stripped (%d of %d bytes)", tc.kind, out.Len(), len(tc.data))
		}
		if _, err := Detect(bytes.NewReader(out.Bytes()), int64(out.Len()), Limits{}); err != nil {
			t.Errorf("%s: the stripped file is refused: %v", tc.kind, err)
		}
	}
	doc := []byte("%PDF-1.4\n% GPS 37.5665 N is in the document's text\n%%EOF")
	var out bytes.Buffer
	if err := StripMetadata(PDF, bytes.NewReader(doc), &out); err != nil || !bytes.Equal(out.Bytes(), doc) {
		t.Fatalf("a PDF was changed: %v", err)
	}
}
