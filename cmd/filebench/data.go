package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"net"
	"runtime"
)

// The photo is a phone camera's 12 megapixels.
const (
	photoWidth  = 4032
	photoHeight = 3024
)

// makePhoto draws a 12-megapixel picture (gradients with grain, as a phone photo of a
// whiteboard has) and encodes it as a JPEG of about size bytes: the grain is what makes a
// real photo large, so its strength is raised until the file is big enough.
func makePhoto(size int) ([]byte, error) {
	img := image.NewRGBA(image.Rect(0, 0, photoWidth, photoHeight))
	rng := rand.New(rand.NewPCG(1, 2))
	for grain := 8; grain <= 128; grain *= 2 {
		for y := range photoHeight {
			for x := range photoWidth {
				n := func() uint8 { return uint8(rng.IntN(grain)) }
				img.SetRGBA(x, y, color.RGBA{
					R: uint8(x*200/photoWidth) + n(), G: uint8(y*200/photoHeight) + n(),
					B: uint8((x+y)*100/(photoWidth+photoHeight)) + 80 + n(), A: 255,
				})
			}
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 92}); err != nil {
			return nil, err
		}
		if buf.Len() >= size || grain == 128 {
			return buf.Bytes(), nil
		}
	}
	return nil, fmt.Errorf("cannot make a %d-byte photo", size)
}

// makeDocument answers a PDF-typed file of exactly size bytes (incompressible, so neither
// storage nor the scanner gets an easy time).
func makeDocument(size int) []byte {
	head, tail := []byte("%PDF-1.7\n"), []byte("\n%%EOF\n")
	doc := make([]byte, size)
	copy(doc, head)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := len(head); i < size-len(tail); i++ {
		doc[i] = byte(' ' + rng.IntN(94))
	}
	copy(doc[size-len(tail):], tail)
	return doc
}

func listen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

func numCPU() int { return runtime.NumCPU() }
