package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/lib/pq"
	"github.com/riverqueue/river"

	"github.com/dreamseed/messenger"
)

// Enqueuer puts a job in a transaction (jobs.Runner): the job exists if and only if the
// transaction commits.
type Enqueuer interface {
	InsertTx(ctx context.Context, tx *sql.Tx, args river.JobArgs) error
	InsertManyTx(ctx context.Context, tx *sql.Tx, args []river.JobArgs) error
}

// Enqueue adds a job to this transaction, so that it exists exactly when what it is for
// does.
func (tx *Tx) Enqueue(ctx context.Context, q Enqueuer, args river.JobArgs) error {
	return q.InsertTx(ctx, tx.tx.Tx, args)
}

// EnqueueMany adds jobs to this transaction in one statement.
func (tx *Tx) EnqueueMany(ctx context.Context, q Enqueuer, args []river.JobArgs) error {
	return q.InsertManyTx(ctx, tx.tx.Tx, args)
}

// NewUpload is an upload to record: its files are stored already.
type NewUpload struct {
	ID             string // UUID
	ConversationID int64
	ClientMsgID    string // UUID
	Caption        string
	Files          []NewFile
}

// NewFile is a stored file of a NewUpload.
type NewFile struct {
	ID            string // UUID
	Key           string // its storage key
	Name          string
	ContentType   string
	Size          int64
	SHA256        string
	Width, Height int
}

// ErrUploadExists means the transaction's user recorded an upload with this client_msg_id
// already (a concurrent request won the race).
var ErrUploadExists = errors.New("store: an upload with this client_msg_id exists")

// InsertUpload records an upload of the transaction's user and its files (state
// uploaded), where they may post. The database checks again that the user may post there
// and that the files join only this new upload.
func (tx *Tx) InsertUpload(ctx context.Context, nu NewUpload) error {
	_, err := tx.tx.ExecContext(ctx,
		`INSERT INTO uploads (id, conversation_id, org_id, uploader_id, client_msg_id, caption)
		 VALUES ($1, $2, $3, $4, $5, $6)`,
		nu.ID, nu.ConversationID, tx.id.OrgID, tx.id.UserID, nu.ClientMsgID, nu.Caption)
	if err != nil {
		var pqErr *pq.Error
		switch {
		case asPQ(err, &pqErr) && pqErr.Code == "23505" && pqErr.Constraint == "uploads_uploader_id_client_msg_id_key":
			return ErrUploadExists
		case wallRefused(err):
			return messenger.Errorf(messenger.EFORBIDDEN, "error.cannot_post")
		}
		return fmt.Errorf("insert upload: %w", err)
	}
	for i, f := range nu.Files {
		_, err := tx.tx.ExecContext(ctx,
			`INSERT INTO files (id, upload_id, position, conversation_id, org_id, owner_id, storage_key, name,
			                    content_type, size, sha256, width, height)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			f.ID, nu.ID, i, nu.ConversationID, tx.id.OrgID, tx.id.UserID, f.Key, f.Name,
			f.ContentType, f.Size, f.SHA256, f.Width, f.Height)
		if err != nil {
			return fmt.Errorf("insert file: %w", err)
		}
	}
	return nil
}

const uploadColumns = `u.id, u.conversation_id, u.uploader_id, u.client_msg_id, u.caption, u.state,
	coalesce(u.message_id, 0), u.created_at, u.dismissed_at IS NOT NULL`

// queryUploads answers the transaction user's uploads that where selects (after FROM
// uploads u), with their files.
func (tx *Tx) queryUploads(ctx context.Context, where string, args ...any) ([]messenger.Upload, error) {
	rows, err := tx.tx.QueryContext(ctx, `SELECT `+uploadColumns+` FROM uploads u `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("uploads: %w", err)
	}
	defer rows.Close()
	var ups []messenger.Upload
	for rows.Next() {
		var u messenger.Upload
		if err := rows.Scan(&u.ID, &u.ConversationID, &u.UploaderID, &u.ClientMsgID, &u.Caption, &u.State,
			&u.MessageID, &u.CreatedAt, &u.Dismissed); err != nil {
			return nil, err
		}
		ups = append(ups, u)
	}
	if err := rows.Err(); err != nil || len(ups) == 0 {
		return ups, err
	}
	rows.Close()
	ids := make([]string, len(ups))
	byID := make(map[string]*messenger.Upload, len(ups))
	for i := range ups {
		ids[i] = ups[i].ID
		byID[ups[i].ID] = &ups[i]
	}
	files, err := tx.queryFiles(ctx, `WHERE f.upload_id = ANY($1::uuid[]) ORDER BY f.upload_id, f.position`, pq.Array(ids))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		u := byID[f.UploadID]
		u.Files = append(u.Files, f.File)
	}
	return ups, nil
}

// Upload answers one of the transaction user's uploads.
func (tx *Tx) Upload(ctx context.Context, id string) (messenger.Upload, error) {
	ups, err := tx.queryUploads(ctx, `WHERE u.id = $1`, id)
	return first(ups, err, "error.upload.not_found")
}

// UploadByClientID answers the transaction user's upload with this client_msg_id.
func (tx *Tx) UploadByClientID(ctx context.Context, clientMsgID string) (messenger.Upload, error) {
	ups, err := tx.queryUploads(ctx, `WHERE u.uploader_id = $1 AND u.client_msg_id = $2`, tx.id.UserID, clientMsgID)
	return first(ups, err, "error.upload.not_found")
}

// PendingUploads answers the transaction user's uploads to a conversation that are not a
// message and not dismissed, oldest first.
func (tx *Tx) PendingUploads(ctx context.Context, convID int64) ([]messenger.Upload, error) {
	return tx.queryUploads(ctx,
		`WHERE u.uploader_id = $1 AND u.conversation_id = $2 AND u.message_id IS NULL AND u.dismissed_at IS NULL
		 ORDER BY u.created_at, u.id`, tx.id.UserID, convID)
}

// DismissUpload hides one of the transaction user's infected or failed uploads.
func (tx *Tx) DismissUpload(ctx context.Context, id string) error {
	return tx.gate(ctx, "dismiss upload", "error.upload.not_found", `SELECT app_dismiss_upload($1)`, id)
}

// StoredFile is a file with where its bytes are.
type StoredFile struct {
	messenger.File
	Key string
}

const fileColumns = `f.id, f.upload_id, f.conversation_id, coalesce(f.message_id, 0), f.owner_id, f.name,
	f.content_type, f.size, f.sha256, f.width, f.height, f.state, f.scanned, f.variants, f.created_at, f.storage_key`

func (tx *Tx) queryFiles(ctx context.Context, where string, args ...any) ([]StoredFile, error) {
	rows, err := tx.tx.QueryContext(ctx, `SELECT `+fileColumns+` FROM files f `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("files: %w", err)
	}
	defer rows.Close()
	var out []StoredFile
	for rows.Next() {
		var f StoredFile
		var variants []byte
		if err := rows.Scan(&f.ID, &f.UploadID, &f.ConversationID, &f.MessageID, &f.OwnerID, &f.Name,
			&f.ContentType, &f.Size, &f.SHA256, &f.Width, &f.Height, &f.State, &f.Scanned, &variants,
			&f.CreatedAt, &f.Key); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(variants, &f.Variants); err != nil {
			return nil, fmt.Errorf("file %s variants: %w", f.ID, err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// File answers a file the transaction's user may see: their own in any state, or a clean
// one of a message of a conversation they are an active member of (row-level security).
func (tx *Tx) File(ctx context.Context, id string) (StoredFile, error) {
	files, err := tx.queryFiles(ctx, `WHERE f.id = $1`, id)
	return first(files, err, "error.file.not_found")
}

// fillFiles gives the file messages of msgs their clean files, in the order sent.
func (tx *Tx) fillFiles(ctx context.Context, msgs []messenger.Message) error {
	var ids []int64
	byID := map[int64]*messenger.Message{}
	for i := range msgs {
		if msgs[i].Kind == messenger.MessageFile && !msgs[i].Deleted {
			ids = append(ids, msgs[i].ID)
			byID[msgs[i].ID] = &msgs[i]
		}
	}
	if len(ids) == 0 {
		return nil
	}
	files, err := tx.queryFiles(ctx, `WHERE f.message_id = ANY($1) AND f.state = 'clean' ORDER BY f.message_id, f.position`,
		pq.Array(ids))
	if err != nil {
		return fmt.Errorf("message files: %w", err)
	}
	for _, f := range files {
		m := byID[f.MessageID]
		m.Files = append(m.Files, f.File)
	}
	return nil
}

// FileMessage is what StoreFileMessage did.
type FileMessage struct {
	Sent
	State string // the upload's state: clean, or failed when the uploader may no longer post there
}

// StoreFileMessage stores the file message of the transaction user's upload, whose files
// are all clean, through the gate; an upload that is a message already answers it with
// Created false. When the user may no longer post there the upload fails (State failed,
// no message).
func (tx *Tx) StoreFileMessage(ctx context.Context, uploadID string) (FileMessage, error) {
	var out FileMessage
	var msgID sql.NullInt64
	err := tx.tx.QueryRowContext(ctx, `SELECT message_id, created, upload_state FROM app_store_file_message($1)`, uploadID).
		Scan(&msgID, &out.Created, &out.State)
	if err != nil {
		return out, fmt.Errorf("store file message: %w", err)
	}
	if !msgID.Valid {
		return out, nil
	}
	msgs, err := tx.queryMessages(ctx, `WHERE m.id = $1`, msgID.Int64)
	if err != nil || len(msgs) != 1 {
		return out, fmt.Errorf("load file message: %d, %w", len(msgs), err)
	}
	out.Message = msgs[0]
	var kind string
	err = tx.tx.QueryRowContext(ctx, `SELECT kind, coalesce(zone_id, 0) FROM conversations WHERE id = $1`,
		out.Message.ConversationID).Scan(&kind, &out.ZoneID)
	if err != nil {
		return out, fmt.Errorf("file message conversation: %w", err)
	}
	if kind != messenger.KindAnnouncement {
		out.ZoneID = 0
		out.Members, err = tx.ParticipantIDs(ctx, out.Message.ConversationID)
	}
	return out, err
}

// DeletedFile is what DeleteFile did.
type DeletedFile struct {
	MessageID      int64
	ConversationID int64
	Deleted        bool // false: it was deleted before
	Tombstone      bool // its message has no file left
}

// DeleteFile deletes a file the transaction's user sent, through the gate; a file they did
// not send (or cannot see) is not found.
func (tx *Tx) DeleteFile(ctx context.Context, id string) (DeletedFile, error) {
	var d DeletedFile
	err := tx.tx.QueryRowContext(ctx, `SELECT message_id, conversation_id, deleted, tombstone FROM app_delete_file($1)`, id).
		Scan(&d.MessageID, &d.ConversationID, &d.Deleted, &d.Tombstone)
	if wallRefused(err) {
		return d, messenger.Errorf(messenger.ENOTFOUND, "error.file.not_found")
	}
	if err != nil {
		return d, fmt.Errorf("delete file: %w", err)
	}
	return d, nil
}

// ClientMsgIDUsed reports whether the transaction's user sent a message with this
// client_msg_id.
func (tx *Tx) ClientMsgIDUsed(ctx context.Context, clientMsgID string) (bool, error) {
	var used bool
	err := tx.tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM messages WHERE sender_id = $1 AND client_msg_id = $2)`,
		tx.id.UserID, clientMsgID).Scan(&used)
	return used, err
}

// Message answers one message of a conversation the transaction's user may read.
func (tx *Tx) Message(ctx context.Context, id int64) (messenger.Message, error) {
	msgs, err := tx.queryMessages(ctx, `WHERE m.id = $1`, id)
	return first(msgs, err, "error.message.not_found")
}

// The jobs' side: each runs in a transaction acting as nobody (DB.InTx with a zero
// Identity), through gates that refuse inside a user's transaction.

// JobUpload is an upload as a job sees it: who uploaded it and where its files are.
type JobUpload struct {
	ID             string
	Uploader       messenger.Identity
	ConversationID int64
	State          string
	MessageID      int64
	Files          []StoredFile
}

// JobUpload answers an upload for a job; not found when there is none.
func (tx *Tx) JobUpload(ctx context.Context, id string) (JobUpload, error) {
	rows, err := tx.tx.QueryContext(ctx,
		`SELECT uploader_id, org_id, zone_id, conversation_id, upload_state, message_id, file_id, storage_key,
		        content_type, name, size, width, height, state, variants
		   FROM app_file_job($1)`, id)
	if err != nil {
		return JobUpload{}, fmt.Errorf("job upload: %w", err)
	}
	defer rows.Close()
	up := JobUpload{ID: id}
	for rows.Next() {
		var f StoredFile
		var variants []byte
		if err := rows.Scan(&up.Uploader.UserID, &up.Uploader.OrgID, &up.Uploader.ZoneID, &up.ConversationID,
			&up.State, &up.MessageID, &f.ID, &f.Key, &f.ContentType, &f.Name, &f.Size, &f.Width, &f.Height,
			&f.State, &variants); err != nil {
			return JobUpload{}, err
		}
		if err := json.Unmarshal(variants, &f.Variants); err != nil {
			return JobUpload{}, err
		}
		f.UploadID, f.ConversationID, f.OwnerID = id, up.ConversationID, up.Uploader.UserID
		up.Files = append(up.Files, f)
	}
	if err := rows.Err(); err != nil {
		return JobUpload{}, err
	}
	if len(up.Files) == 0 {
		return JobUpload{}, messenger.Errorf(messenger.ENOTFOUND, "error.upload.not_found")
	}
	return up, nil
}

// MarkScanning marks an upload's files not yet scanned as being scanned.
func (tx *Tx) MarkScanning(ctx context.Context, uploadID string) error {
	if _, err := tx.tx.ExecContext(ctx, `SELECT app_file_scanning($1)`, uploadID); err != nil {
		return fmt.Errorf("mark scanning: %w", err)
	}
	return nil
}

// Scan verdicts as file_scans records them.
const (
	VerdictClean    = "clean"
	VerdictInfected = "infected"
	VerdictError    = "error"
	VerdictSkipped  = "skipped" // no scanner configured (development only)
)

// ScanRecord is one scan of a file.
type ScanRecord struct {
	FileID     string
	Scanner    string // its version, "none" without one
	Verdict    string
	Signature  string
	Error      string
	DurationMS int
}

// RecordScan records a scan and, for a verdict, the file's state; it answers the upload's
// state after it and whether every file of the upload is clean now.
func (tx *Tx) RecordScan(ctx context.Context, r ScanRecord) (uploadState string, allClean bool, err error) {
	err = tx.tx.QueryRowContext(ctx, `SELECT upload_state, all_clean FROM app_record_scan($1, $2, $3, $4, $5, $6)`,
		r.FileID, r.Scanner, r.Verdict, r.Signature, r.Error, r.DurationMS).Scan(&uploadState, &allClean)
	if err != nil {
		return "", false, fmt.Errorf("record scan: %w", err)
	}
	return uploadState, allClean, nil
}

// SetVariants records a clean image's thumbnails and its display size.
func (tx *Tx) SetVariants(ctx context.Context, fileID string, variants []messenger.Variant, width, height int) error {
	raw, err := json.Marshal(variants)
	if err != nil {
		return err
	}
	if _, err := tx.tx.ExecContext(ctx, `SELECT app_set_variants($1, $2, $3, $4)`, fileID, string(raw), width, height); err != nil {
		return fmt.Errorf("set variants: %w", err)
	}
	return nil
}

// FailUpload ends an upload that cannot become a message; false when it was not scanning.
func (tx *Tx) FailUpload(ctx context.Context, uploadID string) (bool, error) {
	var done bool
	if err := tx.tx.QueryRowContext(ctx, `SELECT app_fail_upload($1)`, uploadID).Scan(&done); err != nil {
		return false, fmt.Errorf("fail upload: %w", err)
	}
	return done, nil
}

// FileObjects answers the storage key of a deleted, infected or failed file ("" for any
// other file, or none).
func (tx *Tx) FileObjects(ctx context.Context, fileID string) (string, error) {
	var key sql.NullString
	if err := tx.tx.QueryRowContext(ctx, `SELECT app_file_objects($1)`, fileID).Scan(&key); err != nil {
		return "", fmt.Errorf("file objects: %w", err)
	}
	return key.String, nil
}
