package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"

	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivermigrate"
)

// riverGrants gives the application role what River's client needs at the schema of
// River's last migration: it inserts, fetches, updates and deletes (the cleaner) jobs, elects
// a leader, records queues and writes its notification outbox; it only reads
// river_migration (the client checks the schema's version). River's tables hold job
// arguments, never user data, and the client works across every organization, so they carry
// no row-level security. The app role gets no DDL: River's reindexer is switched off in jobs,
// and migrations run as the owner.
const riverGrants = `
GRANT SELECT, INSERT, UPDATE, DELETE ON river_job, river_leader, river_queue, river_notification TO ` + AppRole + `;
GRANT SELECT ON river_migration TO ` + AppRole + `;
GRANT USAGE, SELECT ON SEQUENCE river_job_id_seq, river_notification_id_seq TO ` + AppRole + `;
`

// migrateRiver applies River's own migrations after the project's, while conn holds the
// migration lock, then grants the app role its share. River runs each migration in a
// transaction of its own on db's pool (one transaction for all fails: a migration adds an
// enum value that the next one uses), which the lock still serializes across processes.
func migrateRiver(ctx context.Context, db *sql.DB, conn *sql.Conn, logger *slog.Logger) error {
	migrator, err := rivermigrate.New(riverdatabasesql.New(db), &rivermigrate.Config{Logger: logger})
	if err != nil {
		return fmt.Errorf("migrate river: %w", err)
	}
	// River's migrator logs each migration it applies.
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate river: %w", err)
	}
	if _, err := conn.ExecContext(ctx, riverGrants); err != nil {
		return fmt.Errorf("migrate river: grants: %w", err)
	}
	return nil
}
