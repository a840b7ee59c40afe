package chat

import (
	"context"
	"time"
)

// HoldThumbnailPixels takes n pixels of the thumbnail decoding budget, as a job decoding
// a picture that large does, until release is called.
func (s *Service) HoldThumbnailPixels(ctx context.Context, n int64) (release func(), err error) {
	return s.files.decodePixels(ctx, n)
}

// ForgetPushSweeps forgets the window whose sweep this process committed, as another
// process would not know it.
func (s *Service) ForgetPushSweeps() {
	s.pushSweeps.mu.Lock()
	s.pushSweeps.latest = time.Time{}
	s.pushSweeps.mu.Unlock()
}

// RunPushJob runs a conversation's push job now, as its worker does.
func (s *Service) RunPushJob(ctx context.Context, a PushArgs) error { return s.pushMessage(ctx, a) }

// RunPushSweep runs the sweep of the window that began at since, now, as its worker does.
func (s *Service) RunPushSweep(ctx context.Context, since time.Time) error {
	return s.pushSweep(ctx, PushSweepArgs{Since: since.UnixMilli()})
}

// HoldConversation takes convID's ordering lock, as a send storing its batch holds it,
// until release is called: sends meanwhile wait in the conversation's queue.
func (s *Service) HoldConversation(convID int64) (release func()) {
	st := stripeOf(convID)
	s.convLocks[st] <- struct{}{}
	return func() { s.release(lockSet{st: {}}) }
}

// WaitingSends answers how many sends wait in convID's queue.
func (s *Service) WaitingSends(convID int64) int {
	s.sendQueue.mu.Lock()
	defer s.sendQueue.mu.Unlock()
	return len(s.sendQueue.pending[convID])
}

// HoldConversations takes the ordering locks of convIDs, as sends' batches hold them;
// storeWaiting then does with them what a send that took a send slot does: stores what
// waits for every conversation whose lock is free or held here, in one transaction, and
// lets all the locks go.
func (s *Service) HoldConversations(convIDs ...int64) (storeWaiting func()) {
	held := lockSet{}
	for _, c := range convIDs {
		if _, ok := held[stripeOf(c)]; !ok {
			s.convLocks[stripeOf(c)] <- struct{}{}
			held[stripeOf(c)] = struct{}{}
		}
	}
	return func() {
		s.sendSlots <- struct{}{}
		s.storeWaiting(held)
	}
}

// QueuePresence has users gone offline queued, as while StorePresence runs, without taking
// them yet: StorePresence takes them when it starts.
func (s *Service) QueuePresence() { s.presence.setRunning(true) }

// QueuedPresence answers how many users gone offline wait to be stored.
func (s *Service) QueuedPresence() int { return s.presence.queued() }
