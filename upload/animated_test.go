package upload

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"testing"

	"github.com/gen2brain/webp"
)

func le24(b []byte, v int) []byte { return append(b, byte(v), byte(v>>8), byte(v>>16)) }

// animatedWebP is an animated WebP of w×h whose frames are filled with colours, in order.
func animatedWebP(t testing.TB, w, h int, colours ...color.NRGBA) []byte {
	t.Helper()
	vp8x := le24(le24([]byte{0x02, 0, 0, 0}, w-1), h-1)
	body := append([]byte("WEBP"), riffChunkBytes("VP8X", vp8x)...)
	body = append(body, riffChunkBytes("ANIM", []byte{0, 0, 0, 0, 0, 0})...)
	for _, c := range colours {
		img := image.NewNRGBA(image.Rect(0, 0, w, h))
		for i := 0; i < len(img.Pix); i += 4 {
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
		}
		var b bytes.Buffer
		if err := webp.Encode(&b, img, webp.Options{Quality: 90}); err != nil {
			t.Fatal(err)
		}
		frame := le24(le24(le24(le24(nil, 0), 0), w-1), h-1)
		frame = le24(frame, 100)
		frame = append(frame, 0)
		frame = append(frame, b.Bytes()[12:]...)
		body = append(body, riffChunkBytes("ANMF", frame)...)
	}
	return append(append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...), body...)
}

// An animated WebP (what a phone keyboard's stickers are) gives its first frame.
func TestThumbnailsAnimatedWebPFirstFrame(t *testing.T) {
	anim := animatedWebP(t, 320, 240, red, blue)
	th := mustThumbnails(t, anim)
	if th.Width != 320 || th.Height != 240 {
		t.Fatalf("display size %d×%d", th.Width, th.Height)
	}
	for _, item := range th.Items {
		if got := quarterColours(decodeThumb(t, item)); !near(got[0], red, 40) || !near(got[3], red, 40) {
			t.Errorf("%s: %v, want the first frame (red)", item.Variant.Size, got)
		}
	}
}

// Stripping an animated WebP keeps every frame and drops its EXIF.
func TestStripWebPMetadataKeepsAnimation(t *testing.T) {
	anim := animatedWebP(t, 64, 48, red, blue, green)
	anim[20] |= vp8xEXIF
	anim = append(anim, riffChunkBytes("EXIF", exifWithGPS()[6:])...)
	binary.LittleEndian.PutUint32(anim[4:], uint32(len(anim)-8))
	var out bytes.Buffer
	if err := StripWebPMetadata(bytes.NewReader(anim), &out); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out.Bytes(), []byte("WGS-84")) || out.Bytes()[20] != 0x02 {
		t.Fatalf("EXIF kept (flags %#x)", out.Bytes()[20])
	}
	all, err := webp.DecodeAll(bytes.NewReader(out.Bytes()))
	if err != nil || len(all.Image) != 3 {
		t.Fatalf("stripped animation: %v", err)
	}
	if !near(all.Image[1].At(10, 10), blue, 40) {
		t.Errorf("second frame %v", all.Image[1].At(10, 10))
	}
}
