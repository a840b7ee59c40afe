// Package s3test gives tests a real S3-compatible server: a private versitygw over a fresh
// directory, with one empty bucket.
package s3test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/dreamseed/messenger/internal/daemon"
	"github.com/dreamseed/messenger/internal/freeport"
	"github.com/dreamseed/messenger/internal/gobin"
)

// Server is a running versitygw.
type Server struct {
	// Endpoint is its host:port (plain HTTP).
	Endpoint string
	// AccessKey and SecretKey are the root user's credentials.
	AccessKey, SecretKey string
	// Bucket is the bucket made for the test.
	Bucket string
	// URL is the server and bucket as MESSENGER_STORAGE_URL spells it.
	URL string
	// Client is an S3 client for looking behind the store's back.
	Client *minio.Client

	buckets atomic.Int64
}

// Binary finds versitygw on PATH or in $(go env GOPATH)/bin, where
// `go install github.com/versity/versitygw/cmd/versitygw@v1.8.0` puts it.
func Binary() (string, error) {
	return gobin.Find("versitygw", "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0")
}

// Start runs versitygw on a free port over a fresh directory, makes a bucket and stops the
// server when t ends. Without versitygw it skips t, except under CI=true where a missing
// server must not pass as green.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("s3test: %v", err)
		}
		t.Skipf("s3test: %v", err)
	}
	dir := t.TempDir()
	var lastErr error
	// A free port found now may be taken before versitygw binds it; try again then.
	for range 5 {
		s, err := start(t, bin, dir)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("s3test: cannot start versitygw: %v", lastErr)
	return nil
}

func start(t testing.TB, bin, dir string) (*Server, error) {
	port, err := freeport.Get()
	if err != nil {
		return nil, err
	}
	s := &Server{
		Endpoint:  fmt.Sprintf("127.0.0.1:%d", port),
		AccessKey: "testaccess",
		SecretKey: "test/secret+key", // '/' and '+' as B2 secrets have, to exercise the URL's escaping
		Bucket:    "messenger-files",
	}
	s.URL = s.urlFor(s.Bucket)

	cmd := exec.Command(bin, "--port", s.Endpoint, "--health", "/health", "--quiet", "posix", dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	p, err := daemon.Start(cmd, 10*time.Millisecond, 15*time.Second, func() bool {
		resp, err := http.Get("http://" + s.Endpoint + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if err != nil {
		return nil, err
	}
	t.Cleanup(p.Kill)

	s.Client, err = minio.New(s.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, "")})
	if err != nil {
		t.Fatalf("s3test: client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Client.MakeBucket(ctx, s.Bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("s3test: make bucket: %v", err)
	}
	return s, nil
}

// NewBucket makes another empty bucket, for a test that must see only its own objects, and
// returns its name and MESSENGER_STORAGE_URL.
func (s *Server) NewBucket(t testing.TB) (bucket, storageURL string) {
	t.Helper()
	bucket = fmt.Sprintf("test-%d", s.buckets.Add(1))
	if err := s.Client.MakeBucket(context.Background(), bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("s3test: make bucket: %v", err)
	}
	return bucket, s.urlFor(bucket)
}

func (s *Server) urlFor(bucket string) string {
	return (&url.URL{Scheme: "s3", User: url.UserPassword(s.AccessKey, s.SecretKey), Host: s.Endpoint,
		Path: "/" + bucket, RawQuery: "secure=false"}).String()
}
