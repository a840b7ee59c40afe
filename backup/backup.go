// Package backup makes, restores and checks backups of the messenger: the database (one
// pg_dump snapshot) and the file storage's objects that the dump's file rows name, with a
// manifest of sizes, checksums, the schema version and row counts. Check is the consistency
// check of a database and its storage, run after every restore and on its own.
package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/dreamseed/messenger/storage"
)

// StampLayout names a backup's folder: its UTC time, e.g. 20261130T021500Z.
const StampLayout = "20060102T150405Z"

// Defaults of Config's limits.
const (
	DefaultKeep       = 7
	DefaultCheckGrace = 10 * time.Minute
)

// Config is what the three commands need.
type Config struct {
	// DatabaseURL is the owner's connection (DATABASE_URL): a superuser or a role with
	// BYPASSRLS, since a backup and a check must see every row.
	DatabaseURL string
	// Storage is the file storage (MESSENGER_STORAGE_URL); it must list its objects
	// (storage.Lister), as Disk and S3 do.
	Storage storage.Store
	// Keep is how many complete backups Backup leaves in the folder (DefaultKeep when 0).
	Keep int
	// CheckGrace is how young an object without a row may be on a running system before the
	// check calls it extra (DefaultCheckGrace when 0).
	CheckGrace time.Duration
	// AppPassword is given to the application role after a restore (MESSENGER_APP_DB_PASSWORD).
	AppPassword string
	// Version is the messenger's version, written in the manifest.
	Version string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

func (c Config) lister() (storage.Lister, error) {
	l, ok := c.Storage.(storage.Lister)
	if !ok {
		return nil, fmt.Errorf("backup: the file storage %v cannot list its objects", c.Storage)
	}
	return l, nil
}

func (c Config) keep() int {
	if c.Keep <= 0 {
		return DefaultKeep
	}
	return c.Keep
}

func (c Config) checkGrace() time.Duration {
	if c.CheckGrace <= 0 {
		return DefaultCheckGrace
	}
	return c.CheckGrace
}

func (c Config) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

// partialSuffix ends the name of a backup being written: ".<stamp>.partial" is renamed
// to "<stamp>" once complete, so a folder named by a stamp is always a whole backup.
const partialSuffix = ".partial"

// Backup writes a new backup into dir/<stamp>, then deletes the oldest complete backups
// beyond cfg.Keep and any partial one a crash left. It answers the backup's folder and
// manifest. Objects the database names but storage lacks are listed in the manifest
// (MissingObjects) and make Backup answer ErrMissingObjects with the backup complete; the
// older backups are then kept.
func Backup(ctx context.Context, cfg Config, dir string) (string, *Manifest, error) {
	if _, err := cfg.lister(); err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", nil, fmt.Errorf("backup: %w", err)
	}
	stamp := cfg.now().UTC().Format(StampLayout)
	final := filepath.Join(dir, stamp)
	if _, err := os.Stat(final); err == nil {
		return "", nil, fmt.Errorf("backup: %s exists already", final)
	}
	unlock, err := lockFolder(dir)
	if err != nil {
		return "", nil, err
	}
	defer unlock()
	tmp := filepath.Join(dir, "."+stamp+partialSuffix)
	if err := os.Mkdir(tmp, 0o750); err != nil {
		return "", nil, fmt.Errorf("backup: %w", err)
	}
	complete := false
	defer func() {
		if !complete {
			os.RemoveAll(tmp)
		}
	}()

	m := &Manifest{Format: manifestFormat, CreatedAt: cfg.now().UTC(), MessengerVersion: cfg.Version}
	fo, err := dumpDatabase(ctx, cfg, tmp, m)
	if err != nil {
		return "", nil, err
	}
	if err := copyObjects(ctx, cfg.Storage, fo, tmp, m); err != nil {
		return "", nil, err
	}
	if err := m.write(tmp); err != nil {
		return "", nil, fmt.Errorf("backup: %w", err)
	}
	if err := syncDir(tmp); err != nil {
		return "", nil, err
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", nil, fmt.Errorf("backup: %w", err)
	}
	complete = true
	if err := syncDir(dir); err != nil {
		return final, m, err
	}
	if len(m.MissingObjects) > 0 {
		return final, m, fmt.Errorf("%w: %s", ErrMissingObjects, strings.Join(m.MissingObjects, ", "))
	}
	return final, m, prune(dir, cfg.keep(), stamp)
}

// ErrMissingObjects means the database names objects that storage did not hold.
var ErrMissingObjects = errors.New("backup: objects named by file rows are missing from storage")

// dumpDatabase runs pg_dump on a snapshot it exports and, in the same snapshot, reads the
// manifest's facts and the file rows' objects: the dump and the object list are one moment.
func dumpDatabase(ctx context.Context, cfg Config, dir string, m *Manifest) (fileObjects, error) {
	var fo fileObjects
	dump, err := newPGTool("pg_dump", cfg.DatabaseURL)
	if err != nil {
		return fo, err
	}
	snap, err := openSnapshot(ctx, cfg.DatabaseURL)
	if err != nil {
		return fo, err
	}
	defer snap.close()
	tx := snap.tx
	var snapshotID string
	var versionNum int
	err = tx.QueryRowContext(ctx, `SELECT pg_export_snapshot(), current_setting('server_version'),
		current_setting('server_version_num')::int, (SELECT tableowner FROM pg_tables WHERE tablename = 'schema_migrations' LIMIT 1)`).
		Scan(&snapshotID, &m.PostgresVersion, &versionNum, &m.Owner)
	if err != nil {
		return fo, fmt.Errorf("database: %w", err)
	}
	if err := dump.checkNewEnough(ctx, versionNum); err != nil {
		return fo, err
	}
	dumpPath := filepath.Join(dir, DumpName)
	if err := dump.run(ctx, "--format=custom", "--snapshot="+snapshotID, "--file="+dumpPath); err != nil {
		return fo, err
	}
	if m.SchemaVersion, m.SchemaMigration, err = schemaVersion(ctx, tx); err != nil {
		return fo, err
	}
	if m.Counts, err = readCounts(ctx, tx); err != nil {
		return fo, err
	}
	if fo, err = readFileObjects(ctx, tx); err != nil {
		return fo, err
	}
	size, sum, err := hashFile(dumpPath)
	if err != nil {
		return fo, err
	}
	m.Files = append(m.Files, File{Path: DumpName, Size: size, SHA256: sum})
	return fo, tx.Commit()
}

// copyObjects copies the objects the file rows name into the backup, each under its key,
// hashing it on the way.
func copyObjects(ctx context.Context, st storage.Store, fo fileObjects, dir string, m *Manifest) error {
	for _, w := range fo.Wanted {
		f, err := copyObject(ctx, st, w.Key, dir)
		if errors.Is(err, storage.ErrNotFound) {
			m.MissingObjects = append(m.MissingObjects, w.Key)
			continue
		}
		if err != nil {
			return err
		}
		m.Files = append(m.Files, f)
		m.Objects.Count++
		m.Objects.Bytes += f.Size
	}
	return nil
}

func copyObject(ctx context.Context, st storage.Store, key, dir string) (File, error) {
	r, _, err := st.Get(ctx, key)
	if err != nil {
		return File{}, err
	}
	defer r.Close()
	rel := objectPath(key)
	name := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(name), 0o750); err != nil {
		return File{}, fmt.Errorf("backup: %w", err)
	}
	out, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return File{}, fmt.Errorf("backup: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), r)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return File{}, fmt.Errorf("backup: copy %s: %w", key, err)
	}
	return File{Path: rel, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// lockName is the lock file of a backup folder: one backup at a time writes into it, so a
// partial backup found there is one a crash left.
const lockName = ".lock"

// lockFolder takes the folder's lock, or answers that another backup holds it.
func lockFolder(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("backup: another backup is writing into %s (%w)", dir, err)
	}
	return func() { f.Close() }, nil // closing releases the lock
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("backup: sync %s: %w", dir, err)
	}
	return nil
}

// prune deletes the complete backups of dir but the newest keep, and the partial ones left
// by an interrupted run (not current's own, which is complete by now). Only names this
// package makes are touched.
func prune(dir string, keep int, current string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	var stamps []string
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() {
			continue
		}
		if isStamp(name) {
			stamps = append(stamps, name)
			continue
		}
		if s, ok := strings.CutSuffix(strings.TrimPrefix(name, "."), partialSuffix); ok && isStamp(s) && s != current {
			errs = append(errs, os.RemoveAll(filepath.Join(dir, name)))
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(stamps))) // the layout sorts as time does
	for i, s := range stamps {
		if i >= keep {
			errs = append(errs, os.RemoveAll(filepath.Join(dir, s)))
		}
	}
	return errors.Join(errs...)
}

func isStamp(name string) bool {
	_, err := time.Parse(StampLayout, name)
	return err == nil
}
