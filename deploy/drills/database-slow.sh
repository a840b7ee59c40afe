#!/usr/bin/env bash
# Drill: database slow or timing out (docs/runbook.md#database-slow). Pauses PostgreSQL
# (SIGSTOP to the postmaster and every backend) for DRILL_PAUSE seconds and checks what the
# runbook says: /readyz stops answering 200; a send made meanwhile fails fast, within
# MESSENGER_DB_TIMEOUT and a second, with 503, the JSON code "unavailable" and a
# Retry-After; once PostgreSQL runs again /readyz is 200, and the client's retry of that
# send (the same client_msg_id) is stored exactly once.
#
#   MESSENGER_URL       the messenger process
#   DRILL_PG_PID        the postmaster's pid (the first line of $PGDATA/postmaster.pid);
#                       the drill must run on its host, as its user or root
#   DRILL_DB_TIMEOUT    the messenger's MESSENGER_DB_TIMEOUT, in whole seconds (default 5)
#   DRILL_PAUSE         seconds PostgreSQL stays paused (default 10; more than DRILL_DB_TIMEOUT)
#   DATABASE_URL        optional: the database, read with psql to count the retried send's rows
#   METRICS_URL         optional: its /metrics, where messenger_errors_total{kind="database"} rises
source "$(dirname "$0")/lib.sh"
need MESSENGER_URL DRILL_PG_PID
pause=${DRILL_PAUSE:-10}
db_timeout=${DRILL_DB_TIMEOUT:-5}
limit=$((db_timeout + 1))
[ "$pause" -gt "$limit" ] || fail "DRILL_PAUSE ($pause) must be more than DRILL_DB_TIMEOUT + 1 ($limit)"

users
must_send "before the pause"
database_errors() { curl -s -m 5 "$METRICS_URL" | awk '$1 == "messenger_errors_total{kind=\"database\"}" { print $2 }'; }
[ -z "${METRICS_URL:-}" ] || errors_before=$(database_errors)

# The postmaster and its children: pausing only the postmaster would leave the backends
# that hold the pool's connections answering.
pids="$DRILL_PG_PID $(ps -o pid= --ppid "$DRILL_PG_PID" | tr '\n' ' ')"
resume() { kill -CONT $pids 2>/dev/null || true; }
at_exit resume
say "pausing PostgreSQL for ${pause}s: SIGSTOP to $pids"
kill -STOP $pids
paused_at=$(date +%s)
(sleep "$pause" && kill -CONT $pids 2>/dev/null) &

# A send made now, in the background, while /readyz is asked.
(
  DRILL_REQUEST_TIMEOUT=$((limit + 5)) send "during the pause"
  printf '%s %s\n' "$STATUS" "$SECONDS_TAKEN" >"$DRILL_TMP/paused-send"
  printf '%s' "$BODY" >"$DRILL_TMP/paused-body"
  printf '%s' "$HEADERS" >"$DRILL_TMP/paused-headers"
  printf '%s' "$MSG_ID" >"$DRILL_TMP/paused-id"
) &
sender=$!

sleep 1
asked=$SECONDS
r=$(readyz)
[ "$r" != 200 ] || fail "/readyz answers 200 with the database paused"
[ "$r" != 000 ] || fail "/readyz gave no answer within 5 s with the database paused"
say "/readyz with the database paused: $r in $((SECONDS - asked))s: $(curl -s -m 5 "$MESSENGER_URL/readyz")"

wait "$sender" || true
read -r STATUS SECONDS_TAKEN <"$DRILL_TMP/paused-send"
BODY=$(cat "$DRILL_TMP/paused-body")
HEADERS=$(cat "$DRILL_TMP/paused-headers")
paused_id=$(cat "$DRILL_TMP/paused-id")
case "$STATUS" in
503) ;;
000) fail "the send made during the pause had no answer within $((limit + 5))s" ;;
*) fail "the send made during the pause answered $STATUS in ${SECONDS_TAKEN}s, want 503: $BODY" ;;
esac
code=$(error_code)
[ "$code" = unavailable ] || fail "the send made during the pause answered 503 with code \"$code\", want \"unavailable\": $BODY"
retry_after=$(printf '%s\n' "$HEADERS" | grep -i '^retry-after:' | cut -d: -f2 | tr -d ' ' || true)
[ -n "$retry_after" ] || fail "the 503 of the send made during the pause has no Retry-After"
awk -v t="$SECONDS_TAKEN" -v l="$limit" 'BEGIN { exit !(t < l) }' ||
  fail "the send made during the pause took ${SECONDS_TAKEN}s to fail, more than MESSENGER_DB_TIMEOUT + 1 s (${limit}s)"
say "the send made during the pause failed fast: 503 $code, Retry-After $retry_after, in ${SECONDS_TAKEN}s (PostgreSQL paused for ${pause}s)"
if [ -n "${METRICS_URL:-}" ]; then
  # Read while PostgreSQL is still paused: /metrics must answer meanwhile (the job queue's
  # depth, which it reads from the database, gives up within the limit too).
  asked=$(date +%s%N)
  errors_after=$(database_errors)
  took_ms=$((($(date +%s%N) - asked) / 1000000))
  [ "${errors_after:-0}" -gt "${errors_before:-0}" ] ||
    fail "messenger_errors_total{kind=\"database\"} did not rise: ${errors_before:-none} before, ${errors_after:-none} after"
  [ "$took_ms" -lt $((limit * 1000)) ] || fail "/metrics took ${took_ms} ms with the database paused, more than ${limit}s"
  say "messenger_errors_total{kind=\"database\"}: $errors_before before the pause, $errors_after after the refused send (/metrics answered in ${took_ms} ms)"
fi

wait_ready 200 30 || fail "/readyz is not 200 within 30 s of PostgreSQL's resuming"
say "/readyz is 200 again $(($(date +%s) - paused_at))s after the pause began"

# The client retries the refused send with its client_msg_id, as the composer's "다시 보내기"
# does: it is stored, once.
DRILL_MSG_ID=$paused_id send "during the pause"
case "$STATUS" in 200 | 201) ;; *) fail "the retry of the refused send: $STATUS $BODY" ;; esac
say "the retry of the refused send is stored: $STATUS seq $SEQ in ${SECONDS_TAKEN}s"
DRILL_MSG_ID=$paused_id send "during the pause"
[ "$STATUS" = 200 ] || fail "a second retry of the send answered $STATUS, want 200 (already stored): $BODY"
if [ -n "${DATABASE_URL:-}" ]; then
  rows=$(psql "$DATABASE_URL" -XAtc "SELECT count(*) FROM messages WHERE client_msg_id = '$paused_id'")
  [ "$rows" = 1 ] || fail "the retried send is stored $rows times, want once"
  say "the retried send is stored once (messages rows with its client_msg_id: $rows)"
fi
must_send "after the pause"
say "sends are stored again: seq $SEQ in ${SECONDS_TAKEN}s"
say "PASS"
