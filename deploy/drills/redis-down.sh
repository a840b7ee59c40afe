#!/usr/bin/env bash
# Drill: Redis down (docs/runbook.md#redis-down). Stops Redis, sends while it is down, starts
# it again, and checks what the runbook says: sends are stored (201) and history serves them
# meanwhile, /readyz names the engine unreachable, live delivery resumes once Redis is back,
# and the reader's stream (with the fetch its resync asks for) has every stored message once.
#
#   MESSENGER_URL       the messenger process whose stream and sends the drill uses
#   DRILL_REDIS_STOP    the command that stops Redis, e.g. "systemctl stop redis-server"
#   DRILL_REDIS_START   the command that starts it again, e.g. "systemctl start redis-server"
#   DRILL_DOWN          seconds Redis stays down (default 5)
#   METRICS_URL         optional: the process's /metrics, to check that the failed publishes are counted
source "$(dirname "$0")/lib.sh"
need MESSENGER_URL DRILL_REDIS_STOP DRILL_REDIS_START
down=${DRILL_DOWN:-5}

users
stream_open "$DRILL_TMP/stream"
must_send "before the outage"
wait_stream_seq "$DRILL_TMP/stream" "$SEQ" 10 || fail "seq $SEQ did not come live before the outage"

resyncs_before=$(resyncs "$DRILL_TMP/stream")
[ -z "${METRICS_URL:-}" ] || failures_before=$(metric messenger_publish_failures_total)
say "stopping Redis: $DRILL_REDIS_STOP"
bash -c "$DRILL_REDIS_STOP"
restarted=""
at_exit '[ -n "$restarted" ] || bash -c "$DRILL_REDIS_START"'
sleep 1
[ "$(readyz)" = 503 ] || fail "/readyz answers $(readyz) with Redis down, want 503"
curl -s -m 5 "$MESSENGER_URL/readyz" | grep -q '"engine":"unreachable"' || fail "/readyz does not name the engine unreachable"
say "/readyz: 503 $(curl -s -m 5 "$MESSENGER_URL/readyz")"

start=$(date +%s)
sent=0
while [ $(($(date +%s) - start)) -lt "$down" ]; do
  must_send "during the outage $sent"
  sent=$((sent + 1))
  say "sent seq $SEQ with Redis down: $STATUS in ${SECONDS_TAKEN}s"
done
stored=$(history_seqs | tail -n1)
[ "$stored" = "$SEQ" ] || fail "history ends at seq $stored with Redis down, want $SEQ"
say "history serves all $stored messages with Redis down"
if [ -n "${METRICS_URL:-}" ]; then
  failed=$(($(metric messenger_publish_failures_total) - failures_before))
  [ "$failed" -ge "$sent" ] || fail "messenger_publish_failures_total grew by $failed for $sent sends with Redis down"
  say "messenger_publish_failures_total +$failed"
fi

say "starting Redis: $DRILL_REDIS_START"
bash -c "$DRILL_REDIS_START"
restarted=1
wait_ready 200 30 || fail "/readyz is not 200 within 30 s of Redis's start"
say "/readyz is 200 again"
# Once the process's subscription to Redis is back it tells its streams to resync: what was
# published meanwhile went nowhere, and the client fetches it.
wait_resyncs "$DRILL_TMP/stream" "$resyncs_before" 30 || fail "the stream got no resync within 30 s of Redis's start"
must_send "after the outage"
wait_stream_seq "$DRILL_TMP/stream" "$SEQ" 10 || fail "seq $SEQ sent after the resync did not come live within 10 s"
say "live delivery resumed: seq $SEQ came on the same stream"
kill -0 "$STREAM_PID" 2>/dev/null || fail "the stream closed during the outage"
kill "$STREAM_PID"
check_nothing_lost "$DRILL_TMP/stream"
say "PASS"
