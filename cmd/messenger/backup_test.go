package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

// TestBackupCommandConfiguration: the backup commands refuse to start without the owner's
// DATABASE_URL, with a bad MESSENGER_BACKUP_KEEP, or with the wrong arguments, saying which.
func TestBackupCommandConfiguration(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"backup", "/tmp/b"}, nil, "DATABASE_URL is required by backup"},
		{[]string{"check"}, map[string]string{"DATABASE_URL": "postgres://db/m", "MESSENGER_BACKUP_KEEP": "0"}, "MESSENGER_BACKUP_KEEP"},
		{[]string{"check"}, map[string]string{"DATABASE_URL": "postgres://db/m", "MESSENGER_BACKUP_CHECK_GRACE": "forever"}, "MESSENGER_BACKUP_CHECK_GRACE"},
		{[]string{"restore"}, map[string]string{"DATABASE_URL": "postgres://db/m", "MESSENGER_DATA_DIR": t.TempDir()}, "usage: messenger backup DIR"},
	} {
		err := run(context.Background(), c.args, func(k string) string { return c.env[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v with %v: %v, want an error naming %q", c.args, c.env, err, c.want)
		}
	}
}
