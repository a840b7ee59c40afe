package digest

// SendWithoutRecording runs the first half of Send: records the digest as sending and
// hands it to SMTP, then stops as a crash would before marking it sent.
func (s *Service) SendWithoutRecording(userID int64) error {
	ctx := t0ctx()
	rec, err := s.db.DigestRecipientOf(ctx, userID)
	if err != nil {
		return err
	}
	msg, ok, err := s.prepare(ctx, rec)
	if err != nil || !ok {
		return err
	}
	return s.sender.Send(ctx, msg)
}
