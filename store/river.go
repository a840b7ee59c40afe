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
// no organization's row-level security. The app role gets no DDL: River's reindexer is switched off in jobs,
// and migrations run as the owner.
//
// Jobs, though, are enqueued inside users' transactions (an upload, a deletion), where a bug
// or an injection must not change other people's jobs: delete the job that removes a
// deleted photo's bytes, stall a scan, or rewrite a job's arguments or attempts. So
// river_job has row-level security for the app role: outside a user's transaction (River's
// client and the workers set no app.user_id or app.org_id) every row, every command; inside
// one, inserting a new job, available or scheduled (a push waits a few seconds), and reading (River's insert answers the row; a job's
// arguments are ids, never trusted by the workers). A unique insert that meets its twin
// (the push job of a conversation and window) updates the existing row to itself (River's
// ON CONFLICT DO UPDATE SET kind = kind, to return it): app_unique lets a user's
// transaction do that to a unique job, and the trigger refuses any such update that
// changes anything. The policies are made again on every
// migration, after River's own.
const riverGrants = `
GRANT SELECT, INSERT, UPDATE, DELETE ON river_job, river_leader, river_queue, river_notification TO ` + AppRole + `;
GRANT SELECT ON river_migration TO ` + AppRole + `;
GRANT USAGE, SELECT ON SEQUENCE river_job_id_seq, river_notification_id_seq TO ` + AppRole + `;
ALTER TABLE river_job ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS app_jobs ON river_job;
CREATE POLICY app_jobs ON river_job TO ` + AppRole + `
    USING (coalesce(current_setting('app.user_id', true), '') = '' AND coalesce(current_setting('app.org_id', true), '') = '')
    WITH CHECK (coalesce(current_setting('app.user_id', true), '') = '' AND coalesce(current_setting('app.org_id', true), '') = '');
DROP POLICY IF EXISTS app_enqueue ON river_job;
CREATE POLICY app_enqueue ON river_job FOR INSERT TO ` + AppRole + `
    WITH CHECK (state IN ('available', 'scheduled') AND attempt = 0 AND attempted_at IS NULL AND finalized_at IS NULL);
DROP POLICY IF EXISTS app_read ON river_job;
CREATE POLICY app_read ON river_job FOR SELECT TO ` + AppRole + ` USING (true);
DROP POLICY IF EXISTS app_unique ON river_job;
CREATE POLICY app_unique ON river_job FOR UPDATE TO ` + AppRole + `
    USING (unique_key IS NOT NULL) WITH CHECK (unique_key IS NOT NULL);
CREATE OR REPLACE FUNCTION app_river_job_unchanged() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $f$
BEGIN
    IF coalesce(current_setting('app.user_id', true), '') <> '' OR coalesce(current_setting('app.org_id', true), '') <> '' THEN
        RAISE EXCEPTION 'a job is not changed inside a user''s transaction' USING ERRCODE = '42501';
    END IF;
    RETURN NEW;
END $f$;
DROP TRIGGER IF EXISTS app_river_job_unchanged ON river_job;
CREATE TRIGGER app_river_job_unchanged BEFORE UPDATE ON river_job
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION app_river_job_unchanged();
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
