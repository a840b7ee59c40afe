package chat_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/jobs"
	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/scan"
	"github.com/dreamseed/messenger/scan/clamdtest"
	"github.com/dreamseed/messenger/storage"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// switchScanner is a real clamd client that a test can point elsewhere: at an address
// where nothing listens (the scanner is down), then at the real clamd again.
type switchScanner struct{ c atomic.Pointer[scan.Client] }

func (s *switchScanner) Scan(ctx context.Context, r io.Reader) (scan.Result, error) {
	return s.c.Load().Scan(ctx, r)
}

func (s *switchScanner) Version(ctx context.Context) (string, error) {
	return s.c.Load().Version(ctx)
}

func (s *switchScanner) point(t *testing.T, addr string) {
	t.Helper()
	c, err := scan.New(addr, scan.Options{DialTimeout: time.Second, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s.c.Store(c)
}

// fileEnv is a messenger with files on: a fresh database, the memory engine, disk storage
// in a temporary directory, a real clamd and the real River runner working the jobs.
type fileEnv struct {
	*chatEnv
	storage *storage.Disk
	root    string // the disk store's directory
	scanner *switchScanner
	clamd   *clamdtest.Server

	withScanner bool
	runner      *jobs.Runner

	scanAttempts int           // Files.ScanAttempts of the next runner started
	thumbPixels  int64         // Files.ThumbnailMaxPixels of the next runner started
	files        storage.Store // Files.Storage of the next runner started, when not the disk store
}

func newFileEnv(t *testing.T) *fileEnv { return newFileEnvScanner(t, true) }

// newFileGroup is a file environment with its users and a group of a (admin) and b.
func newFileGroup(t *testing.T) (*fileEnv, users, int64) {
	e := newFileEnv(t)
	u := e.users()
	return e, u, e.group(u.a, u.b)
}

// newFileEnvScanner is newFileEnv, without a scanner when withScanner is false (as in
// development).
func newFileEnvScanner(t *testing.T, withScanner bool) *fileEnv {
	t.Helper()
	clamd := clamdtest.Start(t, clamdtest.Config{})
	ce := newChatEnv(t)
	root := t.TempDir()
	disk, err := storage.NewDisk(storage.DiskConfig{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	sc := &switchScanner{}
	sc.point(t, clamd.TCP)
	e := &fileEnv{chatEnv: ce, storage: disk, root: root, scanner: sc, clamd: clamd, withScanner: withScanner}
	e.runner = e.startRunner()
	return e
}

// startRunner starts a River runner working the file jobs, as a process starting does.
func (e *fileEnv) startRunner() *jobs.Runner {
	e.t.Helper()
	runner, err := jobs.New(e.app, e.logger, jobs.Config{Workers: 2, PollInterval: 50 * time.Millisecond,
		Queues: map[string]int{chat.QueuePush: 2}, RetryBase: 200 * time.Millisecond, RetryMax: time.Second,
		JobTimeout: 30 * time.Second}, nil,
		func(w *river.Workers) {
			e.svc.RegisterWorkers(w)
			e.svc.RegisterPushWorker(w) // for the tests that enable push
		})
	if err != nil {
		e.t.Fatal(err)
	}
	var st storage.Store = e.storage
	if e.files != nil {
		st = e.files
	}
	files := chat.Files{Storage: st, Jobs: runner, ScanAttempts: e.scanAttempts, ThumbnailMaxPixels: e.thumbPixels}
	if e.withScanner {
		files.Scanner = e.scanner
	}
	e.svc.EnableFiles(files)
	if err := runner.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		runner.Stop(ctx)
	})
	return runner
}

// group makes a group of admin with members and answers its id.
func (e *fileEnv) group(admin messenger.User, members ...messenger.User) int64 {
	e.t.Helper()
	return createGroup(e.t, e.db, admin, "3학년 1반", members...)
}

// createGroup makes a group of admin with members, titled title, and answers its id.
func createGroup(t testing.TB, db *store.DB, admin messenger.User, title string, members ...messenger.User) int64 {
	t.Helper()
	ids := make([]int64, len(members))
	for i, m := range members {
		ids[i] = m.ID
	}
	var id int64
	err := db.InTx(context.Background(), admin.Identity(), func(tx *store.Tx) error {
		var err error
		id, err = tx.CreateGroup(context.Background(), title, ids)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// listen subscribes to a user's channel.
func (e *fileEnv) listen(u messenger.User) *realtime.Subscription {
	e.t.Helper()
	sub, err := e.engine.Subscribe(context.Background(), chat.UserChannel(u.ID))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(sub.Close)
	return sub
}

// next answers the next event of type typ on sub (others are skipped).
func next[T any](t *testing.T, sub *realtime.Subscription, typ string) T {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, ok := within(sub, time.Until(deadline))
		if !ok {
			var zero T
			t.Fatalf("no %s event", typ)
			return zero
		}
		if v, ok := eventOf[T](t, d, typ); ok {
			return v
		}
	}
}

// eventOf decodes d's event when it is of type typ.
func eventOf[T any](t *testing.T, d realtime.Delivery, typ string) (T, bool) {
	t.Helper()
	var v T
	if d.Event.Type != typ {
		return v, false
	}
	if err := json.Unmarshal(d.Event.Data, &v); err != nil {
		t.Fatal(err)
	}
	return v, true
}

// quiet checks that sub gets no event of type typ for a while.
func quiet(t *testing.T, sub *realtime.Subscription, typ string, wait time.Duration) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		d, ok := within(sub, time.Until(deadline))
		if !ok {
			return
		}
		if d.Event.Type == typ {
			t.Errorf("unexpected %s: %s", typ, d.Event.Data)
		}
	}
}

// settled waits until the upload is no longer scanning and answers it.
func (e *fileEnv) settled(me messenger.User, id string) messenger.Upload {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		up, err := e.svc.Upload(context.Background(), me, id)
		if err != nil {
			e.t.Fatal(err)
		}
		if up.State != messenger.UploadScanning {
			return up
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("upload %s still scanning", id)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wantValue checks that query answers want; what names the count in the failure.
func (e *fileEnv) wantValue(want, what, query string, args ...any) {
	e.t.Helper()
	if n := e.value(query, args...); n != want {
		e.t.Errorf("%s %s", n, what)
	}
}

func (e *fileEnv) value(query string, args ...any) string {
	e.t.Helper()
	var v sql.NullString
	if err := e.owner.QueryRow(query, args...).Scan(&v); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
	return v.String
}

// eventually waits for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// objectGone reports whether nothing is stored under key any more.
func (e *fileEnv) objectGone(key string) bool {
	_, err := e.storage.Stat(context.Background(), key)
	return errors.Is(err, storage.ErrNotFound)
}

func file(name string, data []byte) chat.UploadFile {
	return chat.UploadFile{Name: name, Size: int64(len(data)), Content: bytes.NewReader(data)}
}

func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 90, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var pdfBytes = []byte("%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n")

type users struct{ a, b, c, other messenger.User }

func (e *fileEnv) users() users {
	var u users
	u.a, u.b, u.c, u.other = school(e.t, e.db, "f", "g")
	return u
}

// school signs in a teacher, a parent and a student of org-a (zone-a), subs here1 to
// here3, and a teacher of org-b (zone-b), sub there1.
func school(t testing.TB, db *store.DB, here, there string) (teacher, parent, student, other messenger.User) {
	return storetest.MustSignIn(t, db, here+"1", "김선생", "org-a", "zone-a", messenger.RoleTeacher),
		storetest.MustSignIn(t, db, here+"2", "박학부모", "org-a", "zone-a", messenger.RoleParent),
		storetest.MustSignIn(t, db, here+"3", "이학생", "org-a", "zone-a", messenger.RoleStudent),
		storetest.MustSignIn(t, db, there+"1", "최교사", "org-b", "zone-b", messenger.RoleTeacher)
}

// TestUploadBecomesMessage: a PNG and a PDF sent with a caption are the uploader's alone
// while they are scanned; once clean they are exactly one file message with the next seq,
// announced to every member, and each member can read and download them.
func TestUploadBecomesMessage(t *testing.T) {
	ctx := context.Background()
	e, u, conv := newFileGroup(t)
	if _, _, err := e.svc.SendMessage(ctx, u.a, conv, "사진 보냅니다", ""); err != nil {
		t.Fatal(err)
	}
	subA, subB := e.listen(u.a), e.listen(u.b)
	e.scanner.point(t, "tcp://127.0.0.1:1") // hold the scan until B has looked

	picture := pngBytes(t, 40, 30)
	up, created, err := e.svc.CreateUpload(ctx, u.a, conv, uuid.NewString(), "  현장학습 안내  ",
		[]chat.UploadFile{file("칠판.png", picture), file("안내문.pdf", pdfBytes)})
	if err != nil || !created {
		t.Fatalf("CreateUpload: %v, created %v", err, created)
	}
	if up.State != messenger.UploadScanning || len(up.Files) != 2 || up.Caption != "현장학습 안내" {
		t.Fatalf("upload %+v", up)
	}
	if ev := next[messenger.APIUpload](t, subA, chat.EventUploadUpdated); ev.ID != up.ID || ev.State != messenger.UploadScanning {
		t.Errorf("upload.updated %+v", ev)
	}
	if f, err := e.svc.File(ctx, u.a, up.Files[0].ID); err != nil || f.Name != "칠판.png" {
		t.Errorf("the uploader's own file: %+v, %v", f, err)
	}
	if _, err := e.svc.File(ctx, u.b, up.Files[0].ID); messenger.ErrorCode(err) != messenger.ENOTFOUND {
		t.Errorf("B sees a file before its scan: %v", err)
	}
	if pending, _ := e.svc.PendingUploads(ctx, u.a, conv); len(pending) != 1 || pending[0].ID != up.ID {
		t.Errorf("pending uploads %+v", pending)
	}
	if pending, _ := e.svc.PendingUploads(ctx, u.b, conv); len(pending) != 0 {
		t.Errorf("B has pending uploads %+v", pending)
	}
	e.scanner.point(t, e.clamd.TCP)

	msgA := next[messenger.APIMessage](t, subA, chat.EventMessageNew)
	msgB := next[messenger.APIMessage](t, subB, chat.EventMessageNew)
	if msgB.Seq != 2 || msgB.Kind != messenger.MessageFile || msgB.Body != "현장학습 안내" || len(msgB.Files) != 2 ||
		msgB.Sender.ID != "f1" || msgA.ID != msgB.ID {
		t.Fatalf("message.new to B: %+v", msgB)
	}
	if msgB.Files[0].Name != "칠판.png" || msgB.Files[0].State != messenger.FileClean || !msgB.Files[0].Scanned ||
		msgB.Files[1].ContentType != "application/pdf" {
		t.Errorf("files %+v", msgB.Files)
	}
	ev := next[messenger.APIUpload](t, subA, chat.EventUploadUpdated)
	if ev.State != messenger.UploadClean || ev.MessageID == nil || *ev.MessageID != msgB.ID {
		t.Errorf("upload.updated %+v", ev)
	}
	quiet(t, subB, chat.EventUploadUpdated, 300*time.Millisecond)

	msgs, _, err := e.svc.Messages(ctx, u.b, conv, chat.Page{})
	if err != nil || len(msgs) != 2 {
		t.Fatalf("B's messages: %d, %v", len(msgs), err)
	}
	if m := msgs[0]; m.Seq != 2 || len(m.Files) != 2 || m.Files[1].Name != "안내문.pdf" || m.Deleted {
		t.Errorf("B's newest message %+v", m)
	}
	page, err := e.svc.Conversations(ctx, u.b, "", 10)
	if err != nil || len(page.Conversations) == 0 || page.Conversations[0].LastMessage == nil ||
		len(page.Conversations[0].LastMessage.Files) != 2 {
		t.Errorf("the list's last message has no files: %+v, %v", page.Conversations, err)
	}
	if f := msgB.Files[0]; f.Width != 40 || f.Height != 30 || len(f.Thumbnails) != 3 || len(msgB.Files[1].Thumbnails) != 0 {
		t.Errorf("the picture %+v, the document %+v", f, msgB.Files[1])
	}
	thumb, err := e.svc.OpenThumbnail(ctx, u.b, msgB.Files[0].ID, messenger.ThumbMedium)
	if err != nil {
		t.Fatal(err)
	}
	webp, _ := io.ReadAll(thumb.Body)
	thumb.Body.Close()
	if string(webp[:4]) != "RIFF" || string(webp[8:12]) != "WEBP" || thumb.ContentType != "image/webp" || thumb.Size != int64(len(webp)) {
		t.Errorf("the thumbnail is %q… as %s, %d bytes", webp[:12], thumb.ContentType, thumb.Size)
	}
	if _, err := e.svc.OpenThumbnail(ctx, u.b, msgB.Files[1].ID, messenger.ThumbMedium); messenger.ErrorCode(err) != messenger.ENOTFOUND {
		t.Errorf("a document's thumbnail: %v", err)
	}
	content, err := e.svc.OpenFile(ctx, u.b, msgB.Files[1].ID)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(content.Body)
	content.Body.Close()
	if !bytes.Equal(got, pdfBytes) || content.ContentType != "application/pdf" {
		t.Errorf("downloaded %q as %s", got, content.ContentType)
	}
	if pending, _ := e.svc.PendingUploads(ctx, u.a, conv); len(pending) != 0 {
		t.Errorf("still pending %+v", pending)
	}
	e.wantValue("2", "clean scans recorded", `SELECT count(*) FROM file_scans WHERE verdict = 'clean'`)
	e.wantValue("2", "messages", `SELECT count(*) FROM messages WHERE conversation_id = $1`, conv)
}

// TestUploadInfected: EICAR is caught by the real scanner: no message, the objects are
// gone, the verdict stays in file_scans, the audit log has it, the uploader is told.
func TestUploadInfected(t *testing.T) {
	ctx := context.Background()
	e, u, conv := newFileGroup(t)
	subA, subB := e.listen(u.a), e.listen(u.b)
	up, _, err := e.svc.CreateUpload(ctx, u.a, conv, uuid.NewString(), "",
		[]chat.UploadFile{file("사진.png", pngBytes(t, 8, 8)), file("readme.txt", clamdtest.EICAR())})
	if err != nil {
		t.Fatal(err)
	}
	keys := strings.Fields(e.value(`SELECT string_agg(storage_key, ' ') FROM files WHERE upload_id = $1`, up.ID))
	if len(keys) != 2 {
		t.Fatalf("keys %v", keys)
	}
	got := e.settled(u.a, up.ID)
	if got.State != messenger.UploadInfected || got.MessageID != 0 {
		t.Fatalf("upload %+v", got)
	}
	// In one process the result never overtakes "scanning".
	if ev := next[messenger.APIUpload](t, subA, chat.EventUploadUpdated); ev.State != messenger.UploadScanning {
		t.Errorf("the first upload.updated is %s, want scanning", ev.State)
	}
	if ev := next[messenger.APIUpload](t, subA, chat.EventUploadUpdated); ev.State != messenger.UploadInfected || ev.Dismissed {
		t.Errorf("the second upload.updated is %+v, want infected", ev)
	}
	eventually(t, "the objects are deleted", func() bool { return e.objectGone(keys[0]) && e.objectGone(keys[1]) })
	if v := e.value(`SELECT verdict || ' ' || signature FROM file_scans s JOIN files f ON f.id = s.file_id WHERE f.name = 'readme.txt'`); v != "infected "+clamdtest.EICARSignature {
		t.Errorf("file_scans: %q", v)
	}
	if v := e.value(`SELECT action || ' ' || (details->>'signature') FROM audit_log WHERE conversation_id = $1 AND action LIKE 'file.%'`, conv); v != "file.infected "+clamdtest.EICARSignature {
		t.Errorf("audit: %q", v)
	}
	if n := e.value(`SELECT last_seq FROM conversations WHERE id = $1`, conv); n != "0" {
		t.Errorf("last_seq %s", n)
	}
	quiet(t, subB, chat.EventMessageNew, 300*time.Millisecond)
	if pending, _ := e.svc.PendingUploads(ctx, u.a, conv); len(pending) != 1 || pending[0].State != messenger.UploadInfected {
		t.Errorf("pending %+v", pending)
	}
	if err := e.svc.DismissUpload(ctx, u.a, up.ID); err != nil {
		t.Fatal(err)
	}
	// The uploader's other tabs are told, so that they drop the bubble too.
	if ev := next[messenger.APIUpload](t, subA, chat.EventUploadUpdated); ev.ID != up.ID || ev.State != messenger.UploadInfected || !ev.Dismissed {
		t.Errorf("upload.updated after dismissing %+v, want infected and dismissed", ev)
	}
	quiet(t, subB, chat.EventUploadUpdated, 100*time.Millisecond)
	if got, err := e.svc.Upload(ctx, u.a, up.ID); err != nil || !got.Dismissed || got.API().Dismissed != true {
		t.Errorf("the dismissed upload reads %+v, %v", got, err)
	}
	if pending, _ := e.svc.PendingUploads(ctx, u.a, conv); len(pending) != 0 {
		t.Errorf("dismissed, still pending %+v", pending)
	}
}

// TestScannerDown: while the scanner is down files wait (fail closed) and the job retries;
// once it is back they are clean and the message goes out.
func TestScannerDown(t *testing.T) {
	ctx := context.Background()
	e, u, conv := newFileGroup(t)
	subB := e.listen(u.b)
	e.scanner.point(t, "tcp://127.0.0.1:1")
	up, _, err := e.svc.CreateUpload(ctx, u.a, conv, uuid.NewString(), "", []chat.UploadFile{file("a.pdf", pdfBytes)})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the job retried", func() bool {
		return e.value(`SELECT coalesce(max(attempt), 0) >= 2 FROM river_job WHERE kind = 'file_scan'`) == "true"
	})
	if n := e.value(`SELECT max_attempts FROM river_job WHERE kind = 'file_scan'`); n != "25" {
		t.Errorf("the scan is tried %s times", n)
	}
	if got, _ := e.svc.Upload(ctx, u.a, up.ID); got.State != messenger.UploadScanning {
		t.Errorf("upload %s while the scanner is down", got.State)
	}
	if _, err := e.svc.File(ctx, u.b, up.Files[0].ID); messenger.ErrorCode(err) != messenger.ENOTFOUND {
		t.Errorf("B sees an unscanned file: %v", err)
	}
	if failures := counter(t, e.reg, "messenger_scan_failures_total"); failures < 1 {
		t.Errorf("scan failures %v", failures)
	}
	quiet(t, subB, chat.EventMessageNew, 200*time.Millisecond)

	e.scanner.point(t, e.clamd.TCP)
	if got := e.settled(u.a, up.ID); got.State != messenger.UploadClean {
		t.Fatalf("upload %+v", got)
	}
	if m := next[messenger.APIMessage](t, subB, chat.EventMessageNew); len(m.Files) != 1 || m.Seq != 1 {
		t.Errorf("message %+v", m)
	}
	if v := e.value(`SELECT string_agg(DISTINCT verdict, ',' ORDER BY verdict) FROM file_scans`); v != "clean,error" {
		t.Errorf("verdicts %q", v)
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var sum float64
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	return 0
}

// TestUploadSameClientMsgID: the same client_msg_id twice is one upload and one message.
func TestUploadSameClientMsgID(t *testing.T) {
	ctx := context.Background()
	e, u, conv := newFileGroup(t)
	id := uuid.NewString()
	first, created, err := e.svc.CreateUpload(ctx, u.a, conv, id, "", []chat.UploadFile{file("a.pdf", pdfBytes)})
	if err != nil || !created {
		t.Fatal(err, created)
	}
	again, created, err := e.svc.CreateUpload(ctx, u.a, conv, id, "", []chat.UploadFile{file("a.pdf", pdfBytes)})
	if err != nil || created || again.ID != first.ID {
		t.Fatalf("again: %+v, created %v, %v", again, created, err)
	}
	done := e.settled(u.a, first.ID)
	later, created, err := e.svc.CreateUpload(ctx, u.a, conv, id, "", []chat.UploadFile{file("a.pdf", pdfBytes)})
	if err != nil || created || later.MessageID != done.MessageID || done.MessageID == 0 {
		t.Fatalf("after the message: %+v, created %v, %v", later, created, err)
	}
	e.wantValue("1", "uploads", `SELECT count(*) FROM uploads`)
	e.wantValue("1", "files", `SELECT count(*) FROM files`)
	e.wantValue("1", "messages", `SELECT count(*) FROM messages WHERE conversation_id = $1`, conv)
	other := e.group(u.a, u.c)
	if _, _, err := e.svc.CreateUpload(ctx, u.a, other, id, "", []chat.UploadFile{file("a.pdf", pdfBytes)}); messenger.ErrorCode(err) != messenger.ECONFLICT {
		t.Errorf("the id in another conversation: %v", err)
	}
}

// TestUploaderLeftBeforeScan: an uploader who left before the scan finished gets no
// message: the upload fails, its objects go.
func TestUploaderLeftBeforeScan(t *testing.T) {
	ctx := context.Background()
	e := newFileEnv(t)
	u := e.users()
	conv := e.group(u.a, u.b, u.c)
	subA, subB := e.listen(u.a), e.listen(u.b)
	e.scanner.point(t, "tcp://127.0.0.1:1")
	up, _, err := e.svc.CreateUpload(ctx, u.a, conv, uuid.NewString(), "", []chat.UploadFile{file("a.pdf", pdfBytes)})
	if err != nil {
		t.Fatal(err)
	}
	key := e.value(`SELECT storage_key FROM files WHERE upload_id = $1`, up.ID)
	if err := e.svc.LeaveConversation(ctx, u.a, conv); err != nil {
		t.Fatal(err)
	}
	seq := e.value(`SELECT last_seq FROM conversations WHERE id = $1`, conv)
	e.scanner.point(t, e.clamd.TCP)
	if got := e.settled(u.a, up.ID); got.State != messenger.UploadFailed || got.MessageID != 0 {
		t.Fatalf("upload %+v", got)
	}
	for {
		if ev := next[messenger.APIUpload](t, subA, chat.EventUploadUpdated); ev.State == messenger.UploadFailed {
			break
		}
	}
	if now := e.value(`SELECT last_seq FROM conversations WHERE id = $1`, conv); now != seq {
		t.Errorf("last_seq %s → %s", seq, now)
	}
	eventually(t, "the object is deleted", func() bool { return e.objectGone(key) })
	for {
		d, ok := within(subB, 200*time.Millisecond)
		if !ok {
			break
		}
		if d.Event.Type == chat.EventMessageNew && strings.Contains(string(d.Event.Data), `"kind":"file"`) {
			t.Errorf("B got a file message: %s", d.Event.Data)
		}
	}
}

// TestDeleteFile: the sender deletes their file: a tombstone for everyone
// (message.updated), the file unreadable, the objects removed by the job; nobody else can.
func TestDeleteFile(t *testing.T) {
	ctx := context.Background()
	e, u, conv := newFileGroup(t)
	up, _, err := e.svc.CreateUpload(ctx, u.a, conv, uuid.NewString(), "가정통신문", []chat.UploadFile{file("a.pdf", pdfBytes)})
	if err != nil {
		t.Fatal(err)
	}
	e.settled(u.a, up.ID)
	key := e.value(`SELECT storage_key FROM files WHERE upload_id = $1`, up.ID)
	fileID := up.Files[0].ID
	if _, err := e.svc.DeleteFile(ctx, u.b, fileID); err == nil {
		t.Fatal("B deleted A's file")
	}
	if _, err := e.svc.DeleteFile(ctx, u.other, fileID); messenger.ErrorCode(err) != messenger.ENOTFOUND {
		t.Errorf("another organization deleting: %v", err)
	}
	subB := e.listen(u.b)
	msg, err := e.svc.DeleteFile(ctx, u.a, fileID)
	if err != nil || !msg.Deleted || len(msg.Files) != 0 || msg.Body != "" {
		t.Fatalf("DeleteFile: %+v, %v", msg, err)
	}
	if ev := next[messenger.APIMessage](t, subB, chat.EventMessageUpdated); !ev.Deleted || ev.ID != msg.ID || len(ev.Files) != 0 {
		t.Errorf("message.updated %+v", ev)
	}
	msgs, _, _ := e.svc.Messages(ctx, u.b, conv, chat.Page{})
	if len(msgs) != 1 || !msgs[0].Deleted || len(msgs[0].Files) != 0 {
		t.Errorf("B's messages %+v", msgs)
	}
	if _, err := e.svc.File(ctx, u.b, fileID); messenger.ErrorCode(err) != messenger.ENOTFOUND {
		t.Errorf("B reads a deleted file: %v", err)
	}
	if _, err := e.svc.OpenFile(ctx, u.a, fileID); messenger.ErrorCode(err) != messenger.ENOTFOUND {
		t.Errorf("A downloads a deleted file: %v", err)
	}
	eventually(t, "the object is deleted", func() bool { return e.objectGone(key) })
}

// TestFileAccess: another organization's file id, and a file of a conversation left, are
// not found; a download reads exactly the stored bytes.
func TestFileAccess(t *testing.T) {
	ctx := context.Background()
	e := newFileEnv(t)
	u := e.users()
	conv := e.group(u.a, u.b, u.c)
	up, _, err := e.svc.CreateUpload(ctx, u.a, conv, uuid.NewString(), "", []chat.UploadFile{file("a.pdf", pdfBytes)})
	if err != nil {
		t.Fatal(err)
	}
	e.settled(u.a, up.ID)
	id := up.Files[0].ID
	for _, f := range []func() error{
		func() error { _, err := e.svc.File(ctx, u.other, id); return err },
		func() error { _, err := e.svc.OpenFile(ctx, u.other, id); return err },
		func() error { _, err := e.svc.OpenThumbnail(ctx, u.other, id, messenger.ThumbSmall); return err },
		func() error { _, err := e.svc.Upload(ctx, u.other, up.ID); return err },
		func() error { _, err := e.svc.File(ctx, u.b, "not-a-uuid"); return err },
	} {
		if err := f(); messenger.ErrorCode(err) != messenger.ENOTFOUND {
			t.Errorf("another organization: %v", err)
		}
	}
	if _, err := e.svc.File(ctx, u.c, id); err != nil {
		t.Fatalf("a member: %v", err)
	}
	if err := e.svc.LeaveConversation(ctx, u.c, conv); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.OpenFile(ctx, u.c, id); messenger.ErrorCode(err) != messenger.ENOTFOUND {
		t.Errorf("a member who left: %v", err)
	}
	if _, _, err := e.svc.CreateUpload(ctx, u.other, conv, uuid.NewString(), "", []chat.UploadFile{file("a.pdf", pdfBytes)}); messenger.ErrorCode(err) != messenger.ENOTFOUND {
		t.Errorf("an upload to another organization's conversation: %v", err)
	}
	if _, _, err := e.svc.CreateUpload(ctx, u.c, conv, uuid.NewString(), "", []chat.UploadFile{file("a.pdf", pdfBytes)}); messenger.ErrorCode(err) != messenger.ENOTFOUND {
		t.Errorf("an upload to a conversation left: %v", err)
	}
	e.wantValue("1", "uploads", `SELECT count(*) FROM uploads`)
}

// TestUploadStripsGPS: the stored original of a phone photo has no GPS, and still decodes.
func TestUploadStripsGPS(t *testing.T) {
	ctx := context.Background()
	e, u, conv := newFileGroup(t)
	photo := jpegWithGPS(t)
	up, _, err := e.svc.CreateUpload(ctx, u.a, conv, uuid.NewString(), "", []chat.UploadFile{file("IMG_0001.JPG", photo)})
	if err != nil {
		t.Fatal(err)
	}
	e.settled(u.a, up.ID)
	content, err := e.svc.OpenFile(ctx, u.b, up.Files[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := io.ReadAll(content.Body)
	content.Body.Close()
	if bytes.Contains(stored, []byte("GPS")) || bytes.Contains(stored, []byte("37.5665")) {
		t.Error("the stored original still carries GPS")
	}
	if _, err := jpeg.Decode(bytes.NewReader(stored)); err != nil {
		t.Errorf("the stored original does not decode: %v", err)
	}
	f, _ := e.svc.File(ctx, u.b, up.Files[0].ID)
	if f.Size != int64(len(stored)) {
		t.Errorf("size %d, stored %d", f.Size, len(stored))
	}
	if f.Width != 24 || f.Height != 32 || len(f.Variants) != 3 {
		t.Errorf("a sideways photo is shown %d×%d with %d thumbnails, want 24×32 and 3", f.Width, f.Height, len(f.Variants))
	}
	thumb, err := e.svc.OpenThumbnail(ctx, u.b, f.ID, messenger.ThumbLarge)
	if err != nil {
		t.Fatal(err)
	}
	webp, _ := io.ReadAll(thumb.Body)
	thumb.Body.Close()
	if bytes.Contains(webp, []byte("GPS")) || bytes.Contains(webp, []byte("EXIF")) || bytes.Contains(webp, []byte("Exif")) {
		t.Error("the thumbnail carries metadata")
	}
}

// jpegWithGPS is a JPEG with an EXIF block naming a place and an XMP packet with GPS.
func jpegWithGPS(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.NewRGBA(image.Rect(0, 0, 32, 24)), nil); err != nil {
		t.Fatal(err)
	}
	plain := b.Bytes()
	segment := func(marker byte, payload []byte) []byte {
		n := len(payload) + 2
		return append([]byte{0xFF, marker, byte(n >> 8), byte(n)}, payload...)
	}
	// One IFD entry, Orientation = 6 (taken sideways: shown turned 90°), then the place.
	exif := []byte("Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00" +
		"\x00\x00\x00\x00GPSLatitude 37.5665 N")
	out := append([]byte{}, plain[:2]...)
	out = append(out, segment(0xE1, exif)...)
	out = append(out, segment(0xE1, []byte("http://ns.adobe.com/xap/1.0/\x00<exif:GPSLatitude>37.5665</exif:GPSLatitude>"))...)
	return append(out, plain[2:]...)
}

// stored answers the objects in the disk store.
func (e *fileEnv) stored() []string {
	e.t.Helper()
	var out []string
	err := filepath.WalkDir(e.root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, path)
		}
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// TestUploadRefusesBadInput: each bad file is refused with a clear message and nothing is
// stored, not even the good files sent with it.
func TestUploadRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	e, u, conv := newFileGroup(t)
	exe := append([]byte("MZ\x90\x00"), make([]byte, 200)...)
	cases := []struct {
		name  string
		files []chat.UploadFile
		code  string
	}{
		{"a renamed executable", []chat.UploadFile{file("안내문.pdf", exe)}, messenger.EUNSUPPORTED},
		{"an SVG", []chat.UploadFile{file("a.svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`))}, messenger.EUNSUPPORTED},
		{"10 MB + 1 byte", []chat.UploadFile{file("big.txt", bytes.Repeat([]byte("a"), 10<<20+1))}, messenger.ETOOLARGE},
		{"a NUL in the name", []chat.UploadFile{file("a\x00.pdf", pdfBytes)}, messenger.EINVALID},
		{"an RTL override in the name", []chat.UploadFile{file("photo\u202Egnp.exe", pdfBytes)}, messenger.EINVALID},
		{"a good file with a bad one", []chat.UploadFile{file("a.pdf", pdfBytes), file("b.pdf", exe)}, messenger.EUNSUPPORTED},
		{"11 files", func() []chat.UploadFile {
			var fs []chat.UploadFile
			for range 11 {
				fs = append(fs, file("a.pdf", pdfBytes))
			}
			return fs
		}(), messenger.ETOOLARGE},
		{"no file", nil, messenger.EINVALID},
	}
	for _, c := range cases {
		_, _, err := e.svc.CreateUpload(ctx, u.a, conv, uuid.NewString(), "", c.files)
		if messenger.ErrorCode(err) != c.code || messenger.ErrorMessage(err) == "" {
			t.Errorf("%s: %v, want %s", c.name, err, c.code)
		}
	}
	if _, _, err := e.svc.CreateUpload(ctx, u.a, conv, "not-a-uuid", "", []chat.UploadFile{file("a.pdf", pdfBytes)}); messenger.ErrorCode(err) != messenger.EINVALID {
		t.Errorf("a client_msg_id that is not a UUID: %v", err)
	}
	if objs := e.stored(); len(objs) != 0 {
		t.Errorf("stored %v", objs)
	}
	e.wantValue("0", "uploads", `SELECT count(*) FROM uploads`)
	// What an honest client sends is repaired: folders cut off, a long name shortened.
	up, _, err := e.svc.CreateUpload(ctx, u.a, conv, uuid.NewString(), "", []chat.UploadFile{
		file("../../etc/가정통신문.pdf", pdfBytes), file(strings.Repeat("가", 300)+".pdf", pdfBytes)})
	if err != nil {
		t.Fatal(err)
	}
	if up.Files[0].Name != "가정통신문.pdf" || !strings.HasSuffix(up.Files[1].Name, ".pdf") || len([]rune(up.Files[1].Name)) > 255 {
		t.Errorf("names %q, %q", up.Files[0].Name, up.Files[1].Name)
	}
}

// TestUploadSameClientMsgIDRace: two requests with one client_msg_id at once make one
// upload; the loser's stored bytes are removed.
func TestUploadSameClientMsgIDRace(t *testing.T) {
	ctx := context.Background()
	e, u, conv := newFileGroup(t)
	e.scanner.point(t, "tcp://127.0.0.1:1") // no thumbnails or scans meanwhile
	id := uuid.NewString()
	type result struct {
		up      messenger.Upload
		created bool
		err     error
	}
	results := make(chan result, 2)
	for range 2 {
		go func() {
			up, created, err := e.svc.CreateUpload(ctx, u.a, conv, id, "", []chat.UploadFile{file("a.pdf", pdfBytes)})
			results <- result{up, created, err}
		}()
	}
	r1, r2 := <-results, <-results
	if r1.err != nil || r2.err != nil || r1.up.ID != r2.up.ID || r1.created == r2.created {
		t.Fatalf("%+v\n%+v", r1, r2)
	}
	e.wantValue("1", "files", `SELECT count(*) FROM files`)
	if objs := e.stored(); len(objs) != 1 {
		t.Errorf("stored %v", objs)
	}
}

// TestUploadWithoutScanner: in development without a scanner, files are stored unscanned
// and marked so, and the message still goes out.
func TestUploadWithoutScanner(t *testing.T) {
	ctx := context.Background()
	e := newFileEnvScanner(t, false)
	u := e.users()
	conv := e.group(u.a, u.b)
	subB := e.listen(u.b)
	up, _, err := e.svc.CreateUpload(ctx, u.a, conv, uuid.NewString(), "", []chat.UploadFile{file("a.pdf", pdfBytes)})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.settled(u.a, up.ID); got.State != messenger.UploadClean {
		t.Fatalf("upload %+v", got)
	}
	m := next[messenger.APIMessage](t, subB, chat.EventMessageNew)
	if len(m.Files) != 1 || m.Files[0].Scanned || m.Files[0].State != messenger.FileClean {
		t.Errorf("message %+v", m)
	}
	if v := e.value(`SELECT scanner || ' ' || verdict FROM file_scans`); v != "none skipped" {
		t.Errorf("file_scans %q", v)
	}
}

// TestUploadToAnnouncements: a teacher's photo in the zone's announcements goes out once
// on the zone's channel; a student may not upload there.
func TestUploadToAnnouncements(t *testing.T) {
	ctx := context.Background()
	e := newFileEnv(t)
	u := e.users()
	var conv int64
	if err := e.db.InTx(ctx, u.a.Identity(), func(tx *store.Tx) (err error) {
		conv, _, err = tx.ZoneAnnouncement(ctx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	zone, err := e.engine.Subscribe(ctx, chat.ZoneChannel(u.a.ZoneID))
	if err != nil {
		t.Fatal(err)
	}
	defer zone.Close()
	if _, _, err := e.svc.CreateUpload(ctx, u.c, conv, uuid.NewString(), "", []chat.UploadFile{file("a.pdf", pdfBytes)}); messenger.ErrorCode(err) != messenger.EFORBIDDEN {
		t.Errorf("a student uploading to announcements: %v", err)
	}
	up, _, err := e.svc.CreateUpload(ctx, u.a, conv, uuid.NewString(), "운동회 사진", []chat.UploadFile{file("운동회.png", pngBytes(t, 20, 20))})
	if err != nil {
		t.Fatal(err)
	}
	m := next[messenger.APIMessage](t, zone, chat.EventMessageNew)
	if m.Kind != messenger.MessageFile || len(m.Files) != 1 || m.Body != "운동회 사진" || m.ConversationID != conv {
		t.Errorf("announcement %+v", m)
	}
	if got := e.settled(u.a, up.ID); got.MessageID != m.ID {
		t.Errorf("upload %+v", got)
	}
	if f, err := e.svc.File(ctx, u.c, up.Files[0].ID); err != nil || len(f.Variants) != 3 {
		t.Errorf("a student of the zone reads the photo: %+v, %v", f, err)
	}

	// The teacher deletes it: the tombstone goes to the zone's channel, once, where every
	// stream of the zone hears it (announcements are not told to each member).
	subA, subC := e.listen(u.a), e.listen(u.c)
	if _, err := e.svc.DeleteFile(ctx, u.a, up.Files[0].ID); err != nil {
		t.Fatal(err)
	}
	d := next[messenger.APIMessage](t, zone, chat.EventMessageUpdated)
	if d.ID != m.ID || !d.Deleted || len(d.Files) != 0 {
		t.Errorf("message.updated on the zone channel %+v", d)
	}
	quiet(t, zone, chat.EventMessageUpdated, 300*time.Millisecond)
	quiet(t, subA, chat.EventMessageUpdated, 10*time.Millisecond)
	quiet(t, subC, chat.EventMessageUpdated, 10*time.Millisecond)
}

// TestScanSurvivesRestart: a process stopped in the middle of a scan (its running job cut)
// leaves the file scanning; the next process scans it again, and the upload is exactly one
// message.
func TestScanSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	e, u, conv := newFileGroup(t)
	// A scanner that takes connections and never answers: the scan hangs.
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	e.scanner.point(t, "tcp://"+hung.Addr().String())
	first := e.runner

	up, _, err := e.svc.CreateUpload(ctx, u.a, conv, uuid.NewString(), "", []chat.UploadFile{file("a.pdf", pdfBytes)})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-accepted:
		defer c.Close()
	case <-time.After(20 * time.Second):
		t.Fatal("the scan never reached the scanner")
	}
	if s := e.value(`SELECT state FROM files WHERE upload_id = $1`, up.ID); s != messenger.FileScanning {
		t.Fatalf("file %s mid-scan", s)
	}
	stop, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	first.Stop(stop) // the process goes: its running scan is cut

	e.scanner.point(t, e.clamd.TCP)
	e.startRunner()
	if got := e.settled(u.a, up.ID); got.State != messenger.UploadClean {
		t.Fatalf("upload %+v", got)
	}
	time.Sleep(300 * time.Millisecond) // any second delivery would be stored by now
	e.wantValue("1", "messages", `SELECT count(*) FROM messages WHERE conversation_id = $1`, conv)
}

// TestScanGivesUp: a scanner down past the scan's last attempt fails the upload for good:
// the uploader is told, the object goes, nothing was ever shown.
func TestScanGivesUp(t *testing.T) {
	ctx := context.Background()
	e, u, conv := newFileGroup(t)
	e.scanner.point(t, "tcp://127.0.0.1:1")
	e.runner.Stop(ctx)
	e.scanAttempts = 2
	e.runner = e.startRunner()
	subA := e.listen(u.a)
	up, _, err := e.svc.CreateUpload(ctx, u.a, conv, uuid.NewString(), "", []chat.UploadFile{file("a.pdf", pdfBytes)})
	if err != nil {
		t.Fatal(err)
	}
	key := e.value(`SELECT storage_key FROM files WHERE upload_id = $1`, up.ID)
	if got := e.settled(u.a, up.ID); got.State != messenger.UploadFailed || got.Files[0].State != messenger.FileFailed {
		t.Fatalf("upload %+v", got)
	}
	for {
		if ev := next[messenger.APIUpload](t, subA, chat.EventUploadUpdated); ev.State == messenger.UploadFailed {
			break
		}
	}
	e.wantValue("2", "failed scans recorded, want 2", `SELECT count(*) FROM file_scans WHERE verdict = 'error'`)
	eventually(t, "the object is deleted", func() bool { return e.objectGone(key) })
	if n := e.value(`SELECT last_seq FROM conversations WHERE id = $1`, conv); n != "0" {
		t.Errorf("last_seq %s", n)
	}
}

// TestThumbnailPixelBudget: pictures are decoded for thumbnails only while their pixels fit
// in Files.ThumbnailMaxPixels (with the others being decoded): a clean picture waits, with
// no message and no thumbnails, until the budget has room, and one larger than the whole
// budget waits for all of it, then goes (it never waits forever).
func TestThumbnailPixelBudget(t *testing.T) {
	ctx := context.Background()
	e := newFileEnvScanner(t, true)
	e.thumbPixels = 1_000_000
	e.runner = e.startRunner() // a second runner on the same queue, with the small budget
	u := e.users()
	conv := e.group(u.a, u.b)
	subB := e.listen(u.b)

	for _, c := range []struct {
		name   string
		w, h   int
		others int64 // pixels being decoded meanwhile
	}{
		{"fits beside nothing but does not beside 600000 others", 800, 600, 600_000},
		{"larger than the whole budget, beside a 1-pixel picture", 1250, 1000, 1},
	} {
		release, err := e.svc.HoldThumbnailPixels(ctx, c.others)
		if err != nil {
			t.Fatal(err)
		}
		up, _, err := e.svc.CreateUpload(ctx, u.a, conv, uuid.NewString(), "", []chat.UploadFile{file("큰 사진.png", pngBytes(t, c.w, c.h))})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, c.name+": the scan is clean", func() bool {
			return e.value(`SELECT state FROM files WHERE upload_id = $1`, up.ID) == messenger.FileClean
		})
		quiet(t, subB, chat.EventMessageNew, 1500*time.Millisecond)
		if v := e.value(`SELECT jsonb_array_length(variants) FROM files WHERE upload_id = $1`, up.ID); v != "0" {
			t.Errorf("%s: %s thumbnails made while the budget had no room", c.name, v)
		}
		release()
		m := next[messenger.APIMessage](t, subB, chat.EventMessageNew)
		if len(m.Files) != 1 || len(m.Files[0].Thumbnails) != 3 || m.Files[0].Width != c.w {
			t.Errorf("%s: the message once the budget had room: %+v", c.name, m.Files)
		}
	}
	// The waits show on /metrics: two pictures that waited most of the 1.5 s each (a wait
	// starts when the thumbnail job is picked up, a poll after the clean verdict).
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "messenger_thumbnail_wait_seconds" {
			h := mf.GetMetric()[0].GetHistogram()
			if h.GetSampleCount() < 2 || h.GetSampleSum() < 2 {
				t.Errorf("messenger_thumbnail_wait_seconds: %d samples, %.2f s in all; want two waits of about 1.5 s", h.GetSampleCount(), h.GetSampleSum())
			}
			return
		}
	}
	t.Error("no messenger_thumbnail_wait_seconds")
}
