package backup

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ManifestName is the manifest's file in a backup's folder.
const ManifestName = "manifest.json"

// DumpName is the database dump's file in a backup's folder (pg_dump's custom format).
const DumpName = "database.dump"

// objectsDir is the folder of a backup holding the file storage's objects, each under its
// key: the disk store's own layout, so a backup's objects can be read without the program.
const objectsDir = "files"

// manifestFormat is the version of the manifest's layout.
const manifestFormat = 1

// Manifest describes one complete backup: what it holds and what the database held.
type Manifest struct {
	Format           int       `json:"format"`
	CreatedAt        time.Time `json:"created_at"`
	MessengerVersion string    `json:"messenger_version"`
	// SchemaVersion and SchemaMigration name the last migration applied to the database.
	SchemaVersion   int    `json:"schema_version"`
	SchemaMigration string `json:"schema_migration"`
	PostgresVersion string `json:"postgres_version"`
	// Owner is the role that owned the database's tables: restore recreates ownership, so
	// the target server needs a role of this name.
	Owner   string       `json:"owner"`
	Counts  Counts       `json:"counts"`
	Objects ObjectTotals `json:"objects"`
	// Files lists every file of the backup but the manifest, with its size and SHA-256.
	Files []File `json:"files"`
	// MissingObjects are objects the database's file rows named that storage did not have
	// when the backup copied it.
	MissingObjects []string `json:"missing_objects,omitempty"`
}

// Counts are row counts of the database at the dump's snapshot.
type Counts struct {
	Users         int64 `json:"users"`
	Conversations int64 `json:"conversations"`
	Messages      int64 `json:"messages"`
	Files         int64 `json:"files"`
}

// ObjectTotals are how many objects, and how many bytes, the file storage holds.
type ObjectTotals struct {
	Count int64 `json:"count"`
	Bytes int64 `json:"bytes"`
}

// File is one file of a backup, its path relative to the backup's folder.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// ReadManifest reads the manifest of the backup in dir.
func ReadManifest(dir string) (*Manifest, error) {
	raw, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", dir, err)
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("backup %s: %s is not a manifest: %w", dir, ManifestName, err)
	}
	if m.Format != manifestFormat {
		return nil, fmt.Errorf("backup %s: manifest format %d, this program reads %d", dir, m.Format, manifestFormat)
	}
	return &m, nil
}

// write stores the manifest in dir, synced to disk.
func (m *Manifest) write(dir string) error {
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeSynced(filepath.Join(dir, ManifestName), raw)
}

// Verify reads every file of the backup in dir against the manifest, and answers one
// problem per file that is missing, of another size or checksum, or not in the manifest.
func Verify(dir string, m *Manifest) ([]string, error) {
	var problems []string
	listed := map[string]bool{}
	for _, f := range m.Files {
		listed[f.Path] = true
		if !filepath.IsLocal(filepath.FromSlash(f.Path)) {
			problems = append(problems, fmt.Sprintf("the manifest names %q, outside the backup", f.Path))
			continue
		}
		size, sum, err := hashFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			problems = append(problems, fmt.Sprintf("%s: missing", f.Path))
		case err != nil:
			return nil, err
		case size != f.Size:
			problems = append(problems, fmt.Sprintf("%s: %d bytes, the manifest says %d", f.Path, size, f.Size))
		case sum != f.SHA256:
			problems = append(problems, fmt.Sprintf("%s: checksum %s, the manifest says %s", f.Path, sum, f.SHA256))
		}
	}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel = filepath.ToSlash(rel); rel != ManifestName && !listed[rel] {
			problems = append(problems, fmt.Sprintf("%s: not in the manifest", rel))
		}
		return nil
	})
	sort.Strings(problems)
	return problems, err
}

// hashFile answers a file's size and lowercase hex SHA-256.
func hashFile(name string) (int64, string, error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return n, hex.EncodeToString(h.Sum(nil)), err
}

// writeSynced writes a new file and syncs it, so a backup renamed complete is complete on
// disk too.
func writeSynced(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// objectPath is where a backup keeps the object at key, relative to its folder.
func objectPath(key string) string { return objectsDir + "/" + key }

// objectKey answers the key of a backup file that holds an object, and whether it is one.
func objectKey(p string) (string, bool) { return strings.CutPrefix(p, objectsDir+"/") }
