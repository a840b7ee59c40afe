#!/usr/bin/env bash
# Drill: server down (docs/runbook.md#server-down). Kills one of two messenger processes with
# SIGKILL and checks what the runbook says: the other serves sends and history, a stream cut
# by the kill reconnects to it with Last-Event-ID and misses nothing, and the killed process
# comes back ready once restarted.
#
#   MESSENGER_URLS      two processes, "http://A http://B": A is killed, B survives
#   DRILL_KILL_PID      A's pid
#   DRILL_RESTART       the command that starts A again, e.g. "systemctl start messenger@1"
source "$(dirname "$0")/lib.sh"
need MESSENGER_URLS DRILL_KILL_PID DRILL_RESTART
read -r victim MESSENGER_URL <<<"$MESSENGER_URLS"
[ -n "$MESSENGER_URL" ] || fail "MESSENGER_URLS names one process; it needs two"

users
stream_open "$DRILL_TMP/stream" "$victim"
first_stream=$STREAM_PID
must_send "before the kill" "$victim"
wait_stream_seq "$DRILL_TMP/stream" "$SEQ" 10 || fail "seq $SEQ did not come live on $victim"

say "kill -9 $DRILL_KILL_PID ($victim)"
kill -9 "$DRILL_KILL_PID"
for _ in $(seq 50); do kill -0 "$first_stream" 2>/dev/null || break; sleep 0.1; done
kill -0 "$first_stream" 2>/dev/null && fail "the stream on $victim stayed open after the kill"
[ "$(readyz "$victim")" = 000 ] || fail "$victim still answers after the kill"

# While the stream is away the survivor stores what is sent.
must_send "while A is down"
missed=$SEQ
last=$(stream_last_id "$DRILL_TMP/stream")
say "the stream was cut; it reconnects to $MESSENGER_URL with Last-Event-ID $last"
mv "$DRILL_TMP/stream" "$DRILL_TMP/stream-a"
stream_open "$DRILL_TMP/stream-b" "$MESSENGER_URL" "$last"
cat "$DRILL_TMP/stream-a" "$DRILL_TMP/stream-b" >"$DRILL_TMP/stream"
must_send "after the reconnect"
wait_stream_seq "$DRILL_TMP/stream-b" "$SEQ" 10 || fail "seq $SEQ did not come live on $MESSENGER_URL"
cat "$DRILL_TMP/stream-a" "$DRILL_TMP/stream-b" >"$DRILL_TMP/stream"
kill "$STREAM_PID"
check_nothing_lost "$DRILL_TMP/stream"
stream_seqs "$DRILL_TMP/stream-b" | grep -qx "$missed" && say "seq $missed, sent while the stream was away, came on resuming"

say "restarting A: $DRILL_RESTART"
bash -c "$DRILL_RESTART"
wait_ready 200 60 "$victim" || fail "$victim is not ready within 60 s of its restart"
must_send "A is back" "$victim"
say "A serves again: seq $SEQ"
say "PASS"
