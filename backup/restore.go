package backup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dreamseed/messenger/storage"
	"github.com/dreamseed/messenger/store"
)

// ErrNotEmpty is wrapped when a restore's target database or storage holds something.
var ErrNotEmpty = errors.New("restore: the target is not empty")

// ErrChecksum is wrapped when a backup's files do not match its manifest.
var ErrChecksum = errors.New("restore: the backup does not match its manifest")

// ensureRoles makes the roles the dump's grants and policies name, which are the cluster's
// and not in a dump, as the migrations do: on a new server they do not exist yet.
const ensureRoles = `
DO $$
BEGIN
    CREATE ROLE messenger_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
DO $$
BEGIN
    CREATE ROLE messenger_gate NOLOGIN NOSUPERUSER NOBYPASSRLS;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
DO $$
BEGIN
    CREATE ROLE messenger_archiver NOLOGIN NOSUPERUSER NOBYPASSRLS;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT messenger_gate TO %I', current_user);
        EXECUTE format('GRANT messenger_archiver TO %I', current_user);
    END IF;
END $$;`

// Restore puts the backup in dir into the empty database at cfg.DatabaseURL and the empty
// cfg.Storage, then runs the consistency check against the manifest. Nothing is written
// before every file of the backup matched its manifest and both targets were found empty.
// The database is restored in one transaction: a failure leaves it empty.
func Restore(ctx context.Context, cfg Config, dir string) (Report, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return Report{}, err
	}
	latest, err := store.LatestMigration()
	if err != nil {
		return Report{}, err
	}
	if m.SchemaVersion > latest {
		return Report{}, fmt.Errorf("restore: the backup's schema is at migration %d (%s), this messenger knows %d: restore with the version that made it (%s); nothing was restored",
			m.SchemaVersion, m.SchemaMigration, latest, m.MessengerVersion)
	}
	problems, err := Verify(dir, m)
	if err != nil {
		return Report{}, err
	}
	if len(problems) > 0 {
		return Report{Problems: problems}, fmt.Errorf("%w (%d problems); nothing was restored", ErrChecksum, len(problems))
	}
	restore, err := newPGTool("pg_restore", cfg.DatabaseURL)
	if err != nil {
		return Report{}, err
	}
	db, err := openOwner(ctx, cfg.DatabaseURL)
	if err != nil {
		return Report{}, err
	}
	defer db.Close()
	if err := checkEmptyDatabase(ctx, db, restore); err != nil {
		return Report{}, err
	}
	if err := checkEmptyStorage(ctx, cfg); err != nil {
		return Report{}, err
	}
	if _, err := db.ExecContext(ctx, ensureRoles); err != nil {
		return Report{}, fmt.Errorf("restore: roles: %w", err)
	}
	if err := restore.run(ctx, "--exit-on-error", "--single-transaction", filepath.Join(dir, DumpName)); err != nil {
		return Report{}, fmt.Errorf("restore: %w", err)
	}
	if cfg.AppPassword != "" {
		if err := store.SetAppPassword(ctx, cfg.DatabaseURL, cfg.AppPassword); err != nil {
			return Report{}, err
		}
	}
	if err := putObjects(ctx, cfg.Storage, db, dir, m); err != nil {
		return Report{}, err
	}
	return Check(ctx, cfg, m)
}

// checkEmptyDatabase refuses a database holding any table, view, sequence or function of
// its own, and a server newer than pg_restore.
func checkEmptyDatabase(ctx context.Context, db *sql.DB, restore *pgTool) error {
	var name string
	var relations, functions, versionNum int
	err := db.QueryRowContext(ctx, `SELECT current_database(),
		(SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
		    AND n.nspname NOT LIKE 'pg\_temp%'),
		(SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')),
		current_setting('server_version_num')::int`).Scan(&name, &relations, &functions, &versionNum)
	if err != nil {
		return fmt.Errorf("restore: database: %w", err)
	}
	if relations > 0 || functions > 0 {
		return fmt.Errorf("%w: database %q holds %d tables, indexes or sequences and %d functions; restore only into a new, empty database (CREATE DATABASE) — nothing was changed",
			ErrNotEmpty, name, relations, functions)
	}
	return restore.checkNewEnough(ctx, versionNum)
}

// checkEmptyStorage refuses a file storage holding any object.
func checkEmptyStorage(ctx context.Context, cfg Config) error {
	lister, err := cfg.lister()
	if err != nil {
		return err
	}
	errFound := errors.New("found")
	var first string
	err = lister.List(ctx, func(o storage.Object) error {
		first = o.Key
		return errFound
	})
	if errors.Is(err, errFound) {
		return fmt.Errorf("%w: the file storage %v holds objects (%s, …); restore only into empty storage — nothing was changed", ErrNotEmpty, cfg.Storage, first)
	}
	return err
}

// putObjects stores the backup's objects under their keys, with the content type the
// restored file rows give them (thumbnails are WebP).
func putObjects(ctx context.Context, st storage.Store, db *sql.DB, dir string, m *Manifest) error {
	types, err := contentTypes(ctx, db)
	if err != nil {
		return err
	}
	for _, f := range m.Files {
		key, ok := objectKey(f.Path)
		if !ok {
			continue
		}
		ct := types[key]
		if ct == "" {
			ct = "image/webp"
		}
		if err := putObject(ctx, st, filepath.Join(dir, filepath.FromSlash(f.Path)), key, f, ct); err != nil {
			return err
		}
	}
	return nil
}

func putObject(ctx context.Context, st storage.Store, name, key string, f File, contentType string) error {
	in, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer in.Close()
	obj, err := st.Put(ctx, key, in, f.Size, contentType)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if !strings.EqualFold(obj.SHA256, f.SHA256) {
		return fmt.Errorf("%w: %s changed while it was restored (sha256 %s, the manifest says %s)", ErrChecksum, f.Path, obj.SHA256, f.SHA256)
	}
	return nil
}

// contentTypes answers every original's content type by key, from the restored rows.
func contentTypes(ctx context.Context, db *sql.DB) (map[string]string, error) {
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SET LOCAL row_security = off`); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT storage_key, content_type FROM files`)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	defer rows.Close()
	types := map[string]string{}
	for rows.Next() {
		var key, ct string
		if err := rows.Scan(&key, &ct); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		types[key] = ct
	}
	return types, rows.Err()
}
