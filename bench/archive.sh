#!/usr/bin/env bash
# make bench-archive: hot and cold history on the ten-million-message database that
# `KEEP=1 make bench-history` leaves (docs/performance.md, "Hot and cold history").
#
#   1. messenger migrate (024_archive.sql on the loaded database, timed);
#   2. before archiving: one pgbench run of PGBENCH_TIME s a script, one client, the ceiling,
#      the thread's newest page and a page 100,000 back mixed (bench/history/*.sql: each
#      transaction a script picked at random, so that all share the machine's noise alike);
#      then sends alone (bench/history/send.sql: the heavy user to the ten big groups,
#      SEND_CLIENTS clients at SEND_RATE a second in all), SEND_ROUNDS rounds of PGBENCH_TIME s;
#   3. messenger archive, moving ARCHIVE_SHARE (80) % of the messages (MESSENGER_ARCHIVE_AFTER
#      set to the age of that share, from a 1 % sample), while the same sends run beside it
#      in PGBENCH_TIME s rounds and what the sessions wait on is sampled every 0.2 s: its
#      rate, the sends' latency during it, their waits;
#   4. after: sizes, messenger check, EXPLAIN (ANALYZE, BUFFERS) of the hot, the cold and the
#      crossing page; one mixed pgbench run of the ceiling, the newest page, the page 100,000
#      back, a page deep in the archive (cold.sql) and one across the boundary (across.sql);
#      the sends again, SEND_ROUNDS rounds.
#
# Environment (defaults): PLAN (the plan.json of the kept database; required)
# BENCH_HISTORY_DB (messenger_history) ARCHIVE_SHARE (80) ARCHIVE_BATCH (1000) PGBENCH_TIME (10)
# ARCHIVE_PAUSE (0s: MESSENGER_ARCHIVE_PAUSE) ARCHIVE_STOP_AFTER (0; N: the archive is sent SIGTERM
# after N s, and what it left is checked and measured) SEND_CLIENTS (2) SEND_RATE (100)
# SEND_ROUNDS (3) BENCH_WAIT_QUIET (0) BENCH_PGHOST (127.0.0.1)
# BENCH_PGPORT (5432) BENCH_PGUSER (postgres). The database is changed for good (archived,
# and the sends added). Results go to bench/out/archive-<time>/.
set -euo pipefail
cd "$(dirname "$0")/.."

PLAN=${PLAN:?PLAN=bench/out/history-<time>/plan.json of a database kept by KEEP=1 make bench-history}
DB=${BENCH_HISTORY_DB:-messenger_history}
ARCHIVE_SHARE=${ARCHIVE_SHARE:-80}
ARCHIVE_BATCH=${ARCHIVE_BATCH:-1000}
ARCHIVE_PAUSE=${ARCHIVE_PAUSE:-0s}
ARCHIVE_STOP_AFTER=${ARCHIVE_STOP_AFTER:-0}
PGBENCH_TIME=${PGBENCH_TIME:-10}
SEND_CLIENTS=${SEND_CLIENTS:-2}
SEND_RATE=${SEND_RATE:-100}
SEND_ROUNDS=${SEND_ROUNDS:-3}
BENCH_WAIT_QUIET=${BENCH_WAIT_QUIET:-0}
PGH=${BENCH_PGHOST:-127.0.0.1}
PGP=${BENCH_PGPORT:-5432}
PGU=${BENCH_PGUSER:-postgres}

OUT=bench/out/archive-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
bench_name=bench-archive
# shellcheck source=bench/lib.sh
. bench/lib.sh

for tool in go psql pgbench jq; do
	command -v "$tool" >/dev/null || die "$tool is needed"
done
[ -s "$PLAN" ] || die "no plan: $PLAN"
cp "$PLAN" "$OUT/plan.json"
p() { jq -r ".$1" "$PLAN"; }
THREAD=$(p thread)
LAST=$(p thread_last_seq)

say "build"
go build -o bin/messenger ./cmd/messenger

OWNER_URL="postgres://$PGU@$PGH:$PGP/$DB?sslmode=disable"
MESSENGER_JWT_SECRET=$(head -c 32 /dev/urandom | base64 | tr -d '\n=+/')
export MESSENGER_JWT_SECRET
# messenger ARGS...: runs ARGS (the binary) with the bench's environment, in place of the
# shell that calls it (exec: a background call's $! is the messenger's own pid).
messenger() {
	exec env -u MESSENGER_APP_DATABASE_URL -u MESSENGER_STORAGE_URL DATABASE_URL="$OWNER_URL" MESSENGER_DEV=0 MESSENGER_LOG_LEVEL=info \
		MESSENGER_METRICS_ADDR=off MESSENGER_DATA_DIR="$OUT/data" "$@"
}

say "migrate (024_archive.sql on the loaded database)"
start=$(date +%s.%N)
(messenger ./bin/messenger migrate) >"$OUT/migrate.log" 2>&1 || { cat "$OUT/migrate.log"; die "migrate failed"; }
echo "migrate: $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s" | tee "$OUT/migrate.txt"

pgbench_p() { awk '{ print $3 }' "$1" | sort -n | awk -v p="$2" '{ v[NR] = $1 } END { i = int(NR * p / 100); if (i < 1) i = 1; if (i > NR) i = NR; printf "%.2f", v[i] / 1000 }'; }
# line NAME LOG: a line of percentiles of the transaction latencies in LOG, to pgbench.txt.
line() {
	printf '  %-16s transactions %7d  p50 %6s  p95 %6s  p99 %6s  max %7s ms\n' "$1" "$(wc -l <"$2")" \
		"$(pgbench_p "$2" 50)" "$(pgbench_p "$2" 95)" "$(pgbench_p "$2" 99)" "$(pgbench_p "$2" 100)" | tee -a "$OUT/pgbench.txt"
}
# run NAME ARGS...: one pgbench run as messenger_app, its per-transaction log kept as NAME.log.
run() {
	local name=$1
	shift
	quiet "$name"
	rm -f "$OUT"/pgbench_log.*
	(cd "$OUT" && pgbench -n -M extended -h "$PGH" -p "$PGP" -U messenger_app -l --log-prefix=pgbench_log \
		-D user="$(p user_id)" -D org="$(p org_id)" -D zone="$(p zone_id)" -D thread="$THREAD" -D last="$LAST" \
		-D boundary="${BOUNDARY:-0}" "$@" "$DB") >"$OUT/$name.txt" 2>&1 ||
		{ cat "$OUT/$name.txt"; die "pgbench $name failed"; }
	cat "$OUT"/pgbench_log.* >"$OUT/$name.log"
	rm -f "$OUT"/pgbench_log.*
}
# mix NAME SCRIPT...: the scripts in one run, one client, PGBENCH_TIME s a script, each
# transaction a script at random; a line for each script (the log's fourth field is its
# number).
mix() {
	local name=$1 i=0 f args=()
	shift
	for f in "$@"; do args+=(-f "$PWD/bench/history/$f"); done
	run "$name" -c 1 -T $((PGBENCH_TIME * $#)) "${args[@]}"
	for f in "$@"; do
		awk -v s="$i" '$4 == s' "$OUT/$name.log" >"$OUT/$name-${f%.sql}.log"
		line "$name-${f%.sql}" "$OUT/$name-${f%.sql}.log"
		i=$((i + 1))
	done
}
# sends NAME: SEND_ROUNDS rounds of the sends, one line for all.
sends() {
	local r
	: >"$OUT/$1.log"
	for r in $(seq 1 "$SEND_ROUNDS"); do
		run "$1-$r" -c "$SEND_CLIENTS" -R "$SEND_RATE" -T "$PGBENCH_TIME" -f "$PWD/bench/history/send.sql"
		cat "$OUT/$1-$r.log" >>"$OUT/$1.log"
	done
	line "$1" "$OUT/$1.log"
}

say "before archiving: the reads mixed, 1 client, ${PGBENCH_TIME}s a read; sends $SEND_CLIENTS clients at $SEND_RATE/s"
echo "before archiving:" >>"$OUT/pgbench.txt"
mix before ceiling.sql newest.sql back.sql
sends before-sends

HOURS=$(psql_admin -d "$DB" -Atc "SELECT ceil(extract(epoch FROM now() - percentile_disc($ARCHIVE_SHARE / 100.0) WITHIN GROUP (ORDER BY created_at)) / 3600)::bigint
	FROM messages TABLESAMPLE SYSTEM (1)")
say "archive: MESSENGER_ARCHIVE_AFTER=${HOURS}h (about $ARCHIVE_SHARE % of the messages), batch $ARCHIVE_BATCH, pause $ARCHIVE_PAUSE, sends beside it"
quiet archive
(messenger MESSENGER_ARCHIVE_AFTER="${HOURS}h" MESSENGER_ARCHIVE_BATCH="$ARCHIVE_BATCH" MESSENGER_ARCHIVE_PAUSE="$ARCHIVE_PAUSE" \
	./bin/messenger archive) >"$OUT/archive.log" 2>&1 &
ARCHIVE_PID=$!
if [ "$ARCHIVE_STOP_AFTER" -gt 0 ]; then
	(sleep "$ARCHIVE_STOP_AFTER" && kill -TERM "$ARCHIVE_PID" 2>/dev/null && echo "archive stopped by SIGTERM after ${ARCHIVE_STOP_AFTER}s") >"$OUT/stopped.txt" &
fi
echo "during the archive:" >>"$OUT/pgbench.txt"
# What the application's sessions wait on, every 0.2 s while the archive runs.
(while kill -0 "$ARCHIVE_PID" 2>/dev/null; do
	psql_admin -d "$DB" -Atc "SELECT CASE WHEN query LIKE '%app_archive%' THEN 'archive' ELSE 'send' END || ' ' ||
		coalesce(wait_event_type || ':' || wait_event, 'running')
		FROM pg_stat_activity WHERE datname = current_database() AND usename = 'messenger_app' AND state = 'active'" 2>/dev/null || true
	sleep 0.2
done) >"$OUT/waits-raw.txt" &
WAITS_PID=$!
round=0
: >"$OUT/during-sends.log"
while kill -0 "$ARCHIVE_PID" 2>/dev/null; do
	round=$((round + 1))
	run "during-sends-$round" -c "$SEND_CLIENTS" -R "$SEND_RATE" -T "$PGBENCH_TIME" -f "$PWD/bench/history/send.sql"
	cat "$OUT/during-sends-$round.log" >>"$OUT/during-sends.log"
done
if ! wait "$ARCHIVE_PID"; then
	[ -s "$OUT/stopped.txt" ] || { cat "$OUT/archive.log"; die "archive failed"; }
	cat "$OUT/stopped.txt"
	grep '"archive stopped"' "$OUT/archive.log" || true
fi
wait "$WAITS_PID" || true
{ grep -v '^{' "$OUT/archive.log" || true; } | tee "$OUT/archive.txt"
line during-sends "$OUT/during-sends.log"
sort "$OUT/waits-raw.txt" | uniq -c | sort -rn | tee "$OUT/waits.txt"

BOUNDARY=$(psql_admin -d "$DB" -Atc "SELECT archived_through_seq FROM conversations WHERE id = $THREAD")
say "after: the thread's boundary $BOUNDARY of $LAST; sizes; consistency check"
psql_admin -d "$DB" -c "VACUUM (ANALYZE) messages, messages_archive, conversations"
psql_admin -d "$DB" -c "
SELECT (SELECT count(*) FROM messages) AS hot, (SELECT count(*) FROM messages_archive) AS archived,
       (SELECT count(*) FROM conversations WHERE archived_through_seq > 0) AS conversations_archived" | tee "$OUT/sizes.txt"
psql_admin -d "$DB" -c "
SELECT c.relname AS relation, CASE c.relkind WHEN 'i' THEN 'index' ELSE 'table' END AS kind,
       pg_size_pretty(pg_relation_size(c.oid)) AS size
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relname LIKE 'messages%' AND c.relkind IN ('r', 'i')
 ORDER BY pg_relation_size(c.oid) DESC" | tee -a "$OUT/sizes.txt"
(messenger ./bin/messenger check) | tee "$OUT/check.txt"

say "EXPLAIN (ANALYZE, BUFFERS): the newest page (hot), a page across the boundary, a page in the archive"
psql_admin -d "$DB" -v user="$(p user_id)" -v org="$(p org_id)" -v zone="$(p zone_id)" -v thread="$THREAD" -v boundary="$BOUNDARY" \
	-f bench/archive-explain.sql | tee "$OUT/explain.txt"

say "after archiving: pgbench, 1 client, ${PGBENCH_TIME}s each"
echo "after archiving (boundary $BOUNDARY):" >>"$OUT/pgbench.txt"
mix after ceiling.sql newest.sql back.sql across.sql cold.sql
sends after-sends

say "results ($OUT)"
{
	echo "when: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+changes')"
	echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1); PostgreSQL $(psql_admin -d "$DB" -Atc 'SHOW server_version')"
	echo "busy before each step (% of a core): $(paste -sd' ' "$OUT/background-cpu.txt" | sed 's/: /=/g')"
	cat "$OUT/migrate.txt" "$OUT/archive.txt" "$OUT/stopped.txt" "$OUT/sizes.txt" 2>/dev/null
	echo "what the application's sessions waited on during the archive (samples every 0.2 s):"
	cat "$OUT/waits.txt"
	tail -1 "$OUT/check.txt"
	cat "$OUT/pgbench.txt"
} | tee "$OUT/summary.txt"
