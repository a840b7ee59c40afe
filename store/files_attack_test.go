package store_test

import (
	"strings"
	"testing"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/store/storetest"
)

// TestRiverJobsWall: River's jobs are enqueued inside users' transactions, so a user's SQL
// (a bug, an injection) reaches river_job. It may enqueue a job, but not delete someone
// else's (the file_delete job that removes a deleted photo's bytes), stall or rewrite it
// (its state, schedule, arguments or attempts), nor insert one as if already worked.
func TestRiverJobsWall(t *testing.T) {
	_, d := storetest.NewDB(t)
	w := newWall(t, d)
	member := messenger.User{ID: 1, OrgID: 1}

	// Someone else's pending delete job, as River's client enqueued it.
	var job int64
	if err := w.owner.QueryRow(`INSERT INTO river_job (kind, args, max_attempts, queue, state)
	                            VALUES ('file_delete', '{"file_id": "6f1c1a4e-8f7e-4d7c-9c53-0d2a7f0f9d11"}', 25, 'default', 'available')
	                            RETURNING id`).Scan(&job); err != nil {
		t.Fatal(err)
	}
	w.refused("a user deleting someone else's job", member, `DELETE FROM river_job WHERE id = $1`, job)
	w.refused("a user discarding someone else's job", member,
		`UPDATE river_job SET state = 'discarded', finalized_at = now() WHERE id = $1`, job)
	w.refused("a user giving someone else's job one attempt", member, `UPDATE river_job SET max_attempts = 1 WHERE id = $1`, job)
	w.refused("a user rewriting someone else's job's arguments", member,
		`UPDATE river_job SET args = '{"file_id": "00000000-0000-0000-0000-000000000000"}' WHERE id = $1`, job)
	w.refused("a user postponing someone else's job", member,
		`UPDATE river_job SET scheduled_at = now() + interval '100 years' WHERE id = $1`, job)
	w.refused("a user inserting a finished job", member,
		`INSERT INTO river_job (kind, args, max_attempts, queue, state, finalized_at) VALUES ('file_scan', '{}', 1, 'default', 'completed', now())`)
	if v := w.value(`SELECT state || ' ' || max_attempts || ' ' || (args->>'file_id') || ' ' || (scheduled_at < now() + interval '1 day') FROM river_job WHERE id = $1`, job); v != "available 25 6f1c1a4e-8f7e-4d7c-9c53-0d2a7f0f9d11 true" {
		t.Errorf("the job is now %q", v)
	}
	// Enqueueing, as an upload or a deletion does, still works.
	if _, err := w.try(member, `INSERT INTO river_job (kind, args, max_attempts, queue, state) VALUES ('file_scan', '{}', 25, 'default', 'available') RETURNING id`); err != nil {
		t.Errorf("a user enqueueing a job: %v", err)
	}
	// A message's push job waits a few seconds: scheduled, inserted in the send's transaction.
	if _, err := w.try(member, `INSERT INTO river_job (kind, args, max_attempts, queue, state, scheduled_at) VALUES ('push_message', '{}', 3, 'default', 'scheduled', now() + interval '5 seconds') RETURNING id`); err != nil {
		t.Errorf("a user enqueueing a scheduled job: %v", err)
	}
	// A conversation's push job is unique by conversation and window: the second message's
	// insert meets the first's job and updates it to itself (River's unique insert), which a
	// user's transaction may do to a unique job, and nothing else.
	var unique int64
	if err := w.owner.QueryRow(`INSERT INTO river_job (kind, args, max_attempts, queue, state, scheduled_at, unique_key, unique_states)
	                            VALUES ('push_message', '{"conversation_id": 7}', 3, 'default', 'scheduled', now() + interval '5 seconds', '\x0102'::bytea, B'11110101')
	                            RETURNING id`).Scan(&unique); err != nil {
		t.Fatal(err)
	}
	twin := `INSERT INTO river_job (kind, args, max_attempts, queue, state, scheduled_at, unique_key, unique_states)
	         VALUES ('push_message', '{"conversation_id": 7}', 3, 'default', 'scheduled', now() + interval '5 seconds', '\x0102'::bytea, B'11110101')
	         ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND unique_states IS NOT NULL AND river_job_state_in_bitmask(unique_states, state)
	         DO UPDATE SET kind = river_job.kind`
	if n, err := w.try(member, twin); err != nil || n != 1 {
		t.Errorf("a user's unique insert meeting its twin: %d rows, %v", n, err)
	}
	w.refused("a user rewriting a unique job's arguments", member, `UPDATE river_job SET args = '{"conversation_id": 8}' WHERE id = $1`, unique)
	w.refused("a user postponing a unique job", member, `UPDATE river_job SET scheduled_at = now() + interval '100 years' WHERE id = $1`, unique)
	w.refused("a user discarding a unique job", member, `UPDATE river_job SET state = 'discarded', finalized_at = now() WHERE id = $1`, unique)
	w.refused("a user deleting a unique job", member, `DELETE FROM river_job WHERE id = $1`, unique)
	w.refused("a user's unique insert rewriting its twin", member, strings.Replace(twin, "kind = river_job.kind", "args = '{}'", 1))
	if v := w.value(`SELECT count(*) || ' ' || min(args->>'conversation_id') || ' ' || min(state::text) FROM river_job WHERE unique_key = '\x0102'::bytea`); v != "1 7 scheduled" {
		t.Errorf("the unique job is now %q", v)
	}
	w.refused("a user counting everyone's push subscriptions", member, `SELECT app_push_subscription_count()`)
	w.refused("a user reading who was pushed what", member, `SELECT * FROM app_push_marks(7)`)
	w.refused("a user marking pushes", member, `SELECT app_push_marked(7, '{1}', '{1}')`)
	w.refused("a user claiming pushes", member, `SELECT app_push_claim(7, '{1}', '{1}')`)
	w.refused("a user reading push_marks", member, `SELECT * FROM push_marks`)
	w.refused("a user inserting a running job", member,
		`INSERT INTO river_job (kind, args, max_attempts, queue, state, attempt, attempted_at) VALUES ('push_message', '{}', 3, 'default', 'running', 1, now())`)
}
