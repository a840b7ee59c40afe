package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"golang.org/x/sync/semaphore"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/internal/trace"
	"github.com/dreamseed/messenger/jobs"
	"github.com/dreamseed/messenger/ratelimit"
	"github.com/dreamseed/messenger/scan"
	"github.com/dreamseed/messenger/storage"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/upload"
)

// File events.
const (
	// EventUploadUpdated goes to the uploader's own streams: an APIUpload whose state
	// changed (scanning, clean with its message id, infected, failed), or that the
	// uploader dismissed (dismissed true). States only move on — scanning, then clean,
	// infected or failed, then dismissed — but their events may come the other way round
	// when a job of another process tells the result before the uploading process's
	// "scanning" arrives: a client keeps the furthest state it was told.
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

// DefaultMaxFiles is how many files one upload holds unless Files.MaxFiles says otherwise.
const DefaultMaxFiles = 10

// Files is what the file use cases need.
type Files struct {
	Storage storage.Store
	// Scanner scans every file; nil only in development, where files are stored
	// unscanned and marked so (File.Scanned false).
	Scanner Scanner
	Jobs    *jobs.Runner
	Limits  upload.Limits
	// MaxFiles bounds the files of one upload (DefaultMaxFiles when 0;
	// MESSENGER_MAX_FILES_PER_UPLOAD).
	MaxFiles int
	// ScanAttempts is how often a scan is tried before the upload fails (DefaultScanAttempts
	// when 0): with backoff doubling up to the runner's RetryMax (an hour by default), 25
	// attempts wait about half a day for a scanner that is down.
	ScanAttempts int
	// ThumbnailMaxPixels bounds the pixels of the images being decoded for thumbnails at
	// once, across this process's jobs (DefaultThumbnailMaxPixels when 0;
	// MESSENGER_THUMBNAIL_MAX_PIXELS): decoding takes about 7.5 bytes a pixel at its peak
	// (an 8-bit PNG of 50 megapixels: 370 MB), so four workers decoding such pictures side by
	// side would take 1.5 GB. A job waits until its picture fits; a picture larger than the
	// whole budget waits until it has all of it.
	ThumbnailMaxPixels int64
	// DeleteAttempts is how often the job removing a deleted, infected or failed file's
	// bytes is tried (DefaultDeleteAttempts when 0): it must outlast a storage outage, since
	// nothing else removes them once it gives up.
	DeleteAttempts int

	decoding *semaphore.Weighted // ThumbnailMaxPixels, set by EnableFiles
}

// DefaultScanAttempts is Files.ScanAttempts unless set.
const DefaultScanAttempts = 25

// DefaultThumbnailMaxPixels is Files.ThumbnailMaxPixels unless set: two pictures of the
// largest default size (50 megapixels) at once.
const DefaultThumbnailMaxPixels = 100_000_000

// DefaultDeleteAttempts is Files.DeleteAttempts unless set: with backoff doubling up to the
// runner's RetryMax (an hour by default), 200 attempts keep trying for about a week, where
// the runner's default 10 gave up after some eight minutes.
const DefaultDeleteAttempts = 200

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

var errFilesNotBuilt = messenger.Errorf(messenger.EUNSUPPORTED, "error.files.off")

// nobody is the identity of the jobs' own transactions: the gates they call refuse inside a
// user's transaction.
var nobody = messenger.Identity{}

// EnableFiles gives the service its storage, scanner and job queue.
func (s *Service) EnableFiles(f Files) {
	if f.MaxFiles <= 0 {
		f.MaxFiles = DefaultMaxFiles
	}
	if f.ScanAttempts <= 0 {
		f.ScanAttempts = DefaultScanAttempts
	}
	if f.ThumbnailMaxPixels <= 0 {
		f.ThumbnailMaxPixels = DefaultThumbnailMaxPixels
	}
	f.decoding = semaphore.NewWeighted(f.ThumbnailMaxPixels)
	if f.DeleteAttempts <= 0 {
		f.DeleteAttempts = DefaultDeleteAttempts
	}
	s.files = &f
}

// FilesEnabled reports whether EnableFiles was called.
func (s *Service) FilesEnabled() bool { return s.files != nil }

// CreateUpload checks and stores me's files for conversation convID, records the upload
// (state scanning) and enqueues its scan in the same transaction, and tells me's streams
// (upload.updated). The same clientMsgID again answers the same upload (or the one whose
// message is stored) with created false and stores nothing.
func (s *Service) CreateUpload(ctx context.Context, me messenger.User, convID int64, clientMsgID, caption string, files []UploadFile) (messenger.Upload, bool, error) {
	if err := s.allow(ctx, ratelimit.Send, me); err != nil {
		return messenger.Upload{}, false, err
	}
	f := s.files
	if f == nil {
		return messenger.Upload{}, false, errFilesNotBuilt
	}
	cid, err := uuid.Parse(clientMsgID)
	if err != nil {
		return messenger.Upload{}, false, messenger.Errorf(messenger.EINVALID, "error.client_msg_id.uuid")
	}
	clientMsgID = cid.String()
	if caption, err = cleanCaption(caption); err != nil {
		return messenger.Upload{}, false, err
	}
	switch {
	case len(files) == 0:
		return messenger.Upload{}, false, messenger.Errorf(messenger.EINVALID, "error.file.choose")
	case len(files) > f.MaxFiles:
		return messenger.Upload{}, false, messenger.Errorf(messenger.ETOOLARGE, "error.files.too_many", f.MaxFiles)
	}

	// The same client_msg_id answers what it made, before anything is stored.
	existing, err := s.uploadBefore(ctx, me, convID, clientMsgID)
	if err != nil || existing != nil {
		return deref(existing), false, err
	}
	checked, err := f.check(files)
	if err != nil {
		return messenger.Upload{}, false, err
	}
	nu := store.NewUpload{ID: uuid.NewString(), ConversationID: convID, ClientMsgID: clientMsgID, Caption: caption}
	for i, c := range checked {
		nf, err := f.put(ctx, c, files[i])
		if err != nil {
			f.removeStored(context.WithoutCancel(ctx), nu.Files)
			return messenger.Upload{}, false, err
		}
		nu.Files = append(nu.Files, nf)
	}

	// In the conversation's order, as the jobs tell their results: in this process the
	// result of a fast scan cannot overtake "scanning" (a job of another process can:
	// clients keep the furthest state, see EventUploadUpdated).
	var up messenger.Upload
	err = s.inOrder(convID, func() error {
		err := s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error {
			if err := tx.InsertUpload(ctx, nu); err != nil {
				return err
			}
			if err := tx.Enqueue(ctx, f.Jobs, ScanArgs{UploadID: nu.ID, jobAttempts: jobAttempts{f.ScanAttempts}}); err != nil {
				return err
			}
			var err error
			up, err = tx.Upload(ctx, nu.ID)
			return err
		})
		if err == nil {
			s.publish(ctx, []int64{me.ID}, EventUploadUpdated, up)
		}
		return err
	})
	if err != nil {
		f.removeStored(context.WithoutCancel(ctx), nu.Files)
		if errors.Is(err, store.ErrUploadExists) { // a concurrent request with this id won
			existing, err := s.uploadBefore(ctx, me, convID, clientMsgID)
			return deref(existing), false, err
		}
		return messenger.Upload{}, false, err
	}
	return up, true, nil
}

func deref(u *messenger.Upload) messenger.Upload {
	if u == nil {
		return messenger.Upload{}
	}
	return *u
}

// cleanCaption answers the caption to keep: "" when it shows nothing, otherwise a message
// body's rules.
func cleanCaption(caption string) (string, error) {
	if messenger.IsBlank(strings.TrimSpace(caption)) {
		return "", nil
	}
	return messenger.CleanBody(caption)
}

// uploadBefore answers me's upload with clientMsgID (nil when there is none), after
// checking that me may post in convID: not found when not a member, forbidden in
// announcements for those who may not post there.
func (s *Service) uploadBefore(ctx context.Context, me messenger.User, convID int64, clientMsgID string) (*messenger.Upload, error) {
	var found *messenger.Upload
	err := s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error {
		up, err := tx.UploadByClientID(ctx, clientMsgID)
		if err == nil {
			if up.ConversationID != convID {
				return messenger.Errorf(messenger.ECONFLICT, "error.client_msg_id.other_conversation")
			}
			found = &up
			return nil
		}
		if messenger.ErrorCode(err) != messenger.ENOTFOUND {
			return err
		}
		conv, err := tx.Conversation(ctx, convID)
		if err != nil {
			return err
		}
		if conv.Kind == messenger.KindAnnouncement && !me.CanAnnounce() {
			return messenger.Errorf(messenger.EFORBIDDEN, "error.announcement.post")
		}
		used, err := tx.ClientMsgIDUsed(ctx, clientMsgID)
		if err == nil && used {
			return messenger.Errorf(messenger.ECONFLICT, "error.client_msg_id.used")
		}
		return err
	})
	return found, err
}

// checkedFile is an upload's file that passed the checks: its clean name and what it is.
type checkedFile struct {
	name string
	info upload.Info
}

// check cleans every file's name and decides what each is by its content, before any is
// stored: one bad file refuses the upload.
func (f *Files) check(files []UploadFile) ([]checkedFile, error) {
	out := make([]checkedFile, len(files))
	for i, file := range files {
		name, err := upload.CleanFileName(file.Name, f.Limits.MaxNameRunes)
		if err != nil {
			return nil, err
		}
		if file.Content == nil || file.Size < 0 {
			return nil, messenger.Errorf(messenger.EINVALID, "error.file.named_empty", name)
		}
		info, err := upload.Detect(file.Content, file.Size, f.Limits)
		if err != nil {
			if messenger.ErrorCode(err) != "" {
				return nil, messenger.Errorf(messenger.ErrorCode(err), "%s: %s", name, err)
			}
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		out[i] = checkedFile{name: name, info: info}
	}
	return out, nil
}

// stripMetadata answers the lossless metadata stripper (GPS!) of a picture, nil for a
// document, which is stored as it came.
func stripMetadata(kind upload.Kind) func(io.Reader, io.Writer) error {
	if !kind.IsImage() {
		return nil
	}
	return func(r io.Reader, w io.Writer) error { return upload.StripMetadata(kind, r, w) }
}

// put streams one checked file into storage under a new key, pictures through their
// metadata stripper, and answers its record.
func (f *Files) put(ctx context.Context, c checkedFile, file UploadFile) (store.NewFile, error) {
	nf := store.NewFile{ID: uuid.NewString(), Key: storage.NewKey(), Name: c.name, ContentType: c.info.ContentType,
		Width: c.info.Width, Height: c.info.Height}
	src := io.NewSectionReader(file.Content, 0, file.Size)
	strip := stripMetadata(c.info.Kind)
	if strip == nil {
		obj, err := f.Storage.Put(ctx, nf.Key, src, file.Size, nf.ContentType)
		if err != nil {
			return nf, fmt.Errorf("store %s: %w", c.name, err)
		}
		nf.Size, nf.SHA256 = obj.Size, obj.SHA256
		return nf, nil
	}
	pr, pw := io.Pipe()
	stripped := make(chan error, 1)
	go func() {
		err := strip(src, pw)
		pw.CloseWithError(err)
		stripped <- err
	}()
	obj, err := f.Storage.Put(ctx, nf.Key, pr, -1, nf.ContentType)
	pr.CloseWithError(errors.New("storage stopped reading")) // unblocks a stripper Put left
	if serr := <-stripped; serr != nil {
		f.Storage.Delete(context.WithoutCancel(ctx), nf.Key)
		return nf, messenger.Errorf(messenger.EINVALID, "error.image.unreadable", c.name)
	}
	if err != nil {
		return nf, fmt.Errorf("store %s: %w", c.name, err)
	}
	nf.Size, nf.SHA256 = obj.Size, obj.SHA256
	return nf, nil
}

// removeStored deletes the objects of files stored for an upload that was not recorded.
func (f *Files) removeStored(ctx context.Context, files []store.NewFile) {
	for _, nf := range files {
		f.Storage.Delete(ctx, nf.Key)
	}
}

// validUUID answers id when it is a UUID, or the not-found error of key: an id that names
// nothing.
func validUUID(id, key string) (string, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return "", messenger.Errorf(messenger.ENOTFOUND, key)
	}
	return u.String(), nil
}

// Upload answers one of me's uploads.
func (s *Service) Upload(ctx context.Context, me messenger.User, id string) (messenger.Upload, error) {
	return byUUID(ctx, s, me, id, "error.upload.not_found", (*store.Tx).Upload)
}

// byUUID answers what get reads of id in me's transaction; an id that is not a UUID is
// the not-found error of key.
func byUUID[T any](ctx context.Context, s *Service, me messenger.User, id, key string, get func(*store.Tx, context.Context, string) (T, error)) (T, error) {
	id, err := validUUID(id, key)
	if err != nil {
		var zero T
		return zero, err
	}
	return store.InTxValue(ctx, s.db, me.Identity(), func(tx *store.Tx) (T, error) {
		return get(tx, ctx, id)
	})
}

// PendingUploads answers me's uploads to convID that are not a message (scanning, or
// infected or failed and not dismissed), oldest first: the pending bubbles of a thread.
func (s *Service) PendingUploads(ctx context.Context, me messenger.User, convID int64) ([]messenger.Upload, error) {
	if s.files == nil {
		return nil, nil
	}
	ups, err := store.InTxValue(ctx, s.db, me.Identity(), func(tx *store.Tx) ([]messenger.Upload, error) {
		return tx.PendingUploads(ctx, convID)
	})
	return ups, err
}

// DismissUpload hides one of me's infected or failed uploads from its thread, and tells
// me's streams (upload.updated with dismissed), so that other tabs drop its bubble too.
func (s *Service) DismissUpload(ctx context.Context, me messenger.User, id string) error {
	id, err := validUUID(id, "error.upload.not_found")
	if err != nil {
		return err
	}
	if err := s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error { return tx.DismissUpload(ctx, id) }); err != nil {
		return err
	}
	s.publishUpload(ctx, me.Identity(), id)
	return nil
}

// file answers a stored file me may see.
func (s *Service) file(ctx context.Context, me messenger.User, id string) (store.StoredFile, error) {
	return byUUID(ctx, s, me, id, "error.file.not_found", (*store.Tx).File)
}

// File answers a file me may see: a clean file of a conversation me is an active member
// of, or one of me's own in any state.
func (s *Service) File(ctx context.Context, me messenger.User, id string) (messenger.File, error) {
	f, err := s.file(ctx, me, id)
	return f.File, err
}

// OpenFile opens the original of a clean file me may see.
func (s *Service) OpenFile(ctx context.Context, me messenger.User, id string) (FileContent, error) {
	if s.files == nil {
		return FileContent{}, errFilesNotBuilt
	}
	f, err := s.file(ctx, me, id)
	if err != nil {
		return FileContent{}, err
	}
	if f.State != messenger.FileClean {
		return FileContent{}, messenger.Errorf(messenger.ENOTFOUND, "error.file.not_found")
	}
	return s.open(ctx, f, f.Key, f.ContentType, f.Size)
}

// OpenThumbnail opens a thumbnail (messenger.ThumbSmall, ThumbMedium, ThumbLarge) of a
// clean image me may see.
func (s *Service) OpenThumbnail(ctx context.Context, me messenger.User, id, size string) (FileContent, error) {
	if s.files == nil {
		return FileContent{}, errFilesNotBuilt
	}
	if messenger.ThumbEdge(size) == 0 {
		return FileContent{}, messenger.Errorf(messenger.ENOTFOUND, "error.thumbnail.not_found")
	}
	f, err := s.file(ctx, me, id)
	if err != nil {
		return FileContent{}, err
	}
	v, ok := f.Variant(size)
	if f.State != messenger.FileClean || !ok {
		return FileContent{}, messenger.Errorf(messenger.ENOTFOUND, "error.thumbnail.not_found")
	}
	return s.open(ctx, f, variantKey(f.Key, size), thumbContentType, v.Bytes)
}

// thumbContentType is the type of every thumbnail.
const thumbContentType = "image/webp"

// variantKey is where a thumbnail of the file stored at key lives.
func variantKey(key, size string) string { return storage.VariantKey(key, size+".webp") }

func (s *Service) open(ctx context.Context, f store.StoredFile, key, contentType string, size int64) (FileContent, error) {
	body, obj, err := s.files.Storage.Get(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return FileContent{}, messenger.Errorf(messenger.ENOTFOUND, "error.file.not_found")
	}
	if err != nil {
		return FileContent{}, fmt.Errorf("open file %s: %w", f.ID, err)
	}
	if obj.Size > 0 {
		size = obj.Size
	}
	mod := obj.ModTime
	if mod.IsZero() {
		mod = f.CreatedAt
	}
	return FileContent{File: f.File, Body: body, Size: size, ContentType: contentType, ModTime: mod}, nil
}

// DeleteFile deletes one of me's sent files: its message becomes a tombstone for everyone
// (message.updated), and a job removes the objects.
func (s *Service) DeleteFile(ctx context.Context, me messenger.User, id string) (messenger.Message, error) {
	if s.files == nil {
		return messenger.Message{}, errFilesNotBuilt
	}
	f, err := s.file(ctx, me, id)
	if err != nil {
		return messenger.Message{}, err
	}
	if f.OwnerID != me.ID || f.MessageID == 0 {
		return messenger.Message{}, messenger.Errorf(messenger.EFORBIDDEN, "error.file.not_sender")
	}
	var msg messenger.Message
	var members []int64
	var zone int64
	var changed bool
	err = s.inOrder(f.ConversationID, func() error {
		err := s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error {
			// Me must still be in the conversation: its members are told.
			if _, err := tx.Conversation(ctx, f.ConversationID); err != nil {
				return err
			}
			d, err := tx.DeleteFile(ctx, f.ID)
			if err != nil {
				return err
			}
			changed = d.Deleted
			if changed {
				if err := tx.Enqueue(ctx, s.files.Jobs, DeleteArgs{FileID: f.ID, jobAttempts: jobAttempts{s.files.DeleteAttempts}}); err != nil {
					return err
				}
				if err := audit(ctx, tx, f.ConversationID, messenger.AuditFileDeleted, nil,
					map[string]any{"file_id": f.ID, "message_id": d.MessageID}); err != nil {
					return err
				}
			}
			if msg, err = tx.Message(ctx, d.MessageID); err != nil {
				return err
			}
			if zone, err = tx.AnnouncementZone(ctx, f.ConversationID); err != nil || zone != 0 {
				return err
			}
			members, err = tx.ParticipantIDs(ctx, f.ConversationID)
			return err
		})
		if err != nil || !changed {
			return err
		}
		if zone != 0 {
			s.publishAnnouncementUpdate(ctx, zone, msg)
		} else {
			s.publish(ctx, members, EventMessageUpdated, msg)
		}
		return nil
	})
	return msg, err
}

// The jobs.

// jobAttempts is what a file job is enqueued with besides its ids: its attempts
// (Files.ScanAttempts or Files.DeleteAttempts), never stored in its arguments.
type jobAttempts struct {
	attempts int
}

// InsertOpts gives the job its attempts.
func (a jobAttempts) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: a.attempts} }

// ScanArgs is the scan job of an upload.
type ScanArgs struct {
	UploadID string `json:"upload_id"`
	jobAttempts
}

// Kind names the job.
func (ScanArgs) Kind() string { return "file_scan" }

// ThumbnailArgs is the job that makes an upload's thumbnails and then its message.
type ThumbnailArgs struct {
	UploadID string `json:"upload_id"`
	jobAttempts
}

// Kind names the job.
func (ThumbnailArgs) Kind() string { return "file_thumbnails" }

// DeleteArgs is the job that removes a file's objects (original and thumbnails) once the
// database says they are to go (deleted, infected, failed).
type DeleteArgs struct {
	FileID string `json:"file_id"`
	jobAttempts
}

// Kind names the job.
func (DeleteArgs) Kind() string { return "file_delete" }

type scanWorker struct {
	river.WorkerDefaults[ScanArgs]
	s *Service
}

func (w *scanWorker) Work(ctx context.Context, job *river.Job[ScanArgs]) error {
	return w.s.lastAttempt(ctx, job.JobRow, w.s.scanUpload(ctx, job.Args.UploadID))
}

type thumbnailWorker struct {
	river.WorkerDefaults[ThumbnailArgs]
	s *Service
}

func (w *thumbnailWorker) Work(ctx context.Context, job *river.Job[ThumbnailArgs]) error {
	return w.s.lastAttempt(ctx, job.JobRow, w.s.finishUpload(ctx, job.Args.UploadID))
}

// lastAttempt answers a file job's error, except on its last attempt: then the upload
// fails for good (the uploader is told, its objects go) rather than wait forever, still
// unscanned and unseen. The last attempt is the service's Files.ScanAttempts, never the
// job row's max_attempts: anyone with the app role can insert a job of one attempt for
// someone else's upload, which River then discards without failing the upload.
func (s *Service) lastAttempt(ctx context.Context, job *rivertype.JobRow, err error) error {
	if err == nil || s.files == nil || job.Attempt < s.files.ScanAttempts {
		return err
	}
	var args struct {
		UploadID string `json:"upload_id"`
	}
	if jerr := json.Unmarshal(job.EncodedArgs, &args); jerr != nil {
		return errors.Join(err, jerr)
	}
	ctx = context.WithoutCancel(ctx) // the attempt may have ended by its timeout
	up, lerr := s.jobUpload(ctx, args.UploadID, nil)
	if lerr == nil && up != nil {
		lerr = s.failUpload(ctx, up)
	}
	if lerr != nil {
		return errors.Join(err, lerr)
	}
	s.logger.ErrorContext(ctx, "file job gave up: the upload failed", slog.String("kind", job.Kind),
		slog.String("upload_id", args.UploadID), slog.Int("attempts", job.Attempt), slog.String("error", err.Error()))
	return nil
}

type deleteWorker struct {
	river.WorkerDefaults[DeleteArgs]
	s *Service
}

func (w *deleteWorker) Work(ctx context.Context, job *river.Job[DeleteArgs]) error {
	return w.s.removeObjects(ctx, job.Args.FileID)
}

// RegisterWorkers adds the file jobs (scan, thumbnails and the message, delete) to w.
func (s *Service) RegisterWorkers(w *river.Workers) {
	river.AddWorker(w, &scanWorker{s: s})
	river.AddWorker(w, &thumbnailWorker{s: s})
	river.AddWorker(w, &deleteWorker{s: s})
}

// jobUpload loads an upload for a job; nil when there is none (its conversation went, or
// the job's arguments name nothing).
func (s *Service) jobUpload(ctx context.Context, id string, fn func(tx *store.Tx, up store.JobUpload) error) (*store.JobUpload, error) {
	if s.files == nil {
		return nil, errFilesNotBuilt // files not enabled in this process: try again later
	}
	if _, err := uuid.Parse(id); err != nil {
		return nil, nil
	}
	var up store.JobUpload
	err := s.db.InTx(ctx, nobody, func(tx *store.Tx) error {
		var err error
		if up, err = tx.JobUpload(ctx, id); err != nil {
			return err
		}
		trace.SetUser(ctx, up.Uploader.UserID)
		trace.SetConversation(ctx, up.ConversationID)
		if fn == nil {
			return nil
		}
		return fn(tx, up)
	})
	if messenger.ErrorCode(err) == messenger.ENOTFOUND {
		s.logger.WarnContext(ctx, "file job: no such upload", slog.String("upload_id", id))
		return nil, nil
	}
	return &up, err
}

// scanUpload scans each file of an upload not scanned yet and records its verdict. A
// scanner error is the job's error (River retries with backoff; nothing passes meanwhile);
// an infected file ends the upload; the last clean verdict enqueues the thumbnail job.
func (s *Service) scanUpload(ctx context.Context, id string) error {
	up, err := s.jobUpload(ctx, id, func(tx *store.Tx, up store.JobUpload) error {
		if up.State != messenger.UploadScanning {
			return nil
		}
		return tx.MarkScanning(ctx, up.ID)
	})
	if err != nil || up == nil || up.State != messenger.UploadScanning {
		return err
	}
	f := s.files
	version := "none"
	if f.Scanner != nil {
		if version, err = f.Scanner.Version(ctx); err != nil {
			version = "unknown"
		}
	}
	for _, file := range up.Files {
		if file.State != messenger.FileUploaded && file.State != messenger.FileScanning {
			continue
		}
		rec := store.ScanRecord{FileID: file.ID, Scanner: version, Verdict: store.VerdictSkipped}
		if f.Scanner != nil {
			start := time.Now()
			res, serr := s.scanObject(ctx, file.Key, err)
			rec.DurationMS = int(time.Since(start).Milliseconds())
			if errors.Is(serr, storage.ErrNotFound) {
				s.logger.ErrorContext(ctx, "file scan: the stored file is gone", slog.String("upload_id", up.ID), slog.String("file_id", file.ID))
				return s.failUpload(ctx, up)
			}
			if serr != nil {
				rec.Verdict, rec.Error = store.VerdictError, serr.Error()
				// Recorded even when the job's context ended (the scan was cut).
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				rerr := s.db.InTx(rctx, nobody, func(tx *store.Tx) error {
					_, _, err := tx.RecordScan(rctx, rec)
					return err
				})
				cancel()
				if rerr != nil {
					s.logger.ErrorContext(ctx, "file scan: record the error", slog.String("error", rerr.Error()))
				}
				return s.scanFailed(ctx, up, file.ID, serr)
			}
			rec.Verdict, rec.Signature = store.VerdictClean, res.Signature
			if res.Infected() {
				rec.Verdict = store.VerdictInfected
			}
		}
		state, err := s.recordVerdict(ctx, up, rec)
		if err != nil {
			return err
		}
		s.metrics.scans.WithLabelValues(rec.Verdict).Inc()
		if state == messenger.UploadInfected {
			s.logger.WarnContext(ctx, "file infected", slog.String("upload_id", up.ID), slog.String("file_id", file.ID),
				slog.String("signature", rec.Signature))
			s.publishUpload(ctx, up.Uploader, up.ID)
			return nil
		}
	}
	return nil
}

// scanObject streams a stored file to the scanner; a scanner that did not tell its
// version (versionErr) is not asked to scan.
func (s *Service) scanObject(ctx context.Context, key string, versionErr error) (scan.Result, error) {
	if versionErr != nil {
		return scan.Result{}, versionErr
	}
	body, _, err := s.files.Storage.Get(ctx, key)
	if err != nil {
		return scan.Result{}, err
	}
	defer body.Close()
	return s.files.Scanner.Scan(ctx, body)
}

// scanFailed counts and logs a scan that gave no verdict, and answers err for River to
// retry the job.
func (s *Service) scanFailed(ctx context.Context, up *store.JobUpload, fileID string, err error) error {
	s.metrics.scanFailures.Inc()
	s.logger.WarnContext(ctx, "file scan failed: the upload waits", slog.String("upload_id", up.ID), slog.String("file_id", fileID),
		slog.String("error", err.Error()))
	return fmt.Errorf("scan upload %s: %w", up.ID, err)
}

// recordVerdict records a file's verdict and, in the same transaction, what follows: the
// thumbnail job once every file is clean, the delete jobs once the upload is infected.
func (s *Service) recordVerdict(ctx context.Context, up *store.JobUpload, rec store.ScanRecord) (string, error) {
	var state string
	err := s.db.InTx(ctx, nobody, func(tx *store.Tx) error {
		var allClean bool
		var err error
		state, allClean, err = tx.RecordScan(ctx, rec)
		switch {
		case err != nil:
			return err
		case state == messenger.UploadInfected && rec.Verdict == store.VerdictInfected:
			return s.enqueueDeletes(ctx, tx, up)
		case allClean:
			return tx.Enqueue(ctx, s.files.Jobs, ThumbnailArgs{UploadID: up.ID, jobAttempts: jobAttempts{s.files.ScanAttempts}})
		}
		return nil
	})
	return state, err
}

func (s *Service) enqueueDeletes(ctx context.Context, tx *store.Tx, up *store.JobUpload) error {
	for _, f := range up.Files {
		if err := tx.Enqueue(ctx, s.files.Jobs, DeleteArgs{FileID: f.ID, jobAttempts: jobAttempts{s.files.DeleteAttempts}}); err != nil {
			return err
		}
	}
	return nil
}

// failUpload ends an upload that cannot become a message, removes its objects (a job) and
// tells the uploader.
func (s *Service) failUpload(ctx context.Context, up *store.JobUpload) error {
	err := s.db.InTx(ctx, nobody, func(tx *store.Tx) error {
		failed, err := tx.FailUpload(ctx, up.ID)
		if err != nil || !failed {
			return err
		}
		return s.enqueueDeletes(ctx, tx, up)
	})
	if err != nil {
		return err
	}
	s.publishUpload(ctx, up.Uploader, up.ID)
	return nil
}

// publishUpload tells the uploader's streams the upload's state (upload.updated), in the
// conversation's order (see CreateUpload). The caller holds no conversation lock.
func (s *Service) publishUpload(ctx context.Context, uploader messenger.Identity, id string) {
	up, err := store.InTxValue(ctx, s.db, uploader, func(tx *store.Tx) (messenger.Upload, error) {
		return tx.Upload(ctx, id)
	})
	if err != nil {
		s.logger.ErrorContext(ctx, "load upload to announce", slog.String("upload_id", id), slog.String("error", err.Error()))
		return
	}
	s.inOrder(up.ConversationID, func() error {
		s.publish(ctx, []int64{uploader.UserID}, EventUploadUpdated, up)
		return nil
	})
}

// finishUpload makes the thumbnails of an upload's clean images, then stores its message
// acting as the uploader and announces it.
func (s *Service) finishUpload(ctx context.Context, id string) error {
	up, err := s.jobUpload(ctx, id, nil)
	if err != nil || up == nil || up.State != messenger.UploadScanning {
		return err
	}
	for _, file := range up.Files {
		if file.State != messenger.FileClean {
			// Not due: the scan's last clean verdict enqueues this job (this one was not).
			s.logger.WarnContext(ctx, "file thumbnails: the upload is not clean yet", slog.String("upload_id", id))
			return nil
		}
	}
	for _, file := range up.Files {
		if len(file.Variants) > 0 {
			continue
		}
		kind, ok := imageKind(file.ContentType)
		if !ok {
			continue
		}
		if err := s.thumbnail(ctx, file, kind); err != nil {
			return err
		}
	}
	return s.storeFileMessage(ctx, up)
}

// imageKind answers the picture kind of a content type, if it is one.
func imageKind(contentType string) (upload.Kind, bool) {
	for _, k := range []upload.Kind{upload.JPEG, upload.PNG, upload.WebP, upload.GIF} {
		if k.ContentType() == contentType {
			return k, true
		}
	}
	return "", false
}

// thumbnail makes and stores one image's thumbnails and records them. An image that
// cannot be decoded goes without (shown as a document); a storage error is the job's.
func (s *Service) thumbnail(ctx context.Context, file store.StoredFile, kind upload.Kind) error {
	th, src, err := s.decodeThumbnails(ctx, file, kind)
	if err != nil {
		if src == nil {
			return err
		}
		if src.err != nil || messenger.ErrorCode(err) == "" {
			return fmt.Errorf("thumbnails of %s: %w", file.ID, errors.Join(src.err, err)) // storage: try again
		}
		s.logger.WarnContext(ctx, "thumbnails: the image goes without", slog.String("file_id", file.ID), slog.String("error", err.Error()))
		return nil
	}
	variants := make([]messenger.Variant, 0, len(th.Items))
	for _, t := range th.Items {
		if _, err := s.files.Storage.Put(ctx, variantKey(file.Key, t.Variant.Size), bytes.NewReader(t.Data),
			int64(len(t.Data)), thumbContentType); err != nil {
			return fmt.Errorf("store thumbnail of %s: %w", file.ID, err)
		}
		variants = append(variants, t.Variant)
	}
	return s.db.InTx(ctx, nobody, func(tx *store.Tx) error {
		return tx.SetVariants(ctx, file.ID, variants, th.Width, th.Height)
	})
}

// decodeThumbnails reads a stored picture and makes its thumbnails once its pixels fit in
// the decoding budget (Files.ThumbnailMaxPixels), held until they are made. The reader
// tells a storage error while decoding, worth a retry, from a damaged picture; it is nil
// when the picture was not read (the wait ended, storage failed): a retry too.
func (s *Service) decodeThumbnails(ctx context.Context, file store.StoredFile, kind upload.Kind) (upload.Thumbs, *readErr, error) {
	start := time.Now()
	release, err := s.files.decodePixels(ctx, int64(file.Width)*int64(file.Height))
	s.metrics.thumbWait.Observe(time.Since(start).Seconds())
	if err != nil {
		return upload.Thumbs{}, nil, fmt.Errorf("thumbnails of %s: wait for memory: %w", file.ID, err)
	}
	defer release()
	body, _, err := s.files.Storage.Get(ctx, file.Key)
	if err != nil {
		return upload.Thumbs{}, nil, fmt.Errorf("thumbnails of %s: %w", file.ID, err)
	}
	defer body.Close()
	src := &readErr{r: body}
	th, err := upload.Thumbnails(src, upload.Info{Kind: kind, ContentType: file.ContentType, Width: file.Width, Height: file.Height})
	return th, src, err
}

// decodePixels waits until pixels more may be decoded (all of the budget for a picture
// larger than it) or ctx ends, and answers the function that gives them back.
func (f *Files) decodePixels(ctx context.Context, pixels int64) (func(), error) {
	n := min(max(pixels, 1), f.ThumbnailMaxPixels)
	if err := f.decoding.Acquire(ctx, n); err != nil {
		return nil, err
	}
	return func() { f.decoding.Release(n) }, nil
}

// readErr remembers the error of a read that was not the end, so that a storage failure
// (worth a retry) is told from a damaged picture (which goes without thumbnails).
type readErr struct {
	r   io.Reader
	err error
}

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// storeFileMessage stores the upload's message as its uploader and announces it as
// SendMessage does (in the conversation's order), then tells the uploader's streams. An
// uploader who may no longer post there gets no message: the upload fails and its objects
// go.
func (s *Service) storeFileMessage(ctx context.Context, up *store.JobUpload) error {
	var fm store.FileMessage
	err := s.inOrder(up.ConversationID, func() error {
		err := s.db.InTx(ctx, up.Uploader, func(tx *store.Tx) error {
			var err error
			if fm, err = tx.StoreFileMessage(ctx, up.ID); err != nil {
				return err
			}
			if fm.State == messenger.UploadFailed {
				return s.enqueueDeletes(ctx, tx, up)
			}
			if fm.Created && fm.ZoneID != 0 {
				if err := audit(ctx, tx, up.ConversationID, messenger.AuditAnnouncement, nil, map[string]any{"seq": fm.Message.Seq}); err != nil {
					return err
				}
			}
			if fm.Created {
				return s.enqueuePush(ctx, tx)
			}
			return nil
		})
		if err != nil || !fm.Created {
			return err
		}
		if fm.ZoneID != 0 {
			s.publishAnnouncement(ctx, fm.ZoneID, fm.Message)
		} else {
			s.publish(ctx, fm.Members, EventMessageNew, fm.Message)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if fm.Created {
		s.metrics.messages.WithLabelValues(messenger.MessageFile).Inc()
	}
	if fm.Created || fm.State == messenger.UploadFailed {
		s.publishUpload(ctx, up.Uploader, up.ID)
	}
	return nil
}

// removeObjects deletes a file's objects, original and thumbnails, once the database says
// the file is deleted, infected or failed: a job's arguments alone delete nothing.
func (s *Service) removeObjects(ctx context.Context, fileID string) error {
	if s.files == nil {
		return errFilesNotBuilt
	}
	if _, err := uuid.Parse(fileID); err != nil {
		return nil
	}
	key, err := store.InTxValue(ctx, s.db, nobody, func(tx *store.Tx) (string, error) {
		return tx.FileObjects(ctx, fileID)
	})
	if err != nil || key == "" {
		return err
	}
	for _, size := range messenger.ThumbSizes {
		if err := s.files.Storage.Delete(ctx, variantKey(key, size)); err != nil {
			return err
		}
	}
	return s.files.Storage.Delete(ctx, key)
}
