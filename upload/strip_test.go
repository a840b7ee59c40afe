package upload

import (
	"bytes"
	"image"
	"image/jpeg"
	"image/png"
	"testing"
)

// A phone photo's EXIF block with GPS comes out of StripJPEGMetadata without a trace, the
// picture stays upright (orientation 6 kept in an EXIF block of its own) and decodes to the
// same pixels: the output is exactly the JPEG without its metadata segments, plus that block.
func TestStripJPEGMetadataRemovesGPS(t *testing.T) {
	plain := mustJPEG(t, 64, 48)
	var photo []byte
	photo = append(photo, 0xFF, 0xD8)
	photo = append(photo, jpegSegment(0xE1, exifWithGPS())...)
	photo = append(photo, jpegSegment(0xE1, []byte("http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta><exif:GPSLatitude>37,33.998N</exif:GPSLatitude></x:xmpmeta>"))...)
	photo = append(photo, jpegSegment(0xED, []byte("Photoshop 3.0\x008BIM caption: 서울 00초등학교"))...)
	photo = append(photo, jpegSegment(0xFE, []byte("taken at home, 12 Some-ro"))...)
	photo = append(photo, plain[2:]...)
	// A camera's second picture after the EOI, with its own EXIF.
	photo = append(photo, 0xFF, 0xD8)
	photo = append(photo, jpegSegment(0xE1, exifWithGPS())...)
	photo = append(photo, mustJPEG(t, 8, 8)[2:]...)

	orientation, err := JPEGOrientation(bytes.NewReader(photo))
	if err != nil || orientation != 6 {
		t.Fatalf("JPEGOrientation = %d, %v; want 6", orientation, err)
	}
	var out bytes.Buffer
	if err := StripJPEGMetadata(bytes.NewReader(photo), &out); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"WGS-84", "GPS", "xmpmeta", "8BIM", "서울", "Some-ro", "\x25\x00\x00\x00\x01\x00\x00\x00", "\x25\x88"} {
		if bytes.Contains(out.Bytes(), []byte(secret)) {
			t.Errorf("stripped JPEG still contains %q", secret)
		}
	}
	want := append(append([]byte{0xFF, 0xD8}, jpegSegment(0xE1, orientationOnlyExif(6))...), plain[2:]...)
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("stripped JPEG (%d bytes) differs from the JPEG without metadata (%d bytes)", out.Len(), len(want))
	}
	if o, err := JPEGOrientation(bytes.NewReader(out.Bytes())); err != nil || o != 6 {
		t.Fatalf("orientation after stripping = %d, %v; want 6", o, err)
	}
	samePixels(t, decodeJPEG(t, photo), decodeJPEG(t, out.Bytes()))
}

// What decoding needs stays: the JFIF header, the ICC profile and Adobe's colour transform;
// a JFXX thumbnail (an older picture) goes.
func TestStripJPEGMetadataKeepsColour(t *testing.T) {
	plain := mustJPEG(t, 16, 16)
	jfif := jpegSegment(0xE0, []byte("JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"))
	icc := jpegSegment(0xE2, []byte("ICC_PROFILE\x00\x01\x01fake-profile"))
	adobe := jpegSegment(0xEE, []byte("Adobe\x00\x64\x00\x00\x00\x00\x01"))
	jfxx := jpegSegment(0xE0, []byte("JFXX\x00\x10thumbnail"))
	var in, want []byte
	in = append(append(append(append(append([]byte{0xFF, 0xD8}, jfif...), jfxx...), icc...), adobe...), plain[2:]...)
	want = append(append(append(append([]byte{0xFF, 0xD8}, jfif...), icc...), adobe...), plain[2:]...)
	var out bytes.Buffer
	if err := StripJPEGMetadata(bytes.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatal("stripping changed what decoding needs")
	}
}

// An upright photo's EXIF block goes entirely.
func TestStripJPEGMetadataUprightDropsExif(t *testing.T) {
	plain := mustJPEG(t, 16, 16)
	exif := exifWithGPS()
	exif[6+8+2+8] = 1 // orientation 6 → 1
	in := append(append([]byte{0xFF, 0xD8}, jpegSegment(0xE1, exif)...), plain[2:]...)
	if o, err := JPEGOrientation(bytes.NewReader(in)); err != nil || o != 1 {
		t.Fatalf("JPEGOrientation = %d, %v; want 1", o, err)
	}
	var out bytes.Buffer
	if err := StripJPEGMetadata(bytes.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), plain) {
		t.Fatal("an upright photo kept an EXIF block")
	}
}

func TestStripJPEGMetadataRefusesTruncated(t *testing.T) {
	plain := mustJPEG(t, 32, 32)
	if err := StripJPEGMetadata(bytes.NewReader(plain[:len(plain)/2]), &bytes.Buffer{}); err == nil {
		t.Fatal("a truncated JPEG was stripped without an error")
	}
}

func TestStripPNGMetadata(t *testing.T) {
	plain := mustPNG(t, 20, 10)
	photo := insertPNGChunks(plain,
		pngChunk("tEXt", []byte("Comment\x00GPS 37.5665 N")),
		pngChunk("iTXt", []byte("XML:com.adobe.xmp\x00\x00\x00\x00\x00<x:xmpmeta/>")),
		pngChunk("eXIf", exifWithGPS()[6:]),
		pngChunk("tIME", []byte{0x07, 0xEA, 11, 29, 10, 0, 0}),
	)
	var out bytes.Buffer
	if err := StripPNGMetadata(bytes.NewReader(append(photo, "trailing"...)), &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), plain) {
		t.Fatal("stripped PNG differs from the PNG without metadata")
	}
	a, err := png.Decode(bytes.NewReader(photo))
	if err != nil {
		t.Fatal(err)
	}
	b, err := png.Decode(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	samePixels(t, a, b)
}

func TestExifOrientationSurvivesGarbage(t *testing.T) {
	for _, tiff := range [][]byte{nil, []byte("II*\x00"), []byte("MM\x00*\xff\xff\xff\xff"), []byte("II*\x00\x08\x00\x00\x00\xff\xff")} {
		if got := exifOrientation(tiff); got != 1 {
			t.Fatalf("exifOrientation(%q) = %d, want 1", tiff, got)
		}
	}
}

func decodeJPEG(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func samePixels(t *testing.T, a, b image.Image) {
	t.Helper()
	if a.Bounds() != b.Bounds() {
		t.Fatalf("bounds %v and %v", a.Bounds(), b.Bounds())
	}
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			if a.At(x, y) != b.At(x, y) {
				t.Fatalf("pixel (%d,%d): %v and %v", x, y, a.At(x, y), b.At(x, y))
			}
		}
	}
}
