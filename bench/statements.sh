#!/usr/bin/env bash
# What each statement of a send costs in PostgreSQL, from pg_stat_statements. The shared
# PostgreSQL does not preload it (and a bench must not restart or reconfigure it), so this
# runs a private cluster of the machine's PostgreSQL with
# shared_preload_libraries=pg_stat_statements and pg_stat_statements.track=all (the
# statements inside functions and triggers too), starts the server on it, offers it
# STATEMENTS_RATE (500) sends a second for STATEMENTS_DURATION (20s) with bin/loadgen, and
# prints every statement's calls, time, buffers and WAL, per call and per acknowledged
# send. Times are the backends' (locks waited for included), not the machine's CPU.
#
#   bash bench/statements.sh                  # alone (after make bench built the binaries)
#   BENCH_STATEMENTS=1 make bench             # at the end of a bench run, into its bench/out
#
# The private cluster lives in a temporary directory, on port STATEMENTS_PGPORT (5499), and
# is removed at the end. Its settings are initdb's defaults, like the shared one's here.
set -euo pipefail
cd "$(dirname "$0")/.."

STATEMENTS_RATE=${STATEMENTS_RATE:-500}
STATEMENTS_DURATION=${STATEMENTS_DURATION:-20s}
PGP=${STATEMENTS_PGPORT:-5499}
PGH=127.0.0.1
PGU=postgres
DB=messenger_statements
USERS=${USERS:-100}
LOADGEN_CONVS=${LOADGEN_CONVS:-all}
BENCH_ADDR=${BENCH_STATEMENTS_ADDR:-127.0.0.1:8105}
BENCH_PPROF_ADDR=${BENCH_STATEMENTS_PPROF_ADDR:-127.0.0.1:8106}
BENCH_WAIT_QUIET=${BENCH_WAIT_QUIET:-0}
REDIS=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/0}
OUT=${OUT:-bench/out/statements-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
bench_name=bench-statements
# shellcheck source=bench/lib.sh
. bench/lib.sh
rate_env=()

BINDIR=$(pg_config --bindir 2>/dev/null || true)
[ -x "$BINDIR/initdb" ] || BINDIR=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$BINDIR/initdb" ] || die "no initdb (apt-get install postgresql)"
[ -x bin/messenger ] && [ -x bin/loadgen ] || { go build -o bin/messenger ./cmd/messenger && go build -o bin/loadgen ./cmd/loadgen; }

# initdb and postgres refuse to run as root: as root, the cluster belongs to postgres.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
PGDIR=$(mktemp -d /tmp/messenger-statements.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres "$PGDIR"
cleanup() {
	stop_server
	as_pg "$BINDIR/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null 2>&1 || true
	rm -rf "$PGDIR"
}
trap cleanup EXIT

say "a private PostgreSQL with pg_stat_statements on $PGH:$PGP ($PGDIR)"
as_pg "$BINDIR/initdb" -D "$PGDIR/data" -U postgres -A trust -E UTF8 >"$OUT/statements-initdb.log" 2>&1
as_pg "$BINDIR/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/postgres.log" -w -o "-c port=$PGP -c listen_addresses=$PGH \
	-c unix_socket_directories='' -c shared_preload_libraries=pg_stat_statements \
	-c pg_stat_statements.track=all -c pg_stat_statements.max=5000" start >/dev/null
psql_admin -d postgres -c "CREATE DATABASE $DB"
psql_admin -d "$DB" -c "CREATE EXTENSION pg_stat_statements"

MESSENGER_JWT_SECRET=${MESSENGER_JWT_SECRET:-$(head -c 32 /dev/urandom | base64 | tr -d '\n=+/')}
export MESSENGER_JWT_SECRET
start_server memory "$OUT/statements-server.log" "$DB"
quiet statements
say "loadgen: $STATEMENTS_RATE msg/s for $STATEMENTS_DURATION; pg_stat_statements counts everything the server runs"
# The counters are reset when the load generator starts sending: its sign-ins and the
# conversations it creates come before and do not count.
PG_PID=$(head -1 "$PGDIR/data/postmaster.pid")
push_args=()
if [ -n "${MESSENGER_VAPID_PUBLIC_KEY:-}" ]; then
	push_args=(-push-subscribe) # push on: every user subscribed, as bench/run.sh's BENCH_PUSH=1
fi
./bin/loadgen -url "http://$BENCH_ADDR" -users "$USERS" -rate "$STATEMENTS_RATE" -duration "$STATEMENTS_DURATION" \
	${push_args[@]+"${push_args[@]}"} -warmup 0s -convs "$LOADGEN_CONVS" -pid "$SERVER_PID" -pg-pid "$PG_PID" -verify=false -progress 0 -json \
	>"$OUT/statements-loadgen.json" 2>"$OUT/statements-loadgen.txt" &
LOADGEN_PID=$!
for _ in $(seq 1 600); do
	grep -q '^loadgen: sending' "$OUT/statements-loadgen.txt" 2>/dev/null && break
	kill -0 "$LOADGEN_PID" 2>/dev/null || break
	sleep 0.05
done
psql_admin -d "$DB" -Atc "SELECT pg_stat_statements_reset()" >/dev/null
wait "$LOADGEN_PID" || die "loadgen failed: see $OUT/statements-loadgen.txt"
stop_server
SENDS=$(jq '.sends.ok' "$OUT/statements-loadgen.json")

say "what the database did per acknowledged send ($SENDS sends at $STATEMENTS_RATE/s)"
psql_admin -d "$DB" -v sends="$SENDS" -P pager=off <<'SQL' | tee "$OUT/statements.txt"
\pset footer off
SELECT calls,
       round((calls::numeric / :sends), 2) AS per_send,
       round(total_exec_time::numeric / :sends * 1000, 1) AS us_per_send,
       round(mean_exec_time::numeric * 1000, 1) AS us_per_call,
       round((100 * total_exec_time / sum(total_exec_time) FILTER (WHERE toplevel) OVER ())::numeric, 1) AS pct,
       round(shared_blks_hit::numeric / greatest(calls, 1), 1) AS hit_per_call,
       round(wal_bytes::numeric / greatest(calls, 1)) AS wal_b_per_call,
       CASE WHEN toplevel THEN 'top' ELSE 'nested' END AS level,
       left(regexp_replace(query, '\s+', ' ', 'g'), 110) AS statement
  FROM pg_stat_statements
 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND query NOT LIKE '%pg_stat_statements%'
 ORDER BY total_exec_time DESC
 LIMIT 30;
SELECT round(sum(total_exec_time)::numeric / :sends * 1000, 1) AS top_level_us_per_send,
       round(sum(calls)::numeric / :sends, 2) AS top_level_statements_per_send,
       round(sum(wal_bytes)::numeric / :sends) AS wal_bytes_per_send
  FROM pg_stat_statements
 WHERE toplevel AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND query NOT LIKE '%pg_stat_statements%';
SQL
echo "(pct: share of the top-level statements' time; a nested statement's time is inside its caller's)"
# CPU time per send, from /proc: the private cluster's processes (the postmaster's children,
# ended ones included) and the server's, over the window, divided by its acknowledged sends.
# Unlike the backends' times above, it does not count waiting (for a lock, a core, the WAL
# flush), so it compares two versions fairly on a busy machine.
jq -r '"CPU per acknowledged send: PostgreSQL \(.cpu.postgres_pct / 100 * .cpu.window_s * 1e6 / .sends.ok | round) µs, server \(.cpu.server_pct / 100 * .cpu.window_s * 1e6 / .sends.ok | round) µs (\(.sends.ok) sends in \(.cpu.window_s | round) s)"' \
	"$OUT/statements-loadgen.json" | tee -a "$OUT/statements.txt"
