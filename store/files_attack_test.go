package store_test

import (
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
	w.refused("a user counting everyone's push subscriptions", member, `SELECT app_push_subscription_count()`)
	w.refused("a user inserting a running job", member,
		`INSERT INTO river_job (kind, args, max_attempts, queue, state, attempt, attempted_at) VALUES ('push_message', '{}', 3, 'default', 'running', 1, now())`)
}
