package storage

import (
	"context"
	"fmt"
	"io/fs"
	"strings"

	"github.com/minio/minio-go/v7"
)

// Lister is implemented by stores that can enumerate their objects: the backup copies a
// store and the consistency check compares it with the database's file rows.
type Lister interface {
	// List calls fn for every object, in no particular order, with its key, size and
	// modification time; an error from fn stops the listing and is returned.
	List(ctx context.Context, fn func(Object) error) error
}

var (
	_ Lister = (*Disk)(nil)
	_ Lister = (*S3)(nil)
)

// List walks the root. A Put's temporary file and a Ping's probe (their names start with
// '.', which no valid key does) are not objects and are left out.
func (d *Disk) List(ctx context.Context, fn func(Object) error) error {
	err := d.walkFiles(ctx, func(p string, e fs.DirEntry) error {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			return nil
		}
		fi, err := e.Info()
		if err != nil {
			if isNotExist(err) {
				return nil
			}
			return err
		}
		return fn(Object{Key: p, Size: fi.Size(), ModTime: fi.ModTime()})
	})
	if err != nil {
		return fmt.Errorf("storage: list %s: %w", d.dir, err)
	}
	return nil
}

// List pages through the bucket's keys (S3 answers them a thousand at a time).
func (s *S3) List(ctx context.Context, fn func(Object) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine when fn returns early
	for info := range s.client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if info.Err != nil {
			return fmt.Errorf("storage: list %s: %w", s, info.Err)
		}
		if err := fn(Object{Key: info.Key, Size: info.Size, ModTime: info.LastModified}); err != nil {
			return err
		}
	}
	return ctx.Err()
}
