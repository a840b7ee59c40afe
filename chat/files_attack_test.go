package chat_test

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/storage"
)

// forgeJob inserts a job as the application's role acting as u, as a bug or an injection in
// u's request could: River's tables carry no row-level security, so any kind, arguments
// and attempt count go in.
func (e *fileEnv) forgeJob(u messenger.User, kind, args string, maxAttempts int) int64 {
	e.t.Helper()
	tx, err := e.app.Begin()
	if err != nil {
		e.t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`SELECT set_config('app.user_id', $1, true), set_config('app.org_id', $2, true)`,
		strconv.FormatInt(u.ID, 10), strconv.FormatInt(u.OrgID, 10)); err != nil {
		e.t.Fatal(err)
	}
	var id int64
	if err := tx.QueryRow(`INSERT INTO river_job (kind, args, max_attempts, queue, state) VALUES ($1, $2, $3, 'default', 'available')
	                       RETURNING id`, kind, args, maxAttempts).Scan(&id); err != nil {
		e.t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// TestForgedJobsCannotFailAnUpload: a job's arguments and attempts are not to be trusted.
// While the scanner is down, another user enqueues a thumbnail job and a scan job for the
// victim's pending upload, each with a single attempt: neither ends the upload (whose
// thumbnail job is not due, and whose own scan job still has its attempts), its object
// stays, and once the scanner is back it becomes exactly one message.
func TestForgedJobsCannotFailAnUpload(t *testing.T) {
	ctx := context.Background()
	e, u, conv := newFileGroup(t)
	e.scanner.point(t, "tcp://127.0.0.1:1")
	up, _, err := e.svc.CreateUpload(ctx, u.a, conv, uuid.NewString(), "", []chat.UploadFile{file("a.pdf", pdfBytes)})
	if err != nil {
		t.Fatal(err)
	}
	key := e.value(`SELECT storage_key FROM files WHERE upload_id = $1`, up.ID)
	args := `{"upload_id": "` + up.ID + `"}`
	forged := []int64{
		e.forgeJob(u.c, "file_thumbnails", args, 1),
		e.forgeJob(u.c, "file_scan", args, 1),
	}
	for _, id := range forged {
		eventually(t, "the forged job ran", func() bool {
			return e.value(`SELECT finalized_at IS NOT NULL FROM river_job WHERE id = $1`, id) == "true"
		})
	}
	if got, _ := e.svc.Upload(ctx, u.a, up.ID); got.State != messenger.UploadScanning {
		t.Fatalf("after the forged jobs the upload is %s", got.State)
	}
	if e.objectGone(key) {
		t.Fatal("the forged jobs removed the upload's object")
	}
	e.scanner.point(t, e.clamd.TCP)
	if got := e.settled(u.a, up.ID); got.State != messenger.UploadClean {
		t.Fatalf("upload %+v", got)
	}
	e.wantValue("1", "file messages", `SELECT count(*) FROM messages WHERE conversation_id = $1 AND kind = 'file'`, conv)
}

// deleteOutage is the disk store with deletions failing while down is set: object storage
// that is unreachable for a while.
type deleteOutage struct {
	storage.Store
	down atomic.Bool
}

func (d *deleteOutage) Delete(ctx context.Context, key string) error {
	if d.down.Load() {
		return errors.New("storage unreachable")
	}
	return d.Store.Delete(ctx, key)
}

// TestDeletedFileGoesAfterAStorageOutage: a file deleted while the storage cannot delete
// still has its bytes removed once the storage is back. The delete job must not give up
// after the runner's few default attempts (about eight minutes of outage with the
// production backoff, a few seconds with the test's), leaving a deleted photo stored for
// good with nothing left to remove it.
func TestDeletedFileGoesAfterAStorageOutage(t *testing.T) {
	ctx := context.Background()
	e, u, conv := newFileGroup(t)
	outage := &deleteOutage{Store: e.storage}
	e.runner.Stop(ctx)
	e.files = outage
	e.runner = e.startRunner()
	up, _, err := e.svc.CreateUpload(ctx, u.a, conv, uuid.NewString(), "", []chat.UploadFile{file("a.png", pngBytes(t, 40, 30))})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.settled(u.a, up.ID); got.State != messenger.UploadClean {
		t.Fatalf("upload %+v", got)
	}
	key := e.value(`SELECT storage_key FROM files WHERE upload_id = $1`, up.ID)
	outage.down.Store(true)
	if _, err := e.svc.DeleteFile(ctx, u.a, up.Files[0].ID); err != nil {
		t.Fatal(err)
	}
	// The test runner's backoff is capped at a second: ten attempts are over in seconds.
	eventually(t, "the delete job tried twelve times", func() bool {
		return e.value(`SELECT coalesce(max(attempt), 0) >= 12 OR bool_or(finalized_at IS NOT NULL) FROM river_job WHERE kind = 'file_delete'`) == "true"
	})
	outage.down.Store(false)
	eventually(t, "the deleted file's object is removed", func() bool { return e.objectGone(key) })
	for _, size := range messenger.ThumbSizes {
		if !e.objectGone(storage.VariantKey(key, size+".webp")) {
			t.Errorf("the %s thumbnail is still stored", size)
		}
	}
}
