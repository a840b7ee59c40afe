package chat

import "context"

// HoldThumbnailPixels takes n pixels of the thumbnail decoding budget, as a job decoding
// a picture that large does, until release is called.
func (s *Service) HoldThumbnailPixels(ctx context.Context, n int64) (release func(), err error) {
	return s.files.decodePixels(ctx, n)
}

// RunPushJob runs a message's push job now, as its worker does.
// ForgetPushWindows forgets the windows whose job this process committed, as another
// process would not know them.
func (s *Service) ForgetPushWindows() {
	s.pushWindows.mu.Lock()
	s.pushWindows.m = nil
	s.pushWindows.mu.Unlock()
}

func (s *Service) RunPushJob(ctx context.Context, a PushArgs) error { return s.pushMessage(ctx, a) }

// HoldConversation takes convID's ordering lock, as a send storing its batch holds it,
// until release is called: sends meanwhile wait in the conversation's queue.
func (s *Service) HoldConversation(convID int64) (release func()) {
	lock := s.convLocks[uint64(convID)%conversationLocks]
	lock <- struct{}{}
	return func() { <-lock }
}

// WaitingSends answers how many sends wait in convID's queue.
func (s *Service) WaitingSends(convID int64) int {
	q := &s.sendQueues[uint64(convID)%conversationLocks]
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending[convID])
}
