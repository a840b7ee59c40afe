// Package storage keeps the bytes of uploaded files: one Store interface with a local-disk
// implementation (the default, under ./data/files) and an S3-compatible one (minio-go).
// Both use the same key layout, so moving from disk to S3 is a copy, not a migration. The
// database, not the store, is the record of a file's name, type, owner and hash.
package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
)

// DefaultMaxObjectBytes is the largest object a Store accepts unless configured otherwise:
// 5 GiB, the largest single PUT S3 (and Backblaze B2) accept. Uploads are limited far below
// this by the files code; this only stops a runaway reader from filling a disk.
const DefaultMaxObjectBytes int64 = 5 << 30

// Errors a Store returns, to be tested with errors.Is.
var (
	// ErrNotFound means no object is stored under the key.
	ErrNotFound = errors.New("storage: object not found")
	// ErrInvalidKey means the key is not one this package makes (see ValidKey); nothing was
	// read or written.
	ErrInvalidKey = errors.New("storage: invalid key")
	// ErrSizeMismatch means a Put's reader gave a different number of bytes than the size
	// the caller announced; nothing was stored.
	ErrSizeMismatch = errors.New("storage: object size differs from the announced size")
	// ErrTooLarge means a Put's reader gave more than the store's MaxObjectBytes; nothing
	// was stored.
	ErrTooLarge = errors.New("storage: object too large")
)

// Object describes a stored object.
type Object struct {
	// Key is where the object is stored.
	Key string
	// Size is its length in bytes.
	Size int64
	// SHA256 is the lowercase hex SHA-256 of its bytes. Put always sets it (it is computed
	// while the bytes stream through); Stat and Get set it only where the backend keeps it
	// (S3 object metadata), since the database holds the authoritative copy.
	SHA256 string
	// ContentType is the type given to Put. Like SHA256, Stat and Get set it only where the
	// backend keeps it (S3).
	ContentType string
	// ModTime is when the object was stored.
	ModTime time.Time
}

// Store is where file bytes live. Every method refuses a key that ValidKey refuses with
// ErrInvalidKey. A Store is safe for concurrent use.
type Store interface {
	// Put streams r into the object at key, replacing any object there, and returns it
	// with its size and SHA-256. size is the number of bytes r will give, or -1 when
	// unknown; a reader that gives another number fails with ErrSizeMismatch. An object
	// becomes visible only once complete: a Put that fails (a reader error, a cancelled
	// ctx, a crash) leaves nothing under key.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (Object, error)
	// Get opens the object at key for reading. The reader seeks (what http.ServeContent
	// needs for Range requests) and must be closed; it stays tied to ctx.
	Get(ctx context.Context, key string) (io.ReadSeekCloser, Object, error)
	// Stat describes the object at key without reading it.
	Stat(ctx context.Context, key string) (Object, error)
	// Delete removes the object at key; deleting a key with no object is not an error, so
	// a retried delete job succeeds.
	Delete(ctx context.Context, key string) error
	// Ping checks that the store can be used (the disk root is writable, the bucket
	// exists), so a misconfiguration is reported at start-up rather than at the first
	// upload.
	Ping(ctx context.Context) error
	// Close releases what the store holds open.
	Close() error
}

// Presigner is implemented by stores that can hand out a time-limited URL from which a
// client downloads an object directly (S3). Whoever uses it has checked authorization
// first; the bucket itself is never public.
type Presigner interface {
	// PresignGet returns a URL valid for ttl that downloads the object at key with the
	// Content-Disposition value disposition.
	PresignGet(ctx context.Context, key string, ttl time.Duration, disposition string) (*url.URL, error)
}

// Config is what Open needs; the zero value of each limit means its default.
type Config struct {
	// URL selects the backend: "" for the local disk, s3://ACCESS:SECRET@host:port/bucket?region=&secure=
	// for S3 (MESSENGER_STORAGE_URL).
	URL string
	// DataDir is the application's data directory; the disk store lives in DataDir/files.
	DataDir string
	// SpoolDir is where an S3 Put stages an object before sending it ("" means
	// os.TempDir()): see S3Config.SpoolDir.
	SpoolDir string
	// MaxObjectBytes is the largest object accepted (DefaultMaxObjectBytes when 0).
	MaxObjectBytes int64
}

// Open returns the Store that url selects, with default limits: "" is the local disk under
// dataDir/files, s3://… is S3 (see ParseS3URL). It does not contact S3; call Ping for that.
func Open(url string, dataDir string) (Store, error) {
	return OpenConfig(Config{URL: url, DataDir: dataDir})
}

// OpenConfig is Open with every limit given.
func OpenConfig(cfg Config) (Store, error) {
	switch {
	case cfg.URL == "":
		if cfg.DataDir == "" {
			return nil, errors.New("storage: no data directory for the local file store")
		}
		return NewDisk(DiskConfig{Root: filepath.Join(cfg.DataDir, "files"), MaxObjectBytes: cfg.MaxObjectBytes})
	case strings.HasPrefix(cfg.URL, "s3://"):
		s3cfg, err := ParseS3URL(cfg.URL)
		if err != nil {
			return nil, err
		}
		s3cfg.SpoolDir = cfg.SpoolDir
		s3cfg.MaxObjectBytes = cfg.MaxObjectBytes
		return NewS3(s3cfg)
	default:
		// Never echo the URL: it may carry a secret key.
		return nil, errors.New("storage: MESSENGER_STORAGE_URL must be empty (local disk) or start with s3:// (s3://ACCESS:SECRET@host:port/bucket?region=&secure=)")
	}
}

// OriginalName is the last segment of the key NewKey returns.
const OriginalName = "original"

// NewKey returns a fresh random key for an uploaded file's original, such as
// 3f/a1/3fa1c2d4-…/original. The two shard directories keep any one directory small on
// disk; the per-file directory holds the original and its variants (VariantKey), so a
// file's objects sit together and a variant never collides with another file's.
func NewKey() string {
	id := uuid.New().String()
	return id[0:2] + "/" + id[2:4] + "/" + id + "/" + OriginalName
}

// VariantKey returns the key of a derived object (a thumbnail) stored next to the original
// at key, e.g. VariantKey(k, "300.webp"). name must be one valid key segment; an invalid
// one makes a key that every Store method refuses.
func VariantKey(key, name string) string {
	return path.Dir(key) + "/" + name
}

// maxKeyLen stays well under S3's 1024-byte limit and any filesystem's PATH_MAX.
const maxKeyLen = 512

// ValidKey returns an error wrapping ErrInvalidKey unless key may name an object: non-empty '/'-separated segments of
// ASCII letters, digits, '-', '_' and '.', none starting with '.'. That refuses every way
// out of a disk root (.., absolute paths, NUL, backslashes) and keeps the names of the disk
// store's temporary files (which start with '.') out of reach.
func ValidKey(key string) error {
	if key == "" || len(key) > maxKeyLen {
		return fmt.Errorf("%w: length %d", ErrInvalidKey, len(key))
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg[0] == '.' {
			return fmt.Errorf("%w: %q", ErrInvalidKey, key)
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
			if !ok {
				return fmt.Errorf("%w: %q", ErrInvalidKey, key)
			}
		}
	}
	return nil
}

// copyObject copies r into w through a SHA-256, reading at most limit bytes (the announced
// size, or max when size < 0) plus one to notice a reader that gives more. It is the one
// place both stores stream through, with a fixed 32 KiB buffer whatever the object's size.
func copyObject(ctx context.Context, w io.Writer, r io.Reader, size, max int64) (n int64, sum string, err error) {
	if size > max {
		return 0, "", fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, size, max)
	}
	limit := max
	if size >= 0 {
		limit = size
	}
	h := sha256.New()
	n, err = io.CopyBuffer(io.MultiWriter(w, h), io.LimitReader(ctxReader{ctx, r}, limit+1), make([]byte, 32<<10))
	switch {
	case err != nil:
		return n, "", err
	case size >= 0 && n != size:
		return n, "", fmt.Errorf("%w: announced %d, got %d or more", ErrSizeMismatch, size, n)
	case n > max:
		return n, "", fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
	}
	return n, hexSum(h), nil
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// ctxReader stops a copy once ctx ends, since a slow or stuck uploader's reader may not.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func maxOrDefault(n int64) int64 {
	if n <= 0 {
		return DefaultMaxObjectBytes
	}
	return n
}
