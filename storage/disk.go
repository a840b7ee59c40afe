package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"time"
)

// Modes of what the disk store creates: readable by the service's group (a backup agent),
// never by others.
const (
	diskFileMode fs.FileMode = 0o640
	diskDirMode  fs.FileMode = 0o750
)

// DiskConfig configures a Disk.
type DiskConfig struct {
	// Root is the directory holding the objects (created if missing), e.g. ./data/files.
	Root string
	// MaxObjectBytes is the largest object accepted (DefaultMaxObjectBytes when 0).
	MaxObjectBytes int64
}

// Disk is a Store on the local filesystem: the object at key a/b/c is the file Root/a/b/c.
// Every access goes through an os.Root, so neither a key nor a symlink planted under Root
// reaches outside it.
type Disk struct {
	root *os.Root
	dir  string
	max  int64
}

// NewDisk opens (creating if needed) the directory cfg.Root as a Disk.
func NewDisk(cfg DiskConfig) (*Disk, error) {
	if cfg.Root == "" {
		return nil, errors.New("storage: disk store needs a root directory")
	}
	if err := os.MkdirAll(cfg.Root, diskDirMode); err != nil {
		return nil, fmt.Errorf("storage: create %s: %w", cfg.Root, err)
	}
	root, err := os.OpenRoot(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", cfg.Root, err)
	}
	return &Disk{root: root, dir: cfg.Root, max: maxOrDefault(cfg.MaxObjectBytes)}, nil
}

// String names the store for logs.
func (d *Disk) String() string { return "disk " + d.dir }

// Close releases the root directory.
func (d *Disk) Close() error { return d.root.Close() }

// Ping checks that the root accepts a new file, so a read-only or missing disk is found at
// start-up.
func (d *Disk) Ping(ctx context.Context) error {
	name := ".ping-" + randomHex()
	f, err := d.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, diskFileMode)
	if err != nil {
		return fmt.Errorf("storage: %s is not writable: %w", d.dir, err)
	}
	_ = f.Close()
	return d.root.Remove(name)
}

// Put writes the object to a temporary file next to its final name, fsyncs it, renames it
// into place and fsyncs the directory: after a crash the key holds either nothing (or the
// previous object) or the complete new one, never a part.
func (d *Disk) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (Object, error) {
	if err := ValidKey(key); err != nil {
		return Object{}, err
	}
	dir := path.Dir(key)
	tmp, f, created, err := d.createTemp(dir)
	if err != nil {
		return Object{}, fmt.Errorf("storage: put %s: %w", key, err)
	}
	done := false
	defer func() {
		if !done {
			_ = f.Close()
			_ = d.root.Remove(tmp)
		}
	}()
	n, sum, err := copyObject(ctx, f, r, size, d.max)
	if err != nil {
		return Object{}, fmt.Errorf("storage: put %s: %w", key, err)
	}
	if err := f.Chmod(diskFileMode); err != nil { // the umask may have narrowed it
		return Object{}, fmt.Errorf("storage: put %s: %w", key, err)
	}
	if err := f.Sync(); err != nil {
		return Object{}, fmt.Errorf("storage: put %s: %w", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return Object{}, fmt.Errorf("storage: put %s: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return Object{}, fmt.Errorf("storage: put %s: %w", key, err)
	}
	if err := d.root.Rename(tmp, key); err != nil {
		return Object{}, fmt.Errorf("storage: put %s: %w", key, err)
	}
	done = true
	// The rename is durable once its directory is; a directory made for this object is
	// durable once its parent is.
	if err := d.syncDir(dir); err != nil {
		return Object{}, fmt.Errorf("storage: put %s: %w", key, err)
	}
	for _, c := range created {
		if err := d.syncDir(path.Dir(c)); err != nil {
			return Object{}, fmt.Errorf("storage: put %s: %w", key, err)
		}
	}
	return Object{Key: key, Size: n, SHA256: sum, ContentType: contentType, ModTime: fi.ModTime()}, nil
}

// createTemp makes dir (and its parents) and a temporary file in it. A concurrent Delete
// may remove a directory it finds empty between the two steps; then it tries again.
func (d *Disk) createTemp(dir string) (name string, f *os.File, created []string, err error) {
	for range 5 {
		var c []string
		c, err = d.mkdirs(dir)
		created = append(created, c...)
		if err != nil {
			return "", nil, nil, err
		}
		name = dir + "/.tmp-" + randomHex()
		f, err = d.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, diskFileMode)
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			return name, f, created, err
		}
	}
	return "", nil, nil, err
}

// mkdirs creates dir and its missing parents and returns the ones it created, shallowest
// first, so Put can make them durable.
func (d *Disk) mkdirs(dir string) ([]string, error) {
	if dir == "." {
		return nil, nil
	}
	if fi, err := d.root.Stat(dir); err == nil {
		if !fi.IsDir() {
			return nil, fmt.Errorf("%s is not a directory", dir)
		}
		return nil, nil
	}
	created, err := d.mkdirs(path.Dir(dir))
	if err != nil {
		return nil, err
	}
	err = d.root.Mkdir(dir, diskDirMode)
	switch {
	case err == nil:
		if err := d.root.Chmod(dir, diskDirMode); err != nil {
			return nil, err
		}
		return append(created, dir), nil
	case errors.Is(err, fs.ErrExist): // a concurrent Put made it
		return created, nil
	default:
		return nil, err
	}
}

func (d *Disk) syncDir(dir string) error {
	f, err := d.root.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// Get opens the object's file; *os.File seeks, which is all http.ServeContent needs.
func (d *Disk) Get(ctx context.Context, key string) (io.ReadSeekCloser, Object, error) {
	if err := ValidKey(key); err != nil {
		return nil, Object{}, err
	}
	f, err := d.root.Open(key)
	if err != nil {
		return nil, Object{}, diskErr("get", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, Object{}, diskErr("get", key, err)
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, Object{}, fmt.Errorf("storage: get %s: %w", key, ErrNotFound)
	}
	return f, Object{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Stat describes the object's file.
func (d *Disk) Stat(ctx context.Context, key string) (Object, error) {
	if err := ValidKey(key); err != nil {
		return Object{}, err
	}
	fi, err := d.root.Stat(key)
	if err != nil {
		return Object{}, diskErr("stat", key, err)
	}
	if !fi.Mode().IsRegular() {
		return Object{}, fmt.Errorf("storage: stat %s: %w", key, ErrNotFound)
	}
	return Object{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Delete removes the object's file, then the directories it leaves empty (the file's own
// directory once its last variant is gone), so deleted files leave no trace behind.
func (d *Disk) Delete(ctx context.Context, key string) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	fi, err := d.root.Lstat(key)
	if err != nil {
		if isNotExist(err) {
			return nil
		}
		return fmt.Errorf("storage: delete %s: %w", key, err)
	}
	if fi.IsDir() { // a prefix of other keys, not an object
		return nil
	}
	if err := d.root.Remove(key); err != nil && !isNotExist(err) {
		return fmt.Errorf("storage: delete %s: %w", key, err)
	}
	dir := path.Dir(key)
	if err := d.syncDir(dir); err != nil && !isNotExist(err) {
		return fmt.Errorf("storage: delete %s: %w", key, err)
	}
	for ; dir != "."; dir = path.Dir(dir) {
		if d.root.Remove(dir) != nil { // not empty (or gone): stop
			break
		}
	}
	return nil
}

// RemoveStaleTemp deletes the temporary files of Puts that a crash interrupted, those older
// than olderThan (a running Put's file is younger), and answers how many it removed. Run it
// at start-up; valid keys never name these files, so no object is touched.
func (d *Disk) RemoveStaleTemp(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-olderThan)
	removed := 0
	err := d.walkFiles(ctx, func(p string, e fs.DirEntry) error {
		if !strings.HasPrefix(e.Name(), ".tmp-") {
			return nil
		}
		fi, err := e.Info()
		if err != nil || fi.ModTime().After(cutoff) {
			return nil
		}
		if err := d.root.Remove(p); err == nil {
			removed++
		}
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("storage: remove stale temporary files in %s: %w", d.dir, err)
	}
	return removed, nil
}

// walkFiles calls fn for every file (not directory) under the root, passing over what a
// Delete removes meanwhile, until ctx ends.
func (d *Disk) walkFiles(ctx context.Context, fn func(p string, e fs.DirEntry) error) error {
	return fs.WalkDir(d.root.FS(), ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if isNotExist(err) { // removed meanwhile by a Delete
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.IsDir() {
			return nil
		}
		return fn(p, e)
	})
}

func diskErr(op, key string, err error) error {
	if isNotExist(err) {
		return fmt.Errorf("storage: %s %s: %w", op, key, ErrNotFound)
	}
	return fmt.Errorf("storage: %s %s: %w", op, key, err)
}

// isNotExist also counts ENOTDIR: a key below an object's file (key/x) names nothing.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

func randomHex() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
