package storage_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dreamseed/messenger/storage"
)

func newDisk(t *testing.T) (*storage.Disk, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "files")
	d, err := storage.NewDisk(storage.DiskConfig{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d, root
}

func TestOpenWithoutURLIsDiskUnderDataDir(t *testing.T) {
	dataDir := t.TempDir()
	s, err := storage.Open("", dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*storage.Disk); !ok {
		t.Fatalf("Open(\"\") = %T, want *storage.Disk", s)
	}
	key := storage.NewKey()
	mustPut(t, s, key, []byte("hello"))
	got, err := os.ReadFile(filepath.Join(dataDir, "files", filepath.FromSlash(key)))
	if err != nil || string(got) != "hello" {
		t.Fatalf("object file = %q, %v; want it at data/files/<key>", got, err)
	}
}

func TestDiskModes(t *testing.T) {
	// A narrow umask must not make objects unreadable to the service's group (backups).
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	d, root := newDisk(t)
	key := storage.NewKey()
	mustPut(t, d, key, []byte("photo"))

	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o640)
		if e.IsDir() {
			want = fs.ModeDir | 0o750
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDiskDeleteRemovesEmptyDirectories(t *testing.T) {
	d, root := newDisk(t)
	a, b := storage.NewKey(), storage.NewKey()
	mustPut(t, d, a, []byte("a"))
	mustPut(t, d, storage.VariantKey(a, "100.webp"), []byte("a thumb"))
	mustPut(t, d, b, []byte("b"))

	ctx := context.Background()
	if err := d.Delete(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, filepath.Dir(a))); err != nil {
		t.Fatalf("the file's directory went while its thumbnail is still there: %v", err)
	}
	for _, k := range []string{storage.VariantKey(a, "100.webp"), b} {
		if err := d.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("after deleting everything the root holds %v", entries)
	}
	// The root stays usable.
	mustPut(t, d, a, []byte("again"))
}

func TestDiskSymlinksDoNotEscapeTheRoot(t *testing.T) {
	d, root := newDisk(t)
	outside := t.TempDir()
	if err := os.MkdirAll(filepath.Join(outside, "cd"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "cd", "secret"), []byte("not yours"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Someone with access to the data directory planted a link out of it.
	if err := os.Symlink(outside, filepath.Join(root, "ab")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := d.Put(ctx, "ab/cd/new/original", strings.NewReader("x"), 1, ""); err == nil {
		t.Error("Put through a symlink out of the root succeeded")
	}
	if r, _, err := d.Get(ctx, "ab/cd/secret"); err == nil {
		r.Close()
		t.Error("Get through a symlink out of the root succeeded")
	}
	_ = d.Delete(ctx, "ab/cd/secret")
	if _, err := os.Stat(filepath.Join(outside, "cd", "secret")); err != nil {
		t.Errorf("the file outside the root was touched: %v", err)
	}
	if left := filesUnder(t, filepath.Join(outside, "cd")); len(left) != 1 {
		t.Errorf("outside the root: %v", left)
	}
}

func TestDiskEscapingKeysWriteNothingOutside(t *testing.T) {
	parent := t.TempDir()
	d, err := storage.NewDisk(storage.DiskConfig{Root: filepath.Join(parent, "files")})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, key := range []string{"../escaped", "../files/../escaped", "/tmp/escaped"} {
		if _, err := d.Put(context.Background(), key, bytes.NewReader([]byte("x")), 1, ""); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
	if left := filesUnder(t, parent); len(left) != 0 {
		t.Errorf("escaping keys wrote %v", left)
	}
	if _, err := os.Stat("/tmp/escaped"); err == nil {
		t.Error("an absolute key wrote /tmp/escaped")
	}
}

func TestDiskPingReportsAMissingRoot(t *testing.T) {
	d, root := newDisk(t)
	if err := d.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if err := d.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), root) {
		t.Fatalf("Ping with the root gone = %v, want an error naming %s", err, root)
	}
}

func TestDiskRemoveStaleTemp(t *testing.T) {
	d, root := newDisk(t)
	key := storage.NewKey()
	mustPut(t, d, key, []byte("kept"))
	dir := filepath.Join(root, filepath.Dir(key))
	// What a Put killed mid-write leaves, and what a running Put has open.
	stale, fresh := filepath.Join(dir, ".tmp-stale"), filepath.Join(dir, ".tmp-fresh")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("half"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	n, err := d.RemoveStaleTemp(context.Background(), time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("RemoveStaleTemp = %d, %v; want 1", n, err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the stale file is still there: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("the fresh file went: %v", err)
	}
	if got, _ := mustGet(t, d, key); string(got) != "kept" {
		t.Errorf("the object reads %q", got)
	}
}
