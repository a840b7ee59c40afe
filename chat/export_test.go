package chat

import "context"

// HoldThumbnailPixels takes n pixels of the thumbnail decoding budget, as a job decoding
// a picture that large does, until release is called.
func (s *Service) HoldThumbnailPixels(ctx context.Context, n int64) (release func(), err error) {
	return s.files.decodePixels(ctx, n)
}
