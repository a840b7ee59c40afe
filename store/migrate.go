package store

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/lib/pq"

	migrations "github.com/dreamseed/messenger/sql"
)

// AppRole is the database role the server connects as.
const AppRole = "messenger_app"

// migrateLockKey is the advisory lock that serializes migrations of several processes
// starting at once.
const migrateLockKey = 7405231

// Migrate applies every migration not yet applied to the database at ownerDSN, each in its
// own transaction, then River's job-queue migrations (the jobs package's tables). ownerDSN must name a role that may create tables and roles.
func Migrate(ctx context.Context, ownerDSN string, logger *slog.Logger) error {
	db, err := sql.Open("postgres", ownerDSN)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: connect: %w", err)
	}
	defer conn.Close()

	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrateLockKey); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrateLockKey)

	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}

	files, err := migrationFiles()
	if err != nil {
		return err
	}
	for _, f := range files {
		var applied bool
		if err := conn.QueryRowContext(ctx,
			`SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, f.version).Scan(&applied); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if applied {
			continue
		}
		body, err := fs.ReadFile(migrations.FS, f.name)
		if err != nil {
			return err
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", f.name, err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s: %w", f.name, err)
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, f.version, f.name); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s: %w", f.name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate %s: %w", f.name, err)
		}
		logger.Info("migration applied", slog.String("migration", f.name))
	}
	return migrateRiver(ctx, db, conn, logger)
}

// LatestMigration answers the version of the newest migration this program carries: a
// database past it was made by a newer program.
func LatestMigration() (int, error) {
	files, err := migrationFiles()
	if err != nil || len(files) == 0 {
		return 0, err
	}
	return files[len(files)-1].version, nil
}

type migrationFile struct {
	version int
	name    string
}

func migrationFiles() ([]migrationFile, error) {
	entries, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		return nil, err
	}
	var files []migrationFile
	for _, name := range entries {
		prefix, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %q: name must start with a number and '_'", name)
		}
		files = append(files, migrationFile{version: v, name: name})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].version < files[j].version })
	return files, nil
}

// SetAppPassword gives the application role a password, through the owner's connection, for
// servers that ask for one.
func SetAppPassword(ctx context.Context, ownerDSN, password string) error {
	db, err := sql.Open("postgres", ownerDSN)
	if err != nil {
		return err
	}
	defer db.Close()
	// ALTER ROLE takes no bind parameters; QuoteLiteral makes the password a safe literal.
	if _, err := db.ExecContext(ctx, `ALTER ROLE `+AppRole+` PASSWORD `+pq.QuoteLiteral(password)); err != nil {
		return fmt.Errorf("set %s password: %w", AppRole, err)
	}
	return nil
}

// AppDSN derives the application's connection string from the owner's: same server and
// database, the messenger_app role, and password if not empty.
func AppDSN(ownerDSN, password string) (string, error) {
	u, err := url.Parse(ownerDSN)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("DATABASE_URL must be a postgres:// URL")
	}
	if password != "" {
		u.User = url.UserPassword(AppRole, password)
	} else {
		u.User = url.User(AppRole)
	}
	return u.String(), nil
}
