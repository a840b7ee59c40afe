#!/usr/bin/env bash
# Drill: slow delivery (docs/runbook.md#slow-delivery). Pauses Redis (SIGSTOP, so that it
# holds connections without answering, as an overloaded Redis does) for DRILL_PAUSE seconds
# while the sender keeps sending, and checks what the runbook says: sends are still stored
# (201) but take up to the publish timeout, messenger_publish_failures_total and the slow
# part of messenger_messages_sent_duration_seconds grow, and once Redis answers the reader's
# stream gets a resync and, with the fetch it asks for, every stored message once.
#
#   MESSENGER_URL       the messenger process
#   METRICS_URL         its /metrics (MESSENGER_METRICS_ADDR), e.g. http://127.0.0.1:9101/metrics
#   DRILL_REDIS_PID     redis-server's pid (redis-cli info server | grep process_id); the drill
#                       must run on Redis's host, as its user or root
#   DRILL_PAUSE         seconds Redis stays paused (default 7: longer than the 5 s publish timeout)
source "$(dirname "$0")/lib.sh"
need MESSENGER_URL METRICS_URL DRILL_REDIS_PID
pause=${DRILL_PAUSE:-7}

# slow_sends: sends that took longer than 0.5 s (the MessengerSendSlow threshold).
slow_sends() {
  curl -s -m 5 "$METRICS_URL" | awk '
    /^messenger_messages_sent_duration_seconds_count/ { c = $NF }
    /^messenger_messages_sent_duration_seconds_bucket\{le="0.5"\}/ { b = $NF }
    END { printf "%d\n", c - b }'
}

users
stream_open "$DRILL_TMP/stream"
must_send "before the pause"
wait_stream_seq "$DRILL_TMP/stream" "$SEQ" 10 || fail "seq $SEQ did not come live before the pause"
failures_before=$(metric messenger_publish_failures_total)
slow_before=$(slow_sends)
resyncs_before=$(metric messenger_stream_resyncs_total)

resume() { kill -CONT "$DRILL_REDIS_PID" 2>/dev/null || true; }
at_exit resume
say "pausing Redis ($DRILL_REDIS_PID) for ${pause}s"
kill -STOP "$DRILL_REDIS_PID"
paused_at=$(date +%s)
(sleep "$pause" && kill -CONT "$DRILL_REDIS_PID" 2>/dev/null) &
longest=0
while [ $(($(date +%s) - paused_at)) -lt "$pause" ]; do
  must_send "while Redis is slow"
  say "seq $SEQ stored in ${SECONDS_TAKEN}s"
  ms=$(awk -v s="$SECONDS_TAKEN" 'BEGIN { printf "%d", s * 1000 }')
  [ "$ms" -gt "$longest" ] && longest=$ms
done
wait "$!"
must_send "after the pause"
wait_stream_seq "$DRILL_TMP/stream" "$SEQ" 15 || fail "seq $SEQ did not come live within 15 s of Redis answering again"

failures=$(($(metric messenger_publish_failures_total) - failures_before))
slow=$(($(slow_sends) - slow_before))
resyncs=$(($(metric messenger_stream_resyncs_total) - resyncs_before))
say "longest send ${longest} ms; messenger_publish_failures_total +$failures; sends over 0.5 s +$slow; messenger_stream_resyncs_total +$resyncs"
[ "$failures" -gt 0 ] || fail "messenger_publish_failures_total did not grow"
[ "$slow" -gt 0 ] || fail "no send took longer than 0.5 s: the send latency alert would not see this"
[ "$resyncs" -gt 0 ] || fail "messenger_stream_resyncs_total did not grow: the streams were not told to catch up"
kill "$STREAM_PID"
check_nothing_lost "$DRILL_TMP/stream"
say "PASS"
