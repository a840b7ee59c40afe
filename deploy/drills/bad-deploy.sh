#!/usr/bin/env bash
# Drill: bad deploy, rolled back (docs/runbook.md#bad-deploy). Starts a new release beside the
# running one, and checks what the runbook says: its /readyz never answers 200 (so a load
# balancer that checks it sends it nothing), the running release keeps serving, and after
# the rollback (stopping the new one) the schema keeps every migration: migrations only
# go forward, a rollback never undoes one.
#
#   MESSENGER_URL       the running (previous) release
#   DATABASE_URL        the owner's connection, for psql (schema_migrations)
#   DRILL_NEW_URL       where the new release listens
#   DRILL_NEW_START     the command that starts the new release (returns at once)
#   DRILL_NEW_STOP      the command that stops it (the rollback)
#   DRILL_READY_WAIT    seconds the new release is given to become ready (default 20)
#   DRILL_PREVIOUS_RESTART  optional: the command that restarts the running release after the
#                       rollback, to show that it starts on the schema the new release left
source "$(dirname "$0")/lib.sh"
need MESSENGER_URL DATABASE_URL DRILL_NEW_URL DRILL_NEW_START DRILL_NEW_STOP
wait=${DRILL_READY_WAIT:-20}

schema() { psql "$DATABASE_URL" -At -F ' ' -c 'SELECT count(*), max(version) FROM schema_migrations'; }

users
must_send "before the deploy"
schema_before=$(schema)
say "schema_migrations before the deploy (rows, last version): $schema_before"

say "starting the new release: $DRILL_NEW_START"
bash -c "$DRILL_NEW_START"
stopped=""
at_exit '[ -n "$stopped" ] || bash -c "$DRILL_NEW_STOP"'
seen=""
for _ in $(seq $((wait * 2))); do
  r=$(readyz "$DRILL_NEW_URL")
  seen="$seen $r"
  [ "$r" = 200 ] && fail "the new release's /readyz answered 200: a load balancer would send it traffic"
  sleep 0.5
done
say "the new release's /readyz over ${wait}s: $(echo $seen | tr ' ' '\n' | sort | uniq -c | tr -s ' \n' ' ')($(curl -s -m 5 "$DRILL_NEW_URL/readyz" || echo no answer))"
must_send "during the deploy"
say "the running release serves meanwhile: seq $SEQ"

say "rolling back: $DRILL_NEW_STOP"
bash -c "$DRILL_NEW_STOP"
stopped=1
[ "$(readyz)" = 200 ] || fail "the running release is not ready after the rollback"
must_send "after the rollback"
history_seqs | tail -n1 | grep -qx "$SEQ" || fail "history does not end at seq $SEQ after the rollback"
if [ -n "${DRILL_PREVIOUS_RESTART:-}" ]; then
  say "restarting the previous release: $DRILL_PREVIOUS_RESTART"
  bash -c "$DRILL_PREVIOUS_RESTART"
  wait_ready 200 60 || fail "the previous release is not ready within 60 s of its restart on the schema the new release left"
  must_send "after the previous release's restart"
  say "the previous release starts on that schema and serves: seq $SEQ"
fi
schema_after=$(schema)
say "schema_migrations after the rollback (rows, last version): $schema_after"
read -r rows_before last_before <<<"$schema_before"
read -r rows_after last_after <<<"$schema_after"
[ "$rows_after" -ge "$rows_before" ] && [ "$last_after" -ge "$last_before" ] ||
  fail "the rollback removed migrations: $schema_before -> $schema_after"
[ "$schema_after" = "$schema_before" ] || say "the new release's migrations stay after the rollback (forward only): $schema_before -> $schema_after"
say "PASS"
