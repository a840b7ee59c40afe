package storage_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dreamseed/messenger/storage"
	"github.com/dreamseed/messenger/storage/s3test"
	"github.com/dreamseed/messenger/upload"
	"github.com/google/go-cmp/cmp"
)

func TestParseS3URL(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want storage.S3Config
	}{
		{"s3://AK:SK@s3.us-west-004.backblazeb2.com/school-files?region=us-west-004",
			storage.S3Config{Endpoint: "s3.us-west-004.backblazeb2.com", AccessKey: "AK", SecretKey: "SK", Bucket: "school-files", Region: "us-west-004", Secure: true}},
		{"s3://AK:a%2Fb%2Bc%40d@127.0.0.1:7070/files?secure=false",
			storage.S3Config{Endpoint: "127.0.0.1:7070", AccessKey: "AK", SecretKey: "a/b+c@d", Bucket: "files"}},
	} {
		got, err := storage.ParseS3URL(tc.raw)
		if err != nil {
			t.Errorf("ParseS3URL(%q): %v", tc.raw, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseS3URL(%q) (-want +got):\n%s", tc.raw, diff)
		}
	}
}

func TestOpenRefusesBadURLsWithoutShowingTheSecret(t *testing.T) {
	for _, tc := range []struct{ raw, says string }{
		{"http://AK:hunter2@host/bucket", "s3://"},
		{"file:///data", "s3://"},
		{"s3://host/bucket", "access key"},
		{"s3://AK:hunter2@/bucket", "host"},
		{"s3://AK:hunter2@host", "bucket"},
		{"s3://AK:hunter2@host/bucket/extra", "bucket"},
		{"s3://AK:hunter2@host/bucket?secure=maybe", "secure"},
		{"s3://AK:hunter2@host/bucket?regoin=x", "regoin"},
		{"s3://AK:hunter2/x@host:7070/bucket", "percent-encoded"},
	} {
		s, err := storage.Open(tc.raw, t.TempDir())
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", tc.raw)
			continue
		}
		if !strings.Contains(err.Error(), tc.says) {
			t.Errorf("Open(%q) = %q, want it to mention %q", tc.raw, err, tc.says)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q) error shows the secret: %q", tc.raw, err)
		}
	}
}

func newS3(t *testing.T, srv *s3test.Server, storageURL string) *storage.S3 {
	t.Helper()
	s, err := storage.OpenConfig(storage.Config{URL: storageURL, SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s3, ok := s.(*storage.S3)
	if !ok {
		t.Fatalf("Open(s3://…) = %T, want *storage.S3", s)
	}
	return s3
}

func TestS3(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	s := newS3(t, srv, srv.URL)
	if strings.Contains(s.String(), srv.SecretKey) || strings.Contains(s.String(), srv.AccessKey) {
		t.Errorf("String() = %q shows credentials", s)
	}

	t.Run("ping refuses a missing bucket and wrong credentials", func(t *testing.T) {
		missing := newS3(t, srv, strings.Replace(srv.URL, "/"+srv.Bucket, "/no-such-bucket", 1))
		if err := missing.Ping(ctx); err == nil || !strings.Contains(err.Error(), "no-such-bucket") {
			t.Errorf("Ping(missing bucket) = %v", err)
		}
		u, _ := url.Parse(srv.URL)
		u.User = url.UserPassword(srv.AccessKey, "wrong")
		wrong := newS3(t, srv, u.String())
		if err := wrong.Ping(ctx); err == nil {
			t.Error("Ping with a wrong secret succeeded")
		}
	})

	t.Run("stat returns the sha256 and type kept with the object", func(t *testing.T) {
		key := storage.NewKey()
		put, err := s.Put(ctx, key, strings.NewReader("%PDF-1.7 …"), -1, "application/pdf")
		if err != nil {
			t.Fatal(err)
		}
		st, err := s.Stat(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if st.SHA256 != put.SHA256 || st.ContentType != "application/pdf" || st.Size != put.Size {
			t.Errorf("Stat = %+v, want sha256 %s, application/pdf, size %d", st, put.SHA256, put.Size)
		}
	})

	t.Run("a presigned URL downloads the object as an attachment", func(t *testing.T) {
		key := storage.NewKey()
		mustPut(t, s, key, []byte("가정통신문 내용"))
		name := "가정통신문 3월.pdf"
		disposition := upload.ContentDisposition(name)
		u, err := s.PresignGet(ctx, key, 5*time.Minute, disposition)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(u.String())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || string(body) != "가정통신문 내용" {
			t.Fatalf("GET presigned: %d %q", resp.StatusCode, body)
		}
		if got := resp.Header.Get("Content-Disposition"); got != disposition {
			t.Errorf("Content-Disposition = %q, want %q", got, disposition)
		}
		// The bucket itself answers nobody without a signature.
		resp, err = http.Get("http://" + srv.Endpoint + "/" + srv.Bucket + "/" + key)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("an unsigned GET read the object")
		}
	})

	t.Run("puts carry Content-MD5, as Backblaze B2 requires", func(t *testing.T) {
		// A proxy in front of the server records what the store sends.
		var mu sync.Mutex
		var md5s []string
		target, _ := url.Parse("http://" + srv.Endpoint)
		proxy := httputil.NewSingleHostReverseProxy(target)
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut {
				mu.Lock()
				md5s = append(md5s, r.Header.Get("Content-MD5"))
				mu.Unlock()
			}
			proxy.ServeHTTP(w, r)
		}))
		defer ts.Close()
		via := newS3(t, srv, strings.Replace(srv.URL, srv.Endpoint, strings.TrimPrefix(ts.URL, "http://"), 1))
		data := bytes.Repeat([]byte("x"), 300_000)
		if _, err := via.Put(ctx, storage.NewKey(), bytes.NewReader(data), -1, ""); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(md5s) != 1 || md5s[0] == "" {
			t.Fatalf("PUT requests carried Content-MD5 %q, want one PUT with it", md5s)
		}
	})
}
