package upload

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"testing"

	"github.com/gen2brain/webp"
	xwebp "golang.org/x/image/webp"

	"github.com/dreamseed/messenger"
)

var (
	red   = color.NRGBA{255, 0, 0, 255}
	green = color.NRGBA{0, 255, 0, 255}
	blue  = color.NRGBA{0, 0, 255, 255}
	white = color.NRGBA{255, 255, 255, 255}
)

// quadrants is a w×h picture whose quarters are red, green (top) and blue, white (bottom).
func quadrants(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := [2][2]color.NRGBA{{red, green}, {blue, white}}[y*2/h][x*2/w]
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

// withOrientation is a JPEG of img carrying an EXIF block with orientation o and GPS
// coordinates, as a phone writes it.
func withOrientation(t testing.TB, img image.Image, o int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return withExif(b.Bytes(), o)
}

// withExif puts an EXIF block with orientation o and GPS coordinates into a JPEG.
func withExif(photo []byte, o int) []byte {
	exif := exifWithGPS()
	// exifWithGPS has orientation 6 at a fixed place: IFD0's first entry's value.
	binary.LittleEndian.PutUint16(exif[6+8+2+8:], uint16(o))
	out := append([]byte{0xFF, 0xD8}, jpegSegment(0xE1, exif)...)
	return append(out, photo[2:]...)
}

func mustDetect(t testing.TB, b []byte) Info {
	t.Helper()
	info, err := Detect(bytes.NewReader(b), int64(len(b)), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func mustThumbnails(t testing.TB, b []byte) Thumbs {
	t.Helper()
	th, err := Thumbnails(bytes.NewReader(b), mustDetect(t, b))
	if err != nil {
		t.Fatal(err)
	}
	return th
}

// decodeThumb decodes a thumbnail as a browser would (it must be WebP) and checks it
// carries no metadata: only image chunks, no EXIF or XMP flag.
func decodeThumb(t *testing.T, th Thumb) image.Image {
	t.Helper()
	img, err := xwebp.Decode(bytes.NewReader(th.Data))
	if err != nil {
		t.Fatalf("%s: not a WebP: %v", th.Variant.Size, err)
	}
	if b := img.Bounds(); b.Dx() != th.Variant.Width || b.Dy() != th.Variant.Height {
		t.Fatalf("%s: decodes as %v, variant says %d×%d", th.Variant.Size, b, th.Variant.Width, th.Variant.Height)
	}
	if th.Variant.Bytes != int64(len(th.Data)) {
		t.Fatalf("%s: variant says %d bytes, has %d", th.Variant.Size, th.Variant.Bytes, len(th.Data))
	}
	chunks, err := riffChunks(bytes.NewReader(th.Data))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chunks {
		if c.fourCC != "VP8 " && c.fourCC != "VP8L" && c.fourCC != "VP8X" && c.fourCC != "ALPH" {
			t.Fatalf("%s: thumbnail has a %q chunk", th.Variant.Size, c.fourCC)
		}
	}
	if chunks[0].fourCC == "VP8X" && th.Data[20]&(vp8xEXIF|vp8xXMP) != 0 {
		t.Fatalf("%s: VP8X announces metadata", th.Variant.Size)
	}
	for _, secret := range []string{"Exif", "GPS", "WGS-84", "XMP"} {
		if bytes.Contains(th.Data, []byte(secret)) {
			t.Fatalf("%s: thumbnail contains %q", th.Variant.Size, secret)
		}
	}
	return img
}

// near reports whether colours a and b (straight alpha) differ by at most tol per channel.
func near(a color.Color, b color.NRGBA, tol int) bool {
	n := color.NRGBAModel.Convert(a).(color.NRGBA)
	d := func(x, y uint8) bool { return int(x)-int(y) <= tol && int(y)-int(x) <= tol }
	return d(n.R, b.R) && d(n.G, b.G) && d(n.B, b.B) && d(n.A, b.A)
}

// quarterColours samples the middle of each quarter of img: top left, top right, bottom
// left, bottom right.
func quarterColours(img image.Image) [4]color.Color {
	b := img.Bounds()
	at := func(fx, fy int) color.Color { return img.At(b.Min.X+b.Dx()*fx/4, b.Min.Y+b.Dy()*fy/4) }
	return [4]color.Color{at(1, 1), at(3, 1), at(1, 3), at(3, 3)}
}

// Every EXIF orientation comes out upright: a photo stored sideways (orientation 6, a phone
// held upright) has its width and height swapped, and each quarter lands where the camera
// saw it. The picture is stored 400×200 with red, green over blue, white.
func TestThumbnailsApplyOrientation(t *testing.T) {
	want := map[int][4]color.NRGBA{ // top left, top right, bottom left, bottom right as shown
		1: {red, green, blue, white},
		2: {green, red, white, blue},
		3: {white, blue, green, red},
		4: {blue, white, red, green},
		5: {red, blue, green, white},
		6: {blue, red, white, green},
		7: {white, green, blue, red},
		8: {green, white, red, blue},
	}
	for o := 1; o <= 8; o++ {
		th := mustThumbnails(t, withOrientation(t, quadrants(400, 200), o))
		w, h := 400, 200
		if o >= 5 {
			w, h = 200, 400
		}
		if th.Width != w || th.Height != h {
			t.Fatalf("orientation %d: display size %d×%d, want %d×%d", o, th.Width, th.Height, w, h)
		}
		for _, item := range th.Items {
			got := quarterColours(decodeThumb(t, item))
			for i, c := range got {
				if !near(c, want[o][i], 40) {
					t.Errorf("orientation %d, %s: quarter %d is %v, want %v", o, item.Variant.Size, i, c, want[o][i])
				}
			}
		}
	}
}

// Each size fits its box exactly as messenger.FitBox says, for the display size: wide,
// tall, sideways, smaller than every box (never enlarged), and a sliver.
func TestThumbnailsFitTheirBoxes(t *testing.T) {
	for _, tc := range []struct {
		file          []byte
		width, height int // as shown
	}{
		{mustJPEG(t, 1000, 750), 1000, 750},
		{withOrientation(t, quadrants(1000, 750), 6), 750, 1000},
		{withOrientation(t, quadrants(640, 101), 8), 101, 640},
		{mustPNG(t, 90, 60), 90, 60},
		{mustPNG(t, 301, 299), 301, 299},
		{mustGIF(t, 1200, 7), 1200, 7},
	} {
		th := mustThumbnails(t, tc.file)
		if th.Width != tc.width || th.Height != tc.height {
			t.Fatalf("display size %d×%d, want %d×%d", th.Width, th.Height, tc.width, tc.height)
		}
		if len(th.Items) != len(messenger.ThumbSizes) {
			t.Fatalf("%d thumbnails, want %d", len(th.Items), len(messenger.ThumbSizes))
		}
		for i, item := range th.Items {
			size := messenger.ThumbSizes[i]
			w, h := messenger.FitBox(tc.width, tc.height, messenger.ThumbEdge(size))
			if item.Variant.Size != size || item.Variant.Width != w || item.Variant.Height != h {
				t.Errorf("%d×%d: variant %+v, want %s %d×%d", tc.width, tc.height, item.Variant, size, w, h)
			}
			decodeThumb(t, item)
		}
	}
}

// A photo's GPS never reaches a thumbnail (decodeThumb checks every one).
func TestThumbnailsCarryNoMetadata(t *testing.T) {
	photo := withOrientation(t, quadrants(320, 240), 1)
	if !bytes.Contains(photo, []byte("WGS-84")) {
		t.Fatal("the test photo has no GPS block")
	}
	for _, item := range mustThumbnails(t, photo).Items {
		decodeThumb(t, item)
	}
}

// A transparent PNG stays transparent where it was, half-transparent where it was, and
// opaque where it was.
func TestThumbnailsKeepAlpha(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 300, 200))
	for y := range 200 {
		for x := range 300 {
			switch {
			case x < 100:
				img.SetNRGBA(x, y, color.NRGBA{})
			case x < 200:
				img.SetNRGBA(x, y, color.NRGBA{0, 200, 0, 128})
			default:
				img.SetNRGBA(x, y, red)
			}
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	for _, item := range mustThumbnails(t, b.Bytes()).Items {
		got := decodeThumb(t, item)
		bd := got.Bounds()
		y := bd.Dy() / 2
		for _, c := range []struct {
			x    int
			want color.NRGBA
		}{{bd.Dx() / 6, color.NRGBA{}}, {bd.Dx() / 2, color.NRGBA{0, 200, 0, 128}}, {bd.Dx() * 5 / 6, red}} {
			if n := color.NRGBAModel.Convert(got.At(c.x, y)).(color.NRGBA); c.want.A == 0 && n.A > 8 || c.want.A != 0 && !near(n, c.want, 24) {
				t.Errorf("%s: pixel at %d is %v, want %v", item.Variant.Size, c.x, n, c.want)
			}
		}
	}
}

// An animated GIF's thumbnail is its first frame, placed where it is on the logical screen,
// the rest of the screen transparent.
func TestThumbnailsGIFFirstFrame(t *testing.T) {
	pal := color.Palette{color.RGBA{}, color.RGBA{255, 0, 0, 255}, color.RGBA{0, 0, 255, 255}}
	frame := func(r image.Rectangle, idx uint8) *image.Paletted {
		p := image.NewPaletted(r, pal)
		for i := range p.Pix {
			p.Pix[i] = idx
		}
		return p
	}
	var b bytes.Buffer
	err := gif.EncodeAll(&b, &gif.GIF{
		Image:  []*image.Paletted{frame(image.Rect(100, 0, 200, 200), 1), frame(image.Rect(0, 0, 200, 200), 2)},
		Delay:  []int{10, 10},
		Config: image.Config{ColorModel: pal, Width: 200, Height: 200},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, item := range mustThumbnails(t, b.Bytes()).Items {
		got := quarterColours(decodeThumb(t, item))
		if n := color.NRGBAModel.Convert(got[0]).(color.NRGBA); n.A > 8 {
			t.Errorf("%s: outside the first frame is %v, want transparent", item.Variant.Size, n)
		}
		if !near(got[1], red, 24) || !near(got[3], red, 24) {
			t.Errorf("%s: the first frame shows %v, %v; want red", item.Variant.Size, got[1], got[3])
		}
	}
}

// A lossy WebP (what Android sends) is read too.
func TestThumbnailsFromWebP(t *testing.T) {
	var b bytes.Buffer
	if err := webp.Encode(&b, quadrants(800, 600), webp.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	th := mustThumbnails(t, b.Bytes())
	if th.Width != 800 || th.Height != 600 {
		t.Fatalf("display size %d×%d", th.Width, th.Height)
	}
	if got := quarterColours(decodeThumb(t, th.Items[1])); !near(got[0], red, 40) || !near(got[3], white, 40) {
		t.Fatalf("quarters %v", got)
	}
}

// A truncated JPEG, an image larger than its Info says, and a file that is no image are
// refused with a clear error, never a panic or a half picture.
func TestThumbnailsRefuse(t *testing.T) {
	photo := mustJPEG(t, 640, 480)
	info := mustDetect(t, photo)
	for name, tc := range map[string]struct {
		data []byte
		info Info
		code string
	}{
		"truncated JPEG":        {photo[:len(photo)/2], info, messenger.EINVALID},
		"header only":           {photo[:200], info, messenger.EINVALID},
		"larger than checked":   {photo, Info{Kind: JPEG, Width: 640, Height: 479}, messenger.EINVALID},
		"PNG bomb said small":   {pngHeaderOnly(100000, 100000), Info{Kind: PNG, Width: 10, Height: 10}, messenger.EINVALID},
		"not an image":          {[]byte("%PDF-1.4"), Info{Kind: PDF}, messenger.EUNSUPPORTED},
		"image without size":    {photo, Info{Kind: JPEG}, messenger.EUNSUPPORTED},
		"JPEG said to be a PNG": {photo, Info{Kind: PNG, Width: 640, Height: 480}, messenger.EINVALID},
	} {
		th, err := Thumbnails(bytes.NewReader(tc.data), tc.info)
		if code := messenger.ErrorCode(err); code != tc.code || len(th.Items) != 0 {
			t.Errorf("%s: %d thumbnails, error %v (code %q); want code %q", name, len(th.Items), err, code, tc.code)
		}
	}
}

// photo12MP is a 4000×3000 JPEG at quality 90 with texture (a gradient alone compresses
// to nothing and decodes unrealistically fast), about the size a phone sends.
func photo12MP(b testing.TB) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 4000, 3000))
	seed := uint32(1)
	for y := range 3000 {
		for x := range 4000 {
			seed = seed*1664525 + 1013904223
			n := uint8(seed >> 27)
			i := img.PixOffset(x, y)
			img.Pix[i] = uint8(x*200/4000) + n
			img.Pix[i+1] = uint8(y*200/3000) + n
			img.Pix[i+2] = uint8((x^y)&0x3F) + n
			img.Pix[i+3] = 255
		}
	}
	var out bytes.Buffer
	if err := jpeg.Encode(&out, img, &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	return out.Bytes()
}

// BenchmarkThumbnails: a 12-megapixel phone photo to its three WebP sizes. Run with
// -cpu 1 for the rate of one core: thumbnails/s is three times the photos per second.
func BenchmarkThumbnails(b *testing.B) {
	photo := withExif(photo12MP(b), 6)
	info := mustDetect(b, photo)
	webp.Init() // the encoder's one-time set-up is not a thumbnail's cost
	b.SetBytes(int64(len(photo)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := Thumbnails(bytes.NewReader(photo), info); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(messenger.ThumbSizes))/b.Elapsed().Seconds(), "thumbs/s")
}

// A photo many times larger than its thumbnails is first shrunk by block averages, then
// scaled: that gives the picture scaling it directly gives (colour and grey JPEGs, odd
// sizes whose blocks do not divide evenly), and it comes out upright.
func TestThumbnailsOfLargePhotos(t *testing.T) {
	grey := image.NewGray(image.Rect(0, 0, 1901, 1299))
	for i := range grey.Pix {
		grey.Pix[i] = uint8((i%1901)*255/1901 + (i/1901)%7)
	}
	for name, img := range map[string]image.Image{"colour": testPicture(2401, 1803), "grey": grey} {
		var b bytes.Buffer
		if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
			t.Fatal(err)
		}
		decoded, err := jpeg.Decode(&b)
		if err != nil {
			t.Fatal(err)
		}
		w, h := messenger.FitBox(img.Bounds().Dx(), img.Bounds().Dy(), 600)
		direct := scale(decoded, w, h)
		for k := 2; k <= 3; k++ {
			small := shrink(decoded, k)
			if small.Bounds().Dx() != (img.Bounds().Dx()+k-1)/k {
				t.Fatalf("%s: shrink by %d gives %v", name, k, small.Bounds())
			}
			if d := meanDifference(scale(small, w, h), direct); d > 1.5 {
				t.Errorf("%s: shrunk by %d, then scaled, differs from scaling directly by %.2f per channel", name, k, d)
			}
		}
	}
	th := mustThumbnails(t, withOrientation(t, quadrants(2400, 1800), 6))
	if th.Width != 1800 || th.Height != 2400 {
		t.Fatalf("display size %d×%d", th.Width, th.Height)
	}
	for _, item := range th.Items {
		got := quarterColours(decodeThumb(t, item))
		for i, want := range []color.NRGBA{blue, red, white, green} {
			if !near(got[i], want, 40) {
				t.Errorf("%s: quarter %d is %v, want %v", item.Variant.Size, i, got[i], want)
			}
		}
	}
}

// meanDifference answers the mean absolute difference per colour channel of a and b.
func meanDifference(a, b image.Image) float64 {
	var sum, n float64
	for y := range a.Bounds().Dy() {
		for x := range a.Bounds().Dx() {
			ca := color.NRGBAModel.Convert(a.At(x, y)).(color.NRGBA)
			cb := color.NRGBAModel.Convert(b.At(x, y)).(color.NRGBA)
			for _, d := range []int{int(ca.R) - int(cb.R), int(ca.G) - int(cb.G), int(ca.B) - int(cb.B)} {
				sum += float64(max(d, -d))
				n++
			}
		}
	}
	return sum / n
}

// Thumbnail jobs run side by side: the encoder is shared and must stay correct.
func TestThumbnailsConcurrently(t *testing.T) {
	photos := [][]byte{withOrientation(t, quadrants(400, 200), 6), mustPNG(t, 500, 300), mustGIF(t, 300, 300), withOrientation(t, quadrants(400, 200), 3)}
	errs := make(chan error, 4*len(photos))
	for range 4 {
		for _, p := range photos {
			go func() {
				_, err := Thumbnails(bytes.NewReader(p), mustDetect(t, p))
				errs <- err
			}()
		}
	}
	for range 4 * len(photos) {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
