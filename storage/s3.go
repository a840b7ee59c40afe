package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config configures an S3 store.
type S3Config struct {
	// Endpoint is host:port of the S3 API.
	Endpoint string
	// AccessKey and SecretKey are the credentials (a B2 application key).
	AccessKey, SecretKey string
	// Bucket holds the objects; it must exist and should be private.
	Bucket string
	// Region is the bucket's region; "" lets the client ask the server.
	Region string
	// Secure selects HTTPS.
	Secure bool
	// SpoolDir is where Put stages each object before sending it ("" means os.TempDir()).
	// S3 wants the Content-MD5 before the body (Backblaze B2 requires it), so the bytes are
	// read twice; staging them on disk keeps memory flat whatever the object's size.
	SpoolDir string
	// MaxObjectBytes is the largest object accepted (DefaultMaxObjectBytes when 0).
	MaxObjectBytes int64
}

// ParseS3URL reads s3://ACCESS:SECRET@host:port/bucket?region=&secure= (secure defaults to
// true; a secret containing '/' or '@' must be percent-encoded). Its errors never repeat
// the URL, which carries the secret.
func ParseS3URL(raw string) (S3Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return S3Config{}, errors.New("storage: MESSENGER_STORAGE_URL is not a valid URL (is a '/' or '@' in the secret percent-encoded?)")
	}
	if u.Scheme != "s3" {
		return S3Config{}, errors.New("storage: MESSENGER_STORAGE_URL must start with s3://")
	}
	cfg := S3Config{Endpoint: u.Host, Secure: true}
	if u.User != nil {
		cfg.AccessKey = u.User.Username()
		cfg.SecretKey, _ = u.User.Password()
	}
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return S3Config{}, errors.New("storage: MESSENGER_STORAGE_URL needs the access key and secret: s3://ACCESS:SECRET@host:port/bucket")
	}
	if u.Host == "" {
		return S3Config{}, errors.New("storage: MESSENGER_STORAGE_URL needs a host: s3://ACCESS:SECRET@host:port/bucket")
	}
	cfg.Bucket = strings.TrimPrefix(u.Path, "/")
	if cfg.Bucket == "" || strings.Contains(cfg.Bucket, "/") {
		return S3Config{}, errors.New("storage: MESSENGER_STORAGE_URL needs exactly one bucket name as its path: s3://ACCESS:SECRET@host:port/bucket")
	}
	for name, vals := range u.Query() {
		v := vals[len(vals)-1]
		switch name {
		case "region":
			cfg.Region = v
		case "secure":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return S3Config{}, fmt.Errorf("storage: MESSENGER_STORAGE_URL: secure=%q is not true or false", v)
			}
			cfg.Secure = b
		default: // a typo would otherwise be silently ignored
			return S3Config{}, fmt.Errorf("storage: MESSENGER_STORAGE_URL: unknown parameter %q (known: region, secure)", name)
		}
	}
	return cfg, nil
}

var (
	_ Store     = (*S3)(nil)
	_ Presigner = (*S3)(nil)
	_ Store     = (*Disk)(nil)
)

// S3 is a Store in an S3-compatible bucket (Backblaze B2 in production, versitygw in the
// tests), with the same keys as Disk.
type S3 struct {
	client *minio.Client
	cfg    S3Config
	max    int64
}

// NewS3 makes an S3 store; it does not contact the server (Ping does).
func NewS3(cfg S3Config) (*S3, error) {
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: cfg.Secure,
		Region: cfg.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("storage: S3 endpoint %q: %w", cfg.Endpoint, err)
	}
	return &S3{client: client, cfg: cfg, max: maxOrDefault(cfg.MaxObjectBytes)}, nil
}

// String names the store for logs, without credentials.
func (s *S3) String() string {
	scheme := "http"
	if s.cfg.Secure {
		scheme = "https"
	}
	return "s3 " + scheme + "://" + s.cfg.Endpoint + "/" + s.cfg.Bucket
}

// Close does nothing: the client holds only idle connections.
func (s *S3) Close() error { return nil }

// Ping checks that the bucket exists and the credentials may see it.
func (s *S3) Ping(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.cfg.Bucket)
	if err != nil {
		return fmt.Errorf("storage: %s: %w", s, err)
	}
	if !ok {
		return fmt.Errorf("storage: %s: bucket %q does not exist", s, s.cfg.Bucket)
	}
	return nil
}

// Put stages the object in SpoolDir while hashing it, then sends it in one PUT with its
// Content-MD5. A reader that fails never reaches the server, and one PUT (not multipart)
// means the object appears whole or not at all.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (Object, error) {
	if err := ValidKey(key); err != nil {
		return Object{}, err
	}
	spool, err := os.CreateTemp(s.cfg.SpoolDir, "storage-put-*")
	if err != nil {
		return Object{}, fmt.Errorf("storage: put %s: spool: %w", key, err)
	}
	defer func() {
		_ = spool.Close()
		_ = os.Remove(spool.Name())
	}()
	n, sum, err := copyObject(ctx, spool, r, size, s.max)
	if err != nil {
		return Object{}, fmt.Errorf("storage: put %s: %w", key, err)
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return Object{}, fmt.Errorf("storage: put %s: %w", key, err)
	}
	// minio-go reads an *os.File twice through ReadAt (MD5, then the body) instead of
	// buffering it, and can retry the request from the start.
	info, err := s.client.PutObject(ctx, s.cfg.Bucket, key, spool, n, minio.PutObjectOptions{
		ContentType:      contentType,
		SendContentMd5:   true,
		DisableMultipart: true,
		UserMetadata:     map[string]string{"sha256": sum},
	})
	if err != nil {
		return Object{}, fmt.Errorf("storage: put %s: %w", key, err)
	}
	mod := info.LastModified
	if mod.IsZero() {
		mod = time.Now()
	}
	return Object{Key: key, Size: n, SHA256: sum, ContentType: contentType, ModTime: mod}, nil
}

// Get opens the object; a *minio.Object fetches lazily and seeks by asking for a range,
// so serving a Range request reads only that range from S3.
func (s *S3) Get(ctx context.Context, key string) (io.ReadSeekCloser, Object, error) {
	if err := ValidKey(key); err != nil {
		return nil, Object{}, err
	}
	obj, err := s.client.GetObject(ctx, s.cfg.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, Object{}, s3Err("get", key, err)
	}
	info, err := obj.Stat()
	if err != nil {
		_ = obj.Close()
		return nil, Object{}, s3Err("get", key, err)
	}
	return obj, s3Object(key, info), nil
}

// Stat asks for the object's metadata only.
func (s *S3) Stat(ctx context.Context, key string) (Object, error) {
	if err := ValidKey(key); err != nil {
		return Object{}, err
	}
	info, err := s.client.StatObject(ctx, s.cfg.Bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return Object{}, s3Err("stat", key, err)
	}
	return s3Object(key, info), nil
}

// Delete removes the object; S3 answers a delete of a missing key with success already.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	err := s.client.RemoveObject(ctx, s.cfg.Bucket, key, minio.RemoveObjectOptions{})
	if err != nil && !errors.Is(s3Err("delete", key, err), ErrNotFound) {
		return s3Err("delete", key, err)
	}
	return nil
}

// PresignGet signs a GET for the object, valid for ttl (at most 7 days, S3's limit), whose
// response carries the Content-Disposition value disposition (upload.ContentDisposition
// makes it from a file name).
func (s *S3) PresignGet(ctx context.Context, key string, ttl time.Duration, disposition string) (*url.URL, error) {
	if err := ValidKey(key); err != nil {
		return nil, err
	}
	params := url.Values{"response-content-disposition": {disposition}}
	u, err := s.client.PresignedGetObject(ctx, s.cfg.Bucket, key, ttl, params)
	if err != nil {
		return nil, fmt.Errorf("storage: presign %s: %w", key, err)
	}
	return u, nil
}

func s3Object(key string, info minio.ObjectInfo) Object {
	o := Object{Key: key, Size: info.Size, ContentType: info.ContentType, ModTime: info.LastModified}
	for k, v := range info.UserMetadata {
		if strings.EqualFold(k, "sha256") || strings.EqualFold(k, "X-Amz-Meta-Sha256") {
			o.SHA256 = v
		}
	}
	return o
}

func s3Err(op, key string, err error) error {
	if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
		return fmt.Errorf("storage: %s %s: %w", op, key, ErrNotFound)
	}
	return fmt.Errorf("storage: %s %s: %w", op, key, err)
}
