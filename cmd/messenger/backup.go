package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/dreamseed/messenger/backup"
	"github.com/dreamseed/messenger/storage"
)

// backupConfig is what the backup, restore and check commands read besides the database
// and storage.
type backupConfig struct {
	Keep       int           // complete backups kept in the folder
	CheckGrace time.Duration // how young an object without a row may be on a running system
}

// loadBackup reads the backup commands' own variables; the server reads them too, so that a
// mistake in the shared environment shows at start-up, not at the night's backup.
func (c *config) loadBackup(env func(key, def string) string) []error {
	var errs []error
	keep, err := boundedInt(env("MESSENGER_BACKUP_KEEP", strconv.Itoa(backup.DefaultKeep)), 1, 1000)
	if err != nil {
		errs = append(errs, fmt.Errorf("MESSENGER_BACKUP_KEEP: %w", err))
	}
	c.Backup.Keep = int(keep)
	if c.Backup.CheckGrace, err = boundedDuration(env("MESSENGER_BACKUP_CHECK_GRACE", backup.DefaultCheckGrace.String()), time.Second, 24*time.Hour); err != nil {
		errs = append(errs, fmt.Errorf("MESSENGER_BACKUP_CHECK_GRACE: %w", err))
	}
	return errs
}

// trimmedEnv answers a variable without surrounding spaces, or def when it is empty.
func trimmedEnv(getenv func(string) string) func(key, def string) string {
	return func(key, def string) string {
		if v := strings.TrimSpace(getenv(key)); v != "" {
			return v
		}
		return def
	}
}

// backupCommand runs `backup DIR`, `restore DIR/<stamp>` or `check [DIR/<stamp>]`. They
// read only the database (DATABASE_URL, the owner), the storage (MESSENGER_STORAGE_URL or
// MESSENGER_DATA_DIR/files) and their own variables, so that they run from the server's
// environment or from a smaller one.
func backupCommand(ctx context.Context, cmd string, args []string, getenv func(string) string, stdout io.Writer) error {
	env := trimmedEnv(getenv)
	c := config{DatabaseURL: env("DATABASE_URL", ""), AppDBPassword: env("MESSENGER_APP_DB_PASSWORD", ""),
		StorageURL: env("MESSENGER_STORAGE_URL", ""), DataDir: env("MESSENGER_DATA_DIR", "data")}
	errs := c.loadBackup(env)
	if c.DatabaseURL == "" {
		errs = append(errs, fmt.Errorf("DATABASE_URL is required by %s: the owner's connection (a superuser or a role with BYPASSRLS)", cmd))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	c.DataDir, _ = filepath.Abs(c.DataDir)
	st, err := storage.Open(c.StorageURL, c.DataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	cfg := backup.Config{DatabaseURL: c.DatabaseURL, Storage: st, Keep: c.Backup.Keep, CheckGrace: c.Backup.CheckGrace,
		AppPassword: c.AppDBPassword, Version: buildVersion()}
	switch {
	case cmd == "backup" && len(args) == 1:
		return runBackup(ctx, cfg, args[0], stdout)
	case cmd == "restore" && len(args) == 1:
		report, err := backup.Restore(ctx, cfg, args[0])
		return reportCheck(stdout, report, err, "restored "+args[0])
	case cmd == "check" && len(args) <= 1:
		var m *backup.Manifest
		if len(args) == 1 {
			if m, err = backup.ReadManifest(args[0]); err != nil {
				return err
			}
		}
		report, err := backup.Check(ctx, cfg, m)
		return reportCheck(stdout, report, err, "check")
	}
	return fmt.Errorf("usage: messenger backup DIR | messenger restore DIR/<stamp> | messenger check [DIR/<stamp>]")
}

func runBackup(ctx context.Context, cfg backup.Config, dir string, stdout io.Writer) error {
	path, m, err := backup.Backup(ctx, cfg, dir)
	if m != nil {
		fmt.Fprintf(stdout, "backup %s: schema %d, %d users, %d conversations, %d messages, %d files, %d objects (%d bytes)\n",
			path, m.SchemaVersion, m.Counts.Users, m.Counts.Conversations, m.Counts.Messages, m.Counts.Files, m.Objects.Count, m.Objects.Bytes)
		for _, key := range m.MissingObjects {
			fmt.Fprintf(stdout, "problem: object %s is named by a file row but missing from storage\n", key)
		}
	}
	return err
}

// reportCheck prints each problem on a line of its own, then the counts, and answers an
// error when there was any problem.
func reportCheck(stdout io.Writer, r backup.Report, err error, what string) error {
	for _, p := range r.Problems {
		fmt.Fprintln(stdout, "problem:", p)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d users, %d conversations, %d messages, %d files, %d objects (%d bytes), %d problems\n",
		what, r.Counts.Users, r.Counts.Conversations, r.Counts.Messages, r.Counts.Files, r.Objects.Count, r.Objects.Bytes, len(r.Problems))
	if !r.OK() {
		return fmt.Errorf("%s found %d problems", what, len(r.Problems))
	}
	return nil
}

// buildVersion names the binary for a manifest: its module version and VCS revision.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			v += " " + s.Value
		}
	}
	return v
}
