package upload

import (
	"bufio"
	"bytes"
	"errors"
	"image"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"

	"github.com/gen2brain/webp"
	xdraw "golang.org/x/image/draw"
	xwebp "golang.org/x/image/webp"

	"github.com/dreamseed/messenger"
)

// ThumbQuality is the WebP quality of thumbnails: at 80 a photo shows no artefact at the
// sizes the bubble draws it, and a 600-pixel one stays near 40 KB.
const ThumbQuality = 80

// Thumb is one thumbnail: its variant (size name, dimensions, bytes) and its WebP bytes.
type Thumb struct {
	Variant messenger.Variant
	Data    []byte // WebP, no metadata
}

// Thumbs are an image's thumbnails, smallest first, with the image's display size (its
// EXIF orientation applied, so a photo taken sideways is taller than wide).
type Thumbs struct {
	Width, Height int
	Items         []Thumb
}

// Thumbnails decodes the image read from r — which Detect answered info for, so its pixel
// count is within the limit — and answers one WebP thumbnail per messenger.ThumbSizes, each
// fitting inside its box as messenger.FitBox computes (aspect kept, never enlarged; a
// square crop would cut a whiteboard's edges off), turned upright by its EXIF orientation,
// with its transparency kept and no metadata. A GIF gives its first frame.
//
// The header is read again before any pixel is decoded and an image larger than info says
// is refused, so a caller that passed the wrong Info still cannot be made to decode a bomb.
func Thumbnails(r io.Reader, info Info) (Thumbs, error) {
	if !info.Kind.IsImage() || info.Width <= 0 || info.Height <= 0 {
		return Thumbs{}, messenger.Errorf(messenger.EUNSUPPORTED, "error.image.not_image")
	}
	img, orientation, err := decodeChecked(r, info)
	if err != nil {
		return Thumbs{}, err
	}
	sw, sh := img.Bounds().Dx(), img.Bounds().Dy()
	out := Thumbs{Width: sw, Height: sh}
	if orientation >= 5 {
		out.Width, out.Height = sh, sw
	}
	lw, lh := messenger.FitBox(out.Width, out.Height, messenger.ThumbEdge(messenger.ThumbLarge))
	if orientation >= 5 {
		lw, lh = lh, lw
	}
	src := shrink(img, min(sw/(2*lw), sh/(2*lh)))
	for i := len(messenger.ThumbSizes) - 1; i >= 0; i-- { // largest first: each smaller one is made from it
		size := messenger.ThumbSizes[i]
		w, h := messenger.FitBox(out.Width, out.Height, messenger.ThumbEdge(size))
		if orientation >= 5 {
			w, h = h, w // in the stored orientation
		}
		scaled := scale(src, w, h)
		src = scaled
		var b bytes.Buffer
		if err := webp.Encode(&b, orient(scaled, orientation), webp.Options{Quality: ThumbQuality}); err != nil {
			return Thumbs{}, err
		}
		if orientation >= 5 {
			w, h = h, w
		}
		out.Items = append([]Thumb{{
			Variant: messenger.Variant{Size: size, Width: w, Height: h, Bytes: int64(b.Len())},
			Data:    b.Bytes(),
		}}, out.Items...)
	}
	return out, nil
}

// decodeChecked reads the header (and a JPEG's orientation) from the bytes it keeps, checks
// the dimensions against info, then decodes the whole image.
func decodeChecked(r io.Reader, info Info) (image.Image, int, error) {
	var head bytes.Buffer
	tee := io.TeeReader(r, &head)
	orientation := 1
	var (
		cfg image.Config
		err error
	)
	switch info.Kind {
	case JPEG:
		if orientation, err = JPEGOrientation(tee); err == nil {
			cfg, err = jpeg.DecodeConfig(io.MultiReader(bytes.NewReader(head.Bytes()), tee))
		}
	case PNG:
		cfg, err = png.DecodeConfig(tee)
	case GIF:
		cfg, err = gif.DecodeConfig(tee)
	case WebP:
		cfg, err = xwebp.DecodeConfig(tee)
	}
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, 0, damaged()
	}
	if cfg.Width > info.Width || cfg.Height > info.Height {
		return nil, 0, messenger.Errorf(messenger.EINVALID, "error.image.grew")
	}
	all := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(head.Bytes()), r), 64<<10)
	var img image.Image
	switch info.Kind {
	case JPEG:
		img, err = jpeg.Decode(&scanLimiter{r: all})
	case PNG:
		img, err = png.Decode(all)
	case GIF:
		img, err = firstFrame(all, cfg)
	case WebP:
		img, err = decodeWebP(all)
	}
	if err != nil {
		return nil, 0, damaged()
	}
	if b := img.Bounds(); b.Dx() > info.Width || b.Dy() > info.Height || b.Dx() <= 0 || b.Dy() <= 0 {
		return nil, 0, messenger.Errorf(messenger.EINVALID, "error.image.grew")
	}
	return img, orientation, nil
}

// scanLimiter passes a JPEG through and fails once it has seen more than MaxJPEGScans
// start-of-scan markers (0xFF 0xDA, which entropy-coded data never holds: a 0xFF there is
// followed by 0x00 or a restart), so a decoder handed a stored file Detect never saw still
// cannot be kept busy by a scan bomb.
type scanLimiter struct {
	r      io.Reader
	scans  int
	lastFF bool
}

func (s *scanLimiter) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	for _, b := range p[:n] {
		if s.lastFF && b == 0xDA {
			if s.scans++; s.scans > MaxJPEGScans {
				return 0, errTooManyScans
			}
		}
		s.lastFF = b == 0xFF
	}
	return n, err
}

// maxWebPBytes bounds what decodeWebP reads into memory (uploads are far smaller).
const maxWebPBytes = 1 << 30

// decodeWebP decodes a still WebP in Go. An animated one, which golang.org/x/image/webp does
// not read, is decoded by libwebp (its first frame) inside gen2brain/webp's WASM sandbox:
// only then, so that the C decoder sees only what the Go one cannot read.
func decodeWebP(r io.Reader) (image.Image, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxWebPBytes))
	if err != nil {
		return nil, err
	}
	img, err := xwebp.Decode(bytes.NewReader(data))
	if err == nil || len(data) < 21 || string(data[12:16]) != "VP8X" || data[20]&vp8xAnimation == 0 {
		return img, err
	}
	return webp.Decode(bytes.NewReader(data))
}

// firstFrame decodes a GIF's first frame onto its logical screen (a frame may be smaller
// and placed anywhere on it; what it does not cover is transparent).
func firstFrame(r io.Reader, cfg image.Config) (image.Image, error) {
	frame, err := gif.Decode(r)
	if err != nil {
		return nil, err
	}
	screen := image.Rect(0, 0, cfg.Width, cfg.Height)
	if frame.Bounds() == screen {
		return frame, nil
	}
	if !frame.Bounds().In(screen) {
		return nil, errors.New("upload: GIF frame outside its screen")
	}
	canvas := image.NewRGBA(screen)
	draw.Draw(canvas, frame.Bounds(), frame, frame.Bounds().Min, draw.Src)
	return canvas, nil
}

// scale answers src resized to w×h with Catmull-Rom (sharp without ringing at these ratios).
func scale(src image.Image, w, h int) *image.RGBA {
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	xdraw.CatmullRom.Scale(dst, dst.Bounds(), src, src.Bounds(), xdraw.Src, nil)
	return dst
}

// shrink answers a photo (YCbCr or grey, as JPEG decodes it) made k times smaller by
// averaging k×k blocks, when k ≥ 2: a cheap and alias-free first step before Catmull-Rom,
// whose cost grows with the scale factor (12 megapixels to 600 pixels directly is most of a
// thumbnail's time). Other images, and photos not much larger than the thumbnail, are
// answered as they are.
func shrink(img image.Image, k int) image.Image {
	if k < 2 || img.Bounds().Min != (image.Point{}) {
		return img
	}
	switch src := img.(type) {
	case *image.YCbCr:
		w, h := src.Rect.Dx(), src.Rect.Dy()
		dst := image.NewYCbCr(image.Rect(0, 0, (w+k-1)/k, (h+k-1)/k), src.SubsampleRatio)
		cw, ch := chromaSize(src.SubsampleRatio, w, h)
		dcw, dch := chromaSize(src.SubsampleRatio, dst.Rect.Dx(), dst.Rect.Dy())
		if cw == 0 || (cw+k-1)/k != dcw || (ch+k-1)/k != dch {
			return img // an unknown subsampling: scale it as it is
		}
		shrinkPlane(dst.Y, dst.YStride, src.Y, src.YStride, w, h, k)
		shrinkPlane(dst.Cb, dst.CStride, src.Cb, src.CStride, cw, ch, k)
		shrinkPlane(dst.Cr, dst.CStride, src.Cr, src.CStride, cw, ch, k)
		return dst
	case *image.Gray:
		w, h := src.Rect.Dx(), src.Rect.Dy()
		dst := image.NewGray(image.Rect(0, 0, (w+k-1)/k, (h+k-1)/k))
		shrinkPlane(dst.Pix, dst.Stride, src.Pix, src.Stride, w, h, k)
		return dst
	}
	return img
}

// chromaSize answers the size of the chroma planes of a w×h YCbCr image at (0, 0).
func chromaSize(r image.YCbCrSubsampleRatio, w, h int) (int, int) {
	switch r {
	case image.YCbCrSubsampleRatio444:
		return w, h
	case image.YCbCrSubsampleRatio422:
		return (w + 1) / 2, h
	case image.YCbCrSubsampleRatio420:
		return (w + 1) / 2, (h + 1) / 2
	case image.YCbCrSubsampleRatio440:
		return w, (h + 1) / 2
	case image.YCbCrSubsampleRatio411:
		return (w + 3) / 4, h
	case image.YCbCrSubsampleRatio410:
		return (w + 3) / 4, (h + 1) / 2
	}
	return 0, 0
}

// shrinkPlane averages each k×k block of the w×h plane src into one sample of dst (blocks
// at the right and bottom edges may be smaller).
func shrinkPlane(dst []byte, dstStride int, src []byte, srcStride, w, h, k int) {
	sums := make([]uint32, (w+k-1)/k)
	for y0 := 0; y0 < h; y0 += k {
		clear(sums)
		rows := min(k, h-y0)
		for y := y0; y < y0+rows; y++ {
			row := src[y*srcStride : y*srcStride+w]
			for x, v := range row {
				sums[x/k] += uint32(v)
			}
		}
		out := dst[(y0/k)*dstStride:]
		for i, sum := range sums {
			n := uint32(rows * min(k, w-i*k))
			out[i] = uint8((sum + n/2) / n)
		}
	}
}

// orient answers src turned upright by EXIF orientation o (1–8), as straight (not
// premultiplied) RGBA, which is what the WebP encoder takes.
func orient(src *image.RGBA, o int) *image.NRGBA {
	w, h := src.Rect.Dx(), src.Rect.Dy()
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	dst := image.NewNRGBA(image.Rect(0, 0, dw, dh))
	for y := range h {
		for x := range w {
			var dx, dy int
			switch o {
			case 2: // mirrored
				dx, dy = w-1-x, y
			case 3: // upside down
				dx, dy = w-1-x, h-1-y
			case 4: // mirrored upside down
				dx, dy = x, h-1-y
			case 5: // mirrored, turned 90° anticlockwise (transpose)
				dx, dy = y, x
			case 6: // turned 90° anticlockwise: turn it clockwise
				dx, dy = h-1-y, x
			case 7: // transverse
				dx, dy = h-1-y, w-1-x
			case 8: // turned 90° clockwise: turn it anticlockwise
				dx, dy = y, w-1-x
			default:
				dx, dy = x, y
			}
			s := src.PixOffset(x, y)
			d := dst.PixOffset(dx, dy)
			unpremultiply(dst.Pix[d:d+4:d+4], src.Pix[s:s+4:s+4])
		}
	}
	return dst
}

func unpremultiply(d, s []byte) {
	a := uint32(s[3])
	switch a {
	case 0xFF:
		copy(d, s)
	case 0:
		d[0], d[1], d[2], d[3] = 0, 0, 0, 0
	default:
		d[0] = uint8(min(255, (uint32(s[0])*255+a/2)/a))
		d[1] = uint8(min(255, (uint32(s[1])*255+a/2)/a))
		d[2] = uint8(min(255, (uint32(s[2])*255+a/2)/a))
		d[3] = uint8(a)
	}
}
