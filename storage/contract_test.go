package storage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/dreamseed/messenger/storage"
	"github.com/dreamseed/messenger/storage/s3test"
	"github.com/minio/minio-go/v7"
)

// backend is one Store implementation under the contract, with a way to look behind it
// for anything a failed Put may have left (temporary files, spool files, stray objects).
type backend struct {
	store     storage.Store
	leftovers func(t *testing.T) []string
}

// newBackend makes a fresh store accepting objects up to max bytes (0: the default).
type newBackend func(t *testing.T, max int64) backend

func TestDiskContract(t *testing.T) {
	runContract(t, func(t *testing.T, max int64) backend {
		root := filepath.Join(t.TempDir(), "files")
		d, err := storage.NewDisk(storage.DiskConfig{Root: root, MaxObjectBytes: max})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close() })
		return backend{store: d, leftovers: func(t *testing.T) []string { return filesUnder(t, root) }}
	})
}

func TestS3Contract(t *testing.T) {
	srv := s3test.Start(t)
	runContract(t, func(t *testing.T, max int64) backend {
		spool := t.TempDir()
		bucket, url := srv.NewBucket(t)
		cfg, err := storage.ParseS3URL(url)
		if err != nil {
			t.Fatal(err)
		}
		cfg.SpoolDir, cfg.MaxObjectBytes = spool, max
		s, err := storage.NewS3(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		return backend{store: s, leftovers: func(t *testing.T) []string {
			left := filesUnder(t, spool)
			for obj := range srv.Client.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
				if obj.Err != nil {
					t.Fatal(obj.Err)
				}
				left = append(left, "s3:"+obj.Key)
			}
			return left
		}}
	})
}

func runContract(t *testing.T, newB newBackend) {
	ctx := context.Background()

	t.Run("put then get returns the same bytes, size and sha256", func(t *testing.T) {
		b := newB(t, 0)
		key := storage.NewKey()
		data, sum := pattern(1, 100_000)
		obj, err := b.store.Put(ctx, key, bytes.NewReader(data), int64(len(data)), "application/pdf")
		if err != nil {
			t.Fatal(err)
		}
		if obj.Key != key || obj.Size != int64(len(data)) || obj.SHA256 != sum || obj.ContentType != "application/pdf" {
			t.Fatalf("Put returned %+v, want size %d sha256 %s", obj, len(data), sum)
		}
		if obj.ModTime.IsZero() {
			t.Error("Put returned no ModTime")
		}
		got, gobj := mustGet(t, b.store, key)
		if !bytes.Equal(got, data) || gobj.Size != int64(len(data)) {
			t.Fatalf("Get: %d bytes (object size %d), want the %d put", len(got), gobj.Size, len(data))
		}
		st, err := b.store.Stat(ctx, key)
		if err != nil || st.Size != int64(len(data)) || st.Key != key {
			t.Fatalf("Stat = %+v, %v", st, err)
		}
		if st.SHA256 != "" && st.SHA256 != sum {
			t.Errorf("Stat sha256 %s, want %s", st.SHA256, sum)
		}
		if left := b.leftovers(t); len(left) != 1 {
			t.Errorf("after one Put the store holds %v, want just the object", left)
		}
	})

	t.Run("unknown size and empty objects are stored", func(t *testing.T) {
		b := newB(t, 0)
		data, sum := pattern(2, 70_000)
		key := storage.NewKey()
		obj, err := b.store.Put(ctx, key, bytes.NewReader(data), -1, "")
		if err != nil || obj.Size != int64(len(data)) || obj.SHA256 != sum {
			t.Fatalf("Put(size -1) = %+v, %v", obj, err)
		}
		empty := storage.NewKey()
		obj, err = b.store.Put(ctx, empty, strings.NewReader(""), 0, "text/plain")
		if err != nil || obj.Size != 0 || obj.SHA256 != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
			t.Fatalf("Put(empty) = %+v, %v", obj, err)
		}
		if got, _ := mustGet(t, b.store, empty); len(got) != 0 {
			t.Fatalf("empty object reads %d bytes", len(got))
		}
	})

	t.Run("a second put replaces the object", func(t *testing.T) {
		b := newB(t, 0)
		key := storage.NewKey()
		mustPut(t, b.store, key, []byte("first version"))
		mustPut(t, b.store, key, []byte("second"))
		if got, _ := mustGet(t, b.store, key); string(got) != "second" {
			t.Fatalf("Get = %q after replacing", got)
		}
	})

	t.Run("downloads serve byte ranges", func(t *testing.T) {
		b := newB(t, 0)
		key := storage.NewKey()
		data, _ := pattern(3, 300_000)
		mustPut(t, b.store, key, data)
		for _, tc := range []struct {
			rng        string
			status     int
			start, end int
		}{
			{"", http.StatusOK, 0, len(data)},
			{"bytes=100-199", http.StatusPartialContent, 100, 200},
			{"bytes=-50", http.StatusPartialContent, len(data) - 50, len(data)},
			{"bytes=250000-", http.StatusPartialContent, 250000, len(data)},
		} {
			r, obj, err := b.store.Get(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, "/content", nil)
			if tc.rng != "" {
				req.Header.Set("Range", tc.rng)
			}
			rec := httptest.NewRecorder()
			rec.Header().Set("Content-Type", "application/octet-stream")
			http.ServeContent(rec, req, "", obj.ModTime, r)
			_ = r.Close()
			if rec.Code != tc.status || !bytes.Equal(rec.Body.Bytes(), data[tc.start:tc.end]) {
				t.Errorf("Range %q: status %d, %d bytes; want %d, bytes %d-%d", tc.rng, rec.Code, rec.Body.Len(), tc.status, tc.start, tc.end)
			}
		}
	})

	t.Run("missing keys are not found; delete is idempotent", func(t *testing.T) {
		b := newB(t, 0)
		key := storage.NewKey()
		if _, err := b.store.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Stat(missing) = %v, want ErrNotFound", err)
		}
		if _, _, err := b.store.Get(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Get(missing) = %v, want ErrNotFound", err)
		}
		mustPut(t, b.store, key, []byte("to be deleted"))
		for i := range 2 {
			if err := b.store.Delete(ctx, key); err != nil {
				t.Fatalf("Delete #%d: %v", i+1, err)
			}
		}
		if _, err := b.store.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Stat(deleted) = %v, want ErrNotFound", err)
		}
		if _, _, err := b.store.Get(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Get(deleted) = %v, want ErrNotFound", err)
		}
		// A key's directory is not an object.
		if _, err := b.store.Stat(ctx, strings.TrimSuffix(key, "/"+storage.OriginalName)); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Stat(prefix) = %v, want ErrNotFound", err)
		}
		if left := b.leftovers(t); len(left) != 0 {
			t.Errorf("after delete the store still holds %v", left)
		}
	})

	t.Run("an original and its variants live and go together", func(t *testing.T) {
		b := newB(t, 0)
		key := storage.NewKey()
		keys := []string{key, storage.VariantKey(key, "100.webp"), storage.VariantKey(key, "600.webp")}
		for i, k := range keys {
			mustPut(t, b.store, k, []byte(fmt.Sprint("object ", i)))
		}
		for i, k := range keys {
			if got, _ := mustGet(t, b.store, k); string(got) != fmt.Sprint("object ", i) {
				t.Fatalf("%s holds %q", k, got)
			}
		}
		for _, k := range keys {
			if err := b.store.Delete(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		if left := b.leftovers(t); len(left) != 0 {
			t.Errorf("after deleting the file and its variants the store holds %v", left)
		}
	})

	t.Run("a 12 MB object streams through without being held in memory", func(t *testing.T) {
		b := newB(t, 0)
		key := storage.NewKey()
		const size = 12 << 20
		want := patternSum(4, size)
		// A quarter of the object: room for buffers, HTTP and request signing, far below
		// what holding the object would take.
		const budget = size / 4

		alloc := allocated(func() {
			obj, err := b.store.Put(ctx, key, &patternReader{seed: 4, left: size}, size, "image/jpeg")
			if err != nil || obj.SHA256 != want {
				t.Fatalf("Put = %+v, %v", obj, err)
			}
		})
		t.Logf("Put of %d MB allocated %d KB", size>>20, alloc>>10)
		if alloc > budget {
			t.Errorf("Put of a %d MB object allocated %d KB, want under %d KB", size>>20, alloc>>10, budget>>10)
		}

		alloc = allocated(func() {
			r, obj, err := b.store.Get(ctx, key)
			if err != nil || obj.Size != size {
				t.Fatalf("Get = %+v, %v", obj, err)
			}
			defer r.Close()
			h := sha256.New()
			if _, err := io.CopyBuffer(h, r, make([]byte, 32<<10)); err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != want {
				t.Fatalf("Get read sha256 %s, want %s", got, want)
			}
		})
		t.Logf("Get of %d MB allocated %d KB", size>>20, alloc>>10)
		if alloc > budget {
			t.Errorf("Get of a %d MB object allocated %d KB, want under %d KB", size>>20, alloc>>10, budget>>10)
		}
	})

	t.Run("keys that could escape are refused", func(t *testing.T) {
		b := newB(t, 0)
		for _, key := range []string{
			"", "../outside", "ab/../../outside", "/etc/passwd", "ab/cd/\x00x", "ab//cd", "ab/./cd",
			"./ab", "ab/", ".tmp-x", "ab/.hidden", `ab\..\x`, "ab/cd/파일", "ab cd", strings.Repeat("a", 600),
		} {
			if _, err := b.store.Put(ctx, key, strings.NewReader("x"), 1, ""); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("Put(%q) = %v, want ErrInvalidKey", key, err)
			}
			if _, _, err := b.store.Get(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("Get(%q) = %v, want ErrInvalidKey", key, err)
			}
			if _, err := b.store.Stat(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("Stat(%q) = %v, want ErrInvalidKey", key, err)
			}
			if err := b.store.Delete(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("Delete(%q) = %v, want ErrInvalidKey", key, err)
			}
		}
		if left := b.leftovers(t); len(left) != 0 {
			t.Errorf("refused keys left %v", left)
		}
	})

	t.Run("concurrent puts of different keys each keep their bytes", func(t *testing.T) {
		b := newB(t, 0)
		const n = 8
		keys := make([]string, n)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			keys[i] = storage.NewKey()
			wg.Go(func() {
				data, _ := pattern(uint64(100+i), 200_000+i)
				if _, err := b.store.Put(ctx, keys[i], bytes.NewReader(data), int64(len(data)), ""); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for i, k := range keys {
			data, _ := pattern(uint64(100+i), 200_000+i)
			if got, _ := mustGet(t, b.store, k); !bytes.Equal(got, data) {
				t.Errorf("object %d: %d bytes differ from the %d put", i, len(got), len(data))
			}
		}
	})

	t.Run("a put whose reader fails midway leaves nothing", func(t *testing.T) {
		b := newB(t, 0)
		key := storage.NewKey()
		boom := errors.New("client went away")
		r := io.MultiReader(&patternReader{seed: 5, left: 1 << 20}, errReader{boom})
		if _, err := b.store.Put(ctx, key, r, 2<<20, "image/png"); !errors.Is(err, boom) {
			t.Fatalf("Put = %v, want the reader's error", err)
		}
		if _, err := b.store.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Stat after a failed Put = %v, want ErrNotFound", err)
		}
		if left := b.leftovers(t); len(left) != 0 {
			t.Errorf("a failed Put left %v", left)
		}
	})

	t.Run("a put whose context ends midway leaves nothing", func(t *testing.T) {
		b := newB(t, 0)
		key := storage.NewKey()
		cctx, cancel := context.WithCancel(ctx)
		pr, pw := io.Pipe()
		go func() {
			_, _ = pw.Write(make([]byte, 100_000))
			cancel()
			_, _ = pw.Write(make([]byte, 100_000))
			_ = pw.Close()
		}()
		if _, err := b.store.Put(cctx, key, pr, -1, ""); !errors.Is(err, context.Canceled) {
			t.Fatalf("Put = %v, want context.Canceled", err)
		}
		_ = pr.Close()
		if left := b.leftovers(t); len(left) != 0 {
			t.Errorf("a cancelled Put left %v", left)
		}
	})

	t.Run("an object is invisible until its put completes", func(t *testing.T) {
		b := newB(t, 0)
		key := storage.NewKey()
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			_, err := b.store.Put(ctx, key, pr, 2_000_000, "")
			done <- err
		}()
		if _, err := pw.Write(make([]byte, 1_000_000)); err != nil {
			t.Fatal(err)
		}
		if _, err := b.store.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Stat halfway through a Put = %v, want ErrNotFound", err)
		}
		if _, _, err := b.store.Get(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Get halfway through a Put = %v, want ErrNotFound", err)
		}
		if _, err := pw.Write(make([]byte, 1_000_000)); err != nil {
			t.Fatal(err)
		}
		_ = pw.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if st, err := b.store.Stat(ctx, key); err != nil || st.Size != 2_000_000 {
			t.Fatalf("Stat after the Put = %+v, %v", st, err)
		}
	})

	t.Run("a reader giving another size than announced stores nothing", func(t *testing.T) {
		b := newB(t, 0)
		for _, tc := range []struct{ announced, given int }{{10, 11}, {10, 9}, {1000, 100_000}} {
			key := storage.NewKey()
			_, err := b.store.Put(ctx, key, bytes.NewReader(make([]byte, tc.given)), int64(tc.announced), "")
			if !errors.Is(err, storage.ErrSizeMismatch) {
				t.Errorf("announced %d, gave %d: Put = %v, want ErrSizeMismatch", tc.announced, tc.given, err)
			}
			if _, err := b.store.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("announced %d, gave %d: Stat = %v, want ErrNotFound", tc.announced, tc.given, err)
			}
		}
		if left := b.leftovers(t); len(left) != 0 {
			t.Errorf("mismatched Puts left %v", left)
		}
	})

	t.Run("objects over the configured maximum are refused", func(t *testing.T) {
		b := newB(t, 1000)
		if _, err := b.store.Put(ctx, storage.NewKey(), bytes.NewReader(make([]byte, 1000)), 1000, ""); err != nil {
			t.Fatalf("Put at the limit: %v", err)
		}
		for _, size := range []int64{1001, -1} {
			key := storage.NewKey()
			if _, err := b.store.Put(ctx, key, bytes.NewReader(make([]byte, 1001)), size, ""); !errors.Is(err, storage.ErrTooLarge) {
				t.Errorf("Put of 1001 bytes (announced %d) = %v, want ErrTooLarge", size, err)
			}
			if _, err := b.store.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Stat after a refused Put = %v", err)
			}
		}
	})

	t.Run("ping", func(t *testing.T) {
		b := newB(t, 0)
		if err := b.store.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		if left := b.leftovers(t); len(left) != 0 {
			t.Errorf("Ping left %v", left)
		}
	})
}

func mustPut(t *testing.T, s storage.Store, key string, data []byte) {
	t.Helper()
	if _, err := s.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)), "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
}

func mustGet(t *testing.T, s storage.Store, key string) ([]byte, storage.Object) {
	t.Helper()
	r, obj, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return data, obj
}

// filesUnder lists the regular files below dir (a store's leftovers when it should be empty).
func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return files
}

// allocated reports the bytes the process allocated while f ran.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// patternReader yields size deterministic pseudo-random bytes without allocating, so a
// test can stream a large object and know its hash.
type patternReader struct {
	seed uint64
	left int64
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	x := p.seed | 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	p.seed = x
	p.left -= int64(len(b))
	return len(b), nil
}

// pattern returns size bytes of the seed's pattern and their sha256.
func pattern(seed uint64, size int) ([]byte, string) {
	data, _ := io.ReadAll(&patternReader{seed: seed, left: int64(size)})
	sum := sha256.Sum256(data)
	return data, hex.EncodeToString(sum[:])
}

func patternSum(seed uint64, size int64) string {
	h := sha256.New()
	_, _ = io.CopyBuffer(h, &patternReader{seed: seed, left: size}, make([]byte, 32<<10))
	return hex.EncodeToString(h.Sum(nil))
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
