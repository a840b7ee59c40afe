package chat

import (
	"context"
	"io"
	"time"

	"github.com/riverqueue/river"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/jobs"
	"github.com/dreamseed/messenger/scan"
	"github.com/dreamseed/messenger/storage"
	"github.com/dreamseed/messenger/upload"
)

// File events.
const (
	// EventUploadUpdated goes to the uploader's own streams: an APIUpload whose state
	// changed (scanning, clean with its message id, infected, failed).
	EventUploadUpdated = "upload.updated"
	// EventMessageUpdated goes to every member: an APIMessage that changed in place (a
	// file message its sender deleted is now a tombstone).
	EventMessageUpdated = "message.updated"
)

// Scanner is the virus scanner (scan.Client): fail closed, an error is never a verdict.
type Scanner interface {
	Scan(ctx context.Context, r io.Reader) (scan.Result, error)
	Version(ctx context.Context) (string, error)
}

// Files is what the file use cases need.
type Files struct {
	Storage storage.Store
	// Scanner scans every file; nil only in development, where files are stored
	// unscanned and marked so (File.Scanned false).
	Scanner Scanner
	Jobs    *jobs.Runner
	Limits  upload.Limits
}

// UploadFile is one file of an upload as a handler received it.
type UploadFile struct {
	Name    string // as the client named it; cleaned before it is kept
	Size    int64
	Content io.ReaderAt
}

// FileContent is an open stored object of a file, for a download: the caller closes Body.
type FileContent struct {
	File        messenger.File
	Body        io.ReadSeekCloser
	Size        int64
	ContentType string
	ModTime     time.Time
}

var errFilesNotBuilt = messenger.Errorf(messenger.EUNSUPPORTED, "Files are not available yet.")

// EnableFiles gives the service its storage, scanner and job queue.
func (s *Service) EnableFiles(f Files) {}

// RegisterWorkers adds the file jobs (scan, thumbnails and the message, delete) to w.
func (s *Service) RegisterWorkers(w *river.Workers) {}

// CreateUpload checks and stores me's files for conversation convID, records the upload
// (state scanning) and enqueues its scan in the same transaction, and tells me's streams
// (upload.updated). The same clientMsgID again answers the same upload (or the one whose
// message is stored) with created false and stores nothing.
func (s *Service) CreateUpload(ctx context.Context, me messenger.User, convID int64, clientMsgID, caption string, files []UploadFile) (messenger.Upload, bool, error) {
	return messenger.Upload{}, false, errFilesNotBuilt
}

// Upload answers one of me's uploads.
func (s *Service) Upload(ctx context.Context, me messenger.User, id string) (messenger.Upload, error) {
	return messenger.Upload{}, errFilesNotBuilt
}

// PendingUploads answers me's uploads to convID that are not a message (scanning, or
// infected or failed and not dismissed), oldest first: the pending bubbles of a thread.
func (s *Service) PendingUploads(ctx context.Context, me messenger.User, convID int64) ([]messenger.Upload, error) {
	return nil, nil
}

// DismissUpload hides one of me's infected or failed uploads from its thread.
func (s *Service) DismissUpload(ctx context.Context, me messenger.User, id string) error {
	return errFilesNotBuilt
}

// File answers a file me may see: a clean file of a conversation me is an active member
// of, or one of me's own in any state.
func (s *Service) File(ctx context.Context, me messenger.User, id string) (messenger.File, error) {
	return messenger.File{}, errFilesNotBuilt
}

// OpenFile opens the original of a clean file me may see.
func (s *Service) OpenFile(ctx context.Context, me messenger.User, id string) (FileContent, error) {
	return FileContent{}, errFilesNotBuilt
}

// OpenThumbnail opens a thumbnail (messenger.ThumbSmall, ThumbMedium, ThumbLarge) of a
// clean image me may see.
func (s *Service) OpenThumbnail(ctx context.Context, me messenger.User, id, size string) (FileContent, error) {
	return FileContent{}, errFilesNotBuilt
}

// DeleteFile deletes one of me's sent files: its message becomes a tombstone for everyone
// (message.updated), and a job removes the objects.
func (s *Service) DeleteFile(ctx context.Context, me messenger.User, id string) (messenger.Message, error) {
	return messenger.Message{}, errFilesNotBuilt
}
