package backup_test

import (
	"context"
	"strings"
	"testing"

	"github.com/dreamseed/messenger/backup"
	"github.com/dreamseed/messenger/storage"
	"github.com/dreamseed/messenger/storage/s3test"
	"github.com/dreamseed/messenger/store/storetest"
)

// TestBackupS3: a backup restores into an S3 bucket (versitygw), the copy passes the check
// and backs up again from the bucket into the same counts; an object the bucket holds
// beyond the rows fails the check.
func TestBackupS3(t *testing.T) {
	ctx := context.Background()
	s3 := s3test.Start(t)
	src := newSource(t)
	dir, m, err := backup.Backup(ctx, backup.Config{DatabaseURL: src.ownerDSN, Storage: src.disk}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	_, bucketURL := s3.NewBucket(t)
	bucket, err := storage.Open(bucketURL, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg := backup.Config{DatabaseURL: storetest.NewEmptyDatabase(t), Storage: bucket}
	report, err := backup.Restore(ctx, cfg, dir)
	if err != nil || !report.OK() || report.Objects != m.Objects || report.Counts != m.Counts {
		t.Fatalf("restore into S3: %v %q, counts %+v objects %+v, want %+v %+v", err, report.Problems, report.Counts, report.Objects, m.Counts, m.Objects)
	}

	again, m2, err := backup.Backup(ctx, cfg, t.TempDir())
	if err != nil || m2.Objects != m.Objects || m2.Counts != m.Counts {
		t.Fatalf("backup from S3: %v, counts %+v objects %+v, want %+v %+v", err, m2.Counts, m2.Objects, m.Counts, m.Objects)
	}
	r := restore(t, again)
	if !r.report.OK() || r.report.Objects != m.Objects {
		t.Fatalf("restore of the S3 backup: %q %+v", r.report.Problems, r.report.Objects)
	}

	key := storage.NewKey()
	if _, err := bucket.Put(ctx, key, strings.NewReader("stray"), 5, "text/plain"); err != nil {
		t.Fatal(err)
	}
	report, err = backup.Check(ctx, cfg, m)
	if err != nil || len(report.Problems) != 3 || report.Problems[0] != "object "+key+": no file row names it" {
		t.Fatalf("check with a stray object in the bucket: %v %q", err, report.Problems)
	}
}
