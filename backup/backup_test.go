package backup_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/backup"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/jobs"
	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/storage"
	"github.com/dreamseed/messenger/store"
	"github.com/dreamseed/messenger/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// source is a messenger with data: users, several conversations with messages and read
// marks, and files (pictures with their thumbnails, a document) on disk storage.
type source struct {
	ownerDSN string
	disk     *storage.Disk
	convs    []int64 // the conversations made, each with messages
}

func newSource(t *testing.T) source {
	t.Helper()
	ctx := context.Background()
	db, d := storetest.NewDB(t)
	engine := realtime.NewMemory(256)
	t.Cleanup(func() { engine.Close() })
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := chat.NewService(db, engine, logger, prometheus.NewRegistry(), nil)
	disk := newDisk(t)
	runner, err := jobs.New(storetest.Conn(t, d.AppDSN), logger, jobs.Config{Workers: 2, PollInterval: 50 * time.Millisecond,
		RetryBase: 200 * time.Millisecond, RetryMax: time.Second, JobTimeout: 30 * time.Second}, nil,
		func(w *river.Workers) { svc.RegisterWorkers(w) })
	if err != nil {
		t.Fatal(err)
	}
	svc.EnableFiles(chat.Files{Storage: disk, Jobs: runner}) // no scanner: files kept unscanned, as in dev
	if err := runner.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		runner.Stop(ctx)
	})

	a := storetest.MustSignIn(t, db, "bk-a", "김교사", "school-b", "zone-b", messenger.RoleTeacher)
	b := storetest.MustSignIn(t, db, "bk-b", "이학부모", "school-b", "zone-b", messenger.RoleParent)
	c := storetest.MustSignIn(t, db, "bk-c", "박학부모", "school-b", "zone-b", messenger.RoleParent)
	s := source{ownerDSN: d.OwnerDSN, disk: disk}
	group, _, err := svc.CreateConversation(ctx, a, messenger.KindGroup, "3학년 1반", []string{b.Sub, c.Sub})
	if err != nil {
		t.Fatal(err)
	}
	direct, _, err := svc.CreateConversation(ctx, a, messenger.KindDirect, "", []string{b.Sub})
	if err != nil {
		t.Fatal(err)
	}
	s.convs = []int64{group.ID, direct.ID}
	for i := range 12 {
		for _, conv := range s.convs {
			sender := []messenger.User{a, b}[i%2]
			m, _, err := svc.SendMessage(ctx, sender, conv, fmt.Sprintf("메시지 %d", i), uuid.NewString())
			if err != nil {
				t.Fatal(err)
			}
			if i == 7 {
				if err := svc.MarkRead(ctx, b, conv, m.Seq); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	up1, _, err := svc.CreateUpload(ctx, a, group.ID, uuid.NewString(), "사진", []chat.UploadFile{
		picture(t, "a.png", 640, 480), picture(t, "b.png", 200, 900)})
	if err != nil {
		t.Fatal(err)
	}
	up2, _, err := svc.CreateUpload(ctx, b, direct.ID, uuid.NewString(), "", []chat.UploadFile{
		{Name: "안내문.txt", Size: 12, Content: strings.NewReader("가정통신문")}})
	if err != nil {
		t.Fatal(err)
	}
	waitForMessages(t, storetest.Conn(t, d.OwnerDSN), up1.ID, up2.ID)
	// The group's first two messages a year and more old, archived: the backup carries the
	// archive and the check counts it.
	if _, err := storetest.Conn(t, d.OwnerDSN).Exec(`UPDATE messages SET created_at = now() - interval '400 days'
		WHERE conversation_id = $1 AND seq <= 2`, group.ID); err != nil {
		t.Fatal(err)
	}
	if res, err := db.Archive(ctx, store.ArchiveOptions{OlderThan: 365 * 24 * time.Hour, Batch: 100}, nil); err != nil || res.Messages != 2 {
		t.Fatalf("archive: %+v, %v", res, err)
	}
	return s
}

// waitForMessages waits until each upload is a message: scanned (here: skipped), its
// thumbnails stored, its message sent.
func waitForMessages(t *testing.T, owner *sql.DB, ids ...string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for _, id := range ids {
		for {
			var done bool
			if err := owner.QueryRow(`SELECT message_id IS NOT NULL FROM uploads WHERE id = $1`, id).Scan(&done); err != nil {
				t.Fatal(err)
			}
			if done {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("upload %s is no message after a minute", id)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func picture(t *testing.T, name string, w, h int) chat.UploadFile {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, image.Rect(0, 0, w/2, h), &image.Uniform{color.NRGBA{200, 40, 40, 255}}, image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(w/2, 0, w, h), &image.Uniform{color.NRGBA{40, 40, 200, 255}}, image.Point{}, draw.Src)
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return chat.UploadFile{Name: name, Size: int64(b.Len()), Content: bytes.NewReader(b.Bytes())}
}

func newDisk(t *testing.T) *storage.Disk {
	t.Helper()
	disk, err := storage.NewDisk(storage.DiskConfig{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { disk.Close() })
	return disk
}

// restored is a backup restored into a new empty database and empty disk storage.
type restored struct {
	cfg    backup.Config
	report backup.Report
	owner  *sql.DB
	disk   *storage.Disk
}

func restore(t *testing.T, dir string) restored {
	t.Helper()
	disk := newDisk(t)
	dsn := storetest.NewEmptyDatabase(t)
	cfg := backup.Config{DatabaseURL: dsn, Storage: disk}
	report, err := backup.Restore(context.Background(), cfg, dir)
	if err != nil {
		t.Fatalf("restore: %v (%v)", err, report.Problems)
	}
	return restored{cfg: cfg, report: report, owner: storetest.Conn(t, dsn), disk: disk}
}

// check runs the consistency check against the backup's manifest and answers its report.
func (r restored) check(t *testing.T, dir string) backup.Report {
	t.Helper()
	m, err := backup.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	report, err := backup.Check(context.Background(), r.cfg, m)
	if err != nil {
		t.Fatal(err)
	}
	return report
}

func (r restored) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	if _, err := r.owner.Exec(query, args...); err != nil {
		t.Fatal(err)
	}
}

// wantProblem fails unless the report has exactly one problem, containing want.
func wantProblem(t *testing.T, report backup.Report, want string) {
	t.Helper()
	if len(report.Problems) != 1 || !strings.Contains(report.Problems[0], want) {
		t.Fatalf("problems %q, want one containing %q", report.Problems, want)
	}
}

// TestBackupRestoreCheck makes data, backs it up, restores it into a new database and
// storage, and the check passes with the source's counts; then each corruption of a
// restored copy fails the check with its own message.
func TestBackupRestoreCheck(t *testing.T) {
	ctx := context.Background()
	src := newSource(t)
	srcCfg := backup.Config{DatabaseURL: src.ownerDSN, Storage: src.disk, Version: "v-test"}
	live, err := backup.Check(ctx, srcCfg, nil)
	if err != nil || !live.OK() {
		t.Fatalf("the source fails the check: %v %q", err, live.Problems)
	}
	if live.Counts.Users != 3 || live.Counts.Conversations < 2 || live.Counts.Messages < 24 || live.Counts.Files != 3 || live.Objects.Count <= 3 {
		t.Fatalf("source counts %+v, objects %+v: not the data made", live.Counts, live.Objects)
	}

	dir, m, err := backup.Backup(ctx, srcCfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if m.Counts != live.Counts || m.Objects != live.Objects {
		t.Fatalf("manifest counts %+v objects %+v, the source has %+v %+v", m.Counts, m.Objects, live.Counts, live.Objects)
	}
	if m.SchemaVersion == 0 || m.SchemaMigration == "" || m.MessengerVersion != "v-test" || m.Files[0].Path != backup.DumpName {
		t.Fatalf("manifest %+v", m)
	}

	r := restore(t, dir)
	if !r.report.OK() || r.report.Counts != live.Counts || r.report.Objects != live.Objects {
		t.Fatalf("restored: problems %q, counts %+v objects %+v, want %+v %+v", r.report.Problems, r.report.Counts, r.report.Objects, live.Counts, live.Objects)
	}
	var bodies string
	if err := r.owner.QueryRow(`SELECT string_agg(body, ',' ORDER BY seq) FROM messages WHERE conversation_id = $1 AND kind = 'text'`, src.convs[1]).Scan(&bodies); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(bodies, "메시지 0,메시지 1,") {
		t.Fatalf("restored messages %q", bodies)
	}

	t.Run("gap", func(t *testing.T) {
		r := restore(t, dir)
		r.exec(t, `DELETE FROM messages WHERE conversation_id = $1 AND seq = 3`, src.convs[0])
		report := r.check(t, dir)
		if len(report.Problems) != 2 || !strings.Contains(report.Problems[0], fmt.Sprintf("conversation %d: messages missing at seq [3]", src.convs[0])) ||
			!strings.Contains(report.Problems[1], "messages: ") {
			t.Fatalf("problems %q", report.Problems)
		}
	})
	t.Run("archived message missing", func(t *testing.T) {
		r := restore(t, dir)
		var archived int
		if err := r.owner.QueryRow(`SELECT count(*) FROM messages_archive WHERE conversation_id = $1`, src.convs[0]).Scan(&archived); err != nil || archived != 2 {
			t.Fatalf("restored archive: %d messages, %v", archived, err)
		}
		r.exec(t, `DELETE FROM messages_archive WHERE conversation_id = $1 AND seq = 1`, src.convs[0])
		report := r.check(t, dir)
		if len(report.Problems) != 2 || !strings.Contains(report.Problems[0], fmt.Sprintf("conversation %d: messages missing at seq [1]", src.convs[0])) {
			t.Fatalf("problems %q", report.Problems)
		}
	})
	t.Run("hot message below the boundary", func(t *testing.T) {
		r := restore(t, dir)
		r.exec(t, `UPDATE conversations SET archived_through_seq = 3 WHERE id = $1`, src.convs[0])
		wantProblem(t, r.check(t, dir), fmt.Sprintf("conversation %d: 1 messages at or below its archive boundary 3 are not archived", src.convs[0]))
	})
	t.Run("watermark past last_seq", func(t *testing.T) {
		r := restore(t, dir)
		r.exec(t, `UPDATE read_receipts SET last_read_seq = c.last_seq + 1 FROM conversations c
			WHERE c.id = read_receipts.conversation_id AND c.id = $1
			  AND read_receipts.user_id = (SELECT min(user_id) FROM read_receipts WHERE conversation_id = $1)`, src.convs[1])
		wantProblem(t, r.check(t, dir), fmt.Sprintf("conversation %d: user", src.convs[1]))
	})
	t.Run("missing object", func(t *testing.T) {
		r := restore(t, dir)
		var key string
		if err := r.owner.QueryRow(`SELECT storage_key FROM files WHERE content_type = 'text/plain; charset=utf-8' OR name LIKE '%.txt'`).Scan(&key); err != nil {
			t.Fatal(err)
		}
		if err := r.disk.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		report := r.check(t, dir)
		if len(report.Problems) != 3 || !strings.Contains(strings.Join(report.Problems, "\n"), "object "+key+" missing") {
			t.Fatalf("problems %q", report.Problems)
		}
	})
	t.Run("extra object", func(t *testing.T) {
		r := restore(t, dir)
		key := storage.NewKey()
		if _, err := r.disk.Put(ctx, key, strings.NewReader("stray"), 5, "text/plain"); err != nil {
			t.Fatal(err)
		}
		report := r.check(t, dir)
		if len(report.Problems) != 3 || report.Problems[0] != "object "+key+": no file row names it" {
			t.Fatalf("problems %q", report.Problems)
		}
	})
	t.Run("checksum mismatch", func(t *testing.T) {
		bad := copyDir(t, dir)
		name := filepath.Join(bad, backup.DumpName)
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		raw[len(raw)/2] ^= 0xff
		if err := os.WriteFile(name, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		dsn := storetest.NewEmptyDatabase(t)
		disk := newDisk(t)
		report, err := backup.Restore(ctx, backup.Config{DatabaseURL: dsn, Storage: disk}, bad)
		if !errors.Is(err, backup.ErrChecksum) || len(report.Problems) != 1 || !strings.HasPrefix(report.Problems[0], backup.DumpName+": checksum ") {
			t.Fatalf("restore of a damaged backup: %v %q", err, report.Problems)
		}
		wantEmpty(t, storetest.Conn(t, dsn), disk)
	})
	t.Run("not empty", func(t *testing.T) {
		before, err := backup.Check(ctx, srcCfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = backup.Restore(ctx, backup.Config{DatabaseURL: src.ownerDSN, Storage: newDisk(t)}, dir)
		if !errors.Is(err, backup.ErrNotEmpty) || !strings.Contains(err.Error(), "restore only into a new, empty database") {
			t.Fatalf("restore into the source: %v", err)
		}
		after, err := backup.Check(ctx, srcCfg, nil)
		if err != nil || after.Counts != before.Counts || after.Objects != before.Objects {
			t.Fatalf("the database changed: %+v %+v, before %+v %+v (%v)", after.Counts, after.Objects, before.Counts, before.Objects, err)
		}
		dsn := storetest.NewEmptyDatabase(t)
		_, err = backup.Restore(ctx, backup.Config{DatabaseURL: dsn, Storage: src.disk}, dir)
		if !errors.Is(err, backup.ErrNotEmpty) || !strings.Contains(err.Error(), "restore only into empty storage") {
			t.Fatalf("restore into full storage: %v", err)
		}
		wantEmpty(t, storetest.Conn(t, dsn), newDisk(t))
	})
}

// wantEmpty fails unless the database has no table and the storage no object.
func wantEmpty(t *testing.T, db *sql.DB, disk *storage.Disk) {
	t.Helper()
	var tables int
	if err := db.QueryRow(`SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	objects := 0
	disk.List(context.Background(), func(storage.Object) error { objects++; return nil })
	if tables != 0 || objects != 0 {
		t.Fatalf("the target holds %d tables and %d objects after a refused restore", tables, objects)
	}
}

func copyDir(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(dir))
	if err := os.CopyFS(out, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBackupKeepsN: each backup leaves the newest Keep complete ones and removes what an
// interrupted backup left.
func TestBackupKeepsN(t *testing.T) {
	ctx := context.Background()
	d := storetest.NewDatabase(t)
	dir := t.TempDir()
	crashed := filepath.Join(dir, ".20200101T000000Z.partial")
	if err := os.MkdirAll(filepath.Join(crashed, "files"), 0o750); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "notes")
	if err := os.Mkdir(other, 0o750); err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 11, 30, 2, 15, 0, 0, time.UTC)
	cfg := backup.Config{DatabaseURL: d.OwnerDSN, Storage: newDisk(t), Keep: 2, Now: func() time.Time { return clock }}
	for range 3 {
		if _, _, err := backup.Backup(ctx, cfg, dir); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(24 * time.Hour)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != ".lock 20261201T021500Z 20261202T021500Z notes" {
		t.Fatalf("the folder holds %s", got)
	}

	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if _, _, err := backup.Backup(ctx, cfg, dir); err == nil || !strings.Contains(err.Error(), "another backup is writing into") {
		t.Fatalf("a backup while another runs: %v", err)
	}
}

// TestRestoreRefusesNewerSchema: a backup of a database past this program's migrations is
// refused before anything is written.
func TestRestoreRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	d := storetest.NewDatabase(t)
	dir, _, err := backup.Backup(ctx, backup.Config{DatabaseURL: d.OwnerDSN, Storage: newDisk(t)}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, backup.ManifestName)
	raw, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	raw = regexp.MustCompile(`"schema_version": \d+`).ReplaceAll(raw, []byte(`"schema_version": 999`))
	if err := os.WriteFile(name, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	dsn := storetest.NewEmptyDatabase(t)
	disk := newDisk(t)
	_, err = backup.Restore(ctx, backup.Config{DatabaseURL: dsn, Storage: disk}, dir)
	if err == nil || !strings.Contains(err.Error(), "the backup's schema is at migration 999") {
		t.Fatalf("restore of a newer schema: %v", err)
	}
	wantEmpty(t, storetest.Conn(t, dsn), disk)
}

// TestCheckRunningSystem: on a running system an object with no row is an upload whose row
// is not committed yet while it is young, and a problem once older than the grace.
func TestCheckRunningSystem(t *testing.T) {
	ctx := context.Background()
	d := storetest.NewDatabase(t)
	disk := newDisk(t)
	key := storage.NewKey()
	if _, err := disk.Put(ctx, key, strings.NewReader("upload"), 6, "text/plain"); err != nil {
		t.Fatal(err)
	}
	cfg := backup.Config{DatabaseURL: d.OwnerDSN, Storage: disk, CheckGrace: time.Minute}
	report, err := backup.Check(ctx, cfg, nil)
	if err != nil || !report.OK() || report.Objects.Count != 1 {
		t.Fatalf("a young object without a row: %v %q %+v", err, report.Problems, report.Objects)
	}
	root := diskRoot(t, disk)
	old := time.Now().Add(-2 * time.Minute)
	if err := os.Chtimes(filepath.Join(root, filepath.FromSlash(key)), old, old); err != nil {
		t.Fatal(err)
	}
	report, err = backup.Check(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, report, "object "+key+": no file row names it")
}

// diskRoot answers the folder of a disk store, from its name for logs.
func diskRoot(t *testing.T, disk *storage.Disk) string {
	t.Helper()
	root, ok := strings.CutPrefix(disk.String(), "disk ")
	if !ok {
		t.Fatalf("disk store %q", disk.String())
	}
	return root
}
