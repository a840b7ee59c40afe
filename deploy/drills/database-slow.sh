#!/usr/bin/env bash
# Drill: database slow or timing out (docs/runbook.md#database-slow). Pauses PostgreSQL
# (SIGSTOP to the postmaster and every backend) for DRILL_PAUSE seconds and checks what the
# runbook says: /readyz stops answering 200, a send made meanwhile ends within
# DRILL_SEND_LIMIT seconds (stored once the database answers, or refused with a JSON error
# and a code), and once PostgreSQL runs again /readyz is 200 and sends are stored.
#
#   MESSENGER_URL       the messenger process
#   DRILL_PG_PID        the postmaster's pid (the first line of $PGDATA/postmaster.pid);
#                       the drill must run on its host, as its user or root
#   DRILL_PAUSE         seconds PostgreSQL stays paused (default 10)
#   DRILL_SEND_LIMIT    seconds a send may take while paused (default: DRILL_PAUSE + 5)
source "$(dirname "$0")/lib.sh"
need MESSENGER_URL DRILL_PG_PID
pause=${DRILL_PAUSE:-10}
limit=${DRILL_SEND_LIMIT:-$((pause + 5))}

users
must_send "before the pause"

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
took=${SECONDS_TAKEN%.*}
case "$STATUS" in
201) say "the send made during the pause waited for the database: 201 after ${SECONDS_TAKEN}s (PostgreSQL paused for ${pause}s)" ;;
000) fail "the send made during the pause had no answer within $((limit + 5))s" ;;
*)
  code=$(error_code)
  [ -n "$code" ] || fail "the send made during the pause answered $STATUS without a JSON error code: $BODY"
  say "the send made during the pause was refused: $STATUS $code in ${SECONDS_TAKEN}s"
  ;;
esac
[ "$took" -lt "$limit" ] || fail "the send took ${SECONDS_TAKEN}s, more than ${limit}s"

wait_ready 200 30 || fail "/readyz is not 200 within 30 s of PostgreSQL's resuming"
say "/readyz is 200 again $(($(date +%s) - paused_at))s after the pause began"
must_send "after the pause"
say "sends are stored again: seq $SEQ in ${SECONDS_TAKEN}s"
say "PASS"
