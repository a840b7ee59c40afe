#!/usr/bin/env bash
# make bench-history: a long history — ten million messages over 20,000 conversations and
# 50,000 users — and the five reads that meet it, timed beside their ceilings. See
# docs/performance.md ("Ten million messages").
#
#   1. builds bin/messenger and bin/historygen;
#   2. a fresh database messenger_history, migrated (messenger migrate), then historygen
#      load: users, conversations (ten groups of 500, classes of 30, direct ones), their
#      members, the messages in time order over all conversations, read receipts, all by
#      COPY, the messages' keys dropped for the copy and built after, VACUUM ANALYZE; the
#      heavy user (500 conversations) and their largest conversation go to plan.json;
#   3. messenger check (the consistency check) on the loaded database, which must pass;
#      the sizes of the tables and indexes;
#   4. EXPLAIN (ANALYZE, BUFFERS) of each read's statement (bench/history-explain.sql);
#   5. historygen store: each read RUNS times through the store's own functions, one
#      transaction as the server opens it, as messenger_app and the heavy user; the
#      ceiling is the empty transaction (BEGIN, the identity's settings, COMMIT);
#   6. pgbench, one client for PGBENCH_TIME s a read: each read's transaction as the
#      server runs it (bench/history/*.sql: the statements of store/*.go, as messenger_app
#      with the identity settings, prepared as store/prepared.go prepares them), p50/p95/p99
#      from its per-transaction log; the ceiling is the same transaction with SELECT 1;
#   7. the server on the database; historygen http: each read RUNS times through the
#      JSON API with the heavy user's portal token; the ceiling is GET /healthz;
#   8. drops the database unless KEEP=1.
#
# Environment (defaults): MESSAGES (10000000) CONVERSATIONS (20000) USERS (50000) RUNS
# (1000) PGBENCH_TIME (10) KEEP (0) SKIP_LOAD (0: 1 measures the database KEEP=1 left, with its plan.json
# in PLAN) BENCH_WAIT_QUIET (0) BENCH_HISTORY_ADDR (127.0.0.1:8105)
# BENCH_HISTORY_PPROF_ADDR (127.0.0.1:8106) BENCH_PGHOST (127.0.0.1) BENCH_PGPORT (5432)
# BENCH_PGUSER (postgres) BENCH_HISTORY_DB (messenger_history).
# Results go to bench/out/history-<time>/.
set -euo pipefail
cd "$(dirname "$0")/.."

MESSAGES=${MESSAGES:-10000000}
CONVERSATIONS=${CONVERSATIONS:-20000}
USERS=${USERS:-50000}
RUNS=${RUNS:-1000}
PGBENCH_TIME=${PGBENCH_TIME:-10}
KEEP=${KEEP:-0}
SKIP_LOAD=${SKIP_LOAD:-0}
BENCH_WAIT_QUIET=${BENCH_WAIT_QUIET:-0}
BENCH_ADDR=${BENCH_HISTORY_ADDR:-127.0.0.1:8105}
BENCH_PPROF_ADDR=${BENCH_HISTORY_PPROF_ADDR:-127.0.0.1:8106}
PGH=${BENCH_PGHOST:-127.0.0.1}
PGP=${BENCH_PGPORT:-5432}
PGU=${BENCH_PGUSER:-postgres}
DB=${BENCH_HISTORY_DB:-messenger_history}

OUT=bench/out/history-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
bench_name=bench-history
# shellcheck source=bench/lib.sh
. bench/lib.sh
rate_env=()

for tool in go psql pgbench curl jq; do
	command -v "$tool" >/dev/null || die "$tool is needed (apt-get install postgresql-client curl jq)"
done
pg_isready -q -h "$PGH" -p "$PGP" || die "no PostgreSQL at $PGH:$PGP"
echo "disk: $(df -h --output=avail / | tail -1 | tr -d ' ') free on /; the database takes about 3 GB at ten million messages"

say "build"
go build -o bin/messenger ./cmd/messenger
go build -o bin/historygen ./cmd/historygen

OWNER_URL="postgres://$PGU@$PGH:$PGP/$DB?sslmode=disable"
APP_URL="postgres://messenger_app@$PGH:$PGP/$DB?sslmode=disable"
MESSENGER_JWT_SECRET=$(head -c 32 /dev/urandom | base64 | tr -d '\n=+/')
export MESSENGER_JWT_SECRET
cleanup() {
	stop_server
	if [ "$KEEP" != 1 ]; then
		psql_admin -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
	fi
}
trap cleanup EXIT

PLAN=$(realpath -m "${PLAN:-$OUT/plan.json}") # absolute: the pgbench step reads it from $OUT
if [ "$SKIP_LOAD" != 1 ]; then
	say "fresh database $DB on $PGH:$PGP"
	psql_admin -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
	env -u MESSENGER_APP_DATABASE_URL DATABASE_URL="$OWNER_URL" MESSENGER_DEV=0 MESSENGER_LOG_LEVEL=warn MESSENGER_METRICS_ADDR=off \
		MESSENGER_DATA_DIR="$OUT/data" ./bin/messenger migrate >"$OUT/migrate.log" 2>&1 || { cat "$OUT/migrate.log"; die "migrate failed"; }
	quiet load
	say "load: $MESSAGES messages, $CONVERSATIONS conversations, $USERS users"
	/usr/bin/time -v ./bin/historygen load -db "$OWNER_URL" -messages "$MESSAGES" -conversations "$CONVERSATIONS" -users "$USERS" \
		-plan "$PLAN" 2> >(tee "$OUT/load.txt" >&2)
	cat "$PLAN"
fi
[ -s "$PLAN" ] || die "no plan: $PLAN"
cp "$PLAN" "$OUT/plan.json" 2>/dev/null || true

say "consistency check (messenger check)"
env -u MESSENGER_STORAGE_URL DATABASE_URL="$OWNER_URL" MESSENGER_DATA_DIR="$OUT/data" ./bin/messenger check | tee "$OUT/check.txt"

say "sizes"
psql_admin -d "$DB" -c "
SELECT c.relname AS relation, CASE c.relkind WHEN 'i' THEN 'index' ELSE 'table' END AS kind,
       pg_size_pretty(pg_relation_size(c.oid)) AS size, c.reltuples::bigint AS rows
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i') AND pg_relation_size(c.oid) > 1024 * 1024
 ORDER BY pg_relation_size(c.oid) DESC" | tee "$OUT/sizes.txt"
psql_admin -d "$DB" -Atc "SELECT 'database ' || pg_size_pretty(pg_database_size(current_database()))" | tee -a "$OUT/sizes.txt"

p() { jq -r ".$1" "$PLAN"; }
THREAD=$(p thread)
LAST=$(p thread_last_seq)
BEFORE=$((LAST > 101000 ? LAST - 100000 : (LAST / 2 > 0 ? LAST / 2 : 1)))
AFTER=$((LAST > 25 ? LAST - 25 : 0))

# The list's first page as the server answers it (its ids and last seqs: what the list's
# later statements are given).
read -r LIST_IDS LIST_SEQS < <(psql_admin -d "$DB" -At -F ' ' -c "
SELECT '{' || string_agg(id::text, ',' ORDER BY at DESC, id DESC) || '}', '{' || string_agg(last_seq::text, ',' ORDER BY at DESC, id DESC) || '}'
  FROM (SELECT c.id, c.last_seq, c.last_message_at AS at FROM conversation_participants p JOIN conversations c ON c.id = p.conversation_id
         WHERE p.user_id = $(p user_id) AND p.left_at IS NULL ORDER BY c.last_message_at DESC, c.id DESC LIMIT 51) l")
say "EXPLAIN (ANALYZE, BUFFERS) of each read (thread $THREAD, $LAST messages; before_seq $BEFORE, after_seq $AFTER)"
psql_admin -h "$PGH" -d "$DB" -v user="$(p user_id)" -v org="$(p org_id)" -v zone="$(p zone_id)" -v thread="$THREAD" -v last="$LAST" \
	-v before="$BEFORE" -v after="$AFTER" -v list_ids="$LIST_IDS" -v list_seqs="$LIST_SEQS" -f bench/history-explain.sql | tee "$OUT/explain.txt"

quiet store
say "store: each read $RUNS times as messenger_app, one transaction each"
./bin/historygen store -db "$APP_URL" -plan "$PLAN" -runs "$RUNS" -json "$OUT/store.json" | tee "$OUT/store.txt"

# pgbench_p FILE P: the P-th percentile (0-100) of the transaction latencies (ms) in
# pgbench's per-transaction log FILE (its third field, µs).
pgbench_p() { awk '{ print $3 }' "$1" | sort -n | awk -v p="$2" '{ v[NR] = $1 } END { i = int(NR * p / 100); if (i < 1) i = 1; if (i > NR) i = NR; printf "%.2f", v[i] / 1000 }'; }
say "pgbench: each read's transaction at the database, as messenger_app, 1 client, ${PGBENCH_TIME}s each, prepared as the server's are (bench/history/*.sql)"
: >"$OUT/pgbench.txt"
for read in ceiling newest back catchup list unread; do
	quiet "pgbench-$read"
	rm -f "$OUT"/pgbench_log.*
	(cd "$OUT" && pgbench -n -M prepared -h "$PGH" -p "$PGP" -U messenger_app -c 1 -T "$PGBENCH_TIME" -r -l --log-prefix=pgbench_log \
		-D user="$(p user_id)" -D org="$(p org_id)" -D zone="$(p zone_id)" -D thread="$THREAD" -D last="$LAST" \
		-D list_ids="$LIST_IDS" -D list_seqs="$LIST_SEQS" \
		-f "$OLDPWD/bench/history/$read.sql" "$DB") >"$OUT/pgbench-$read.txt" 2>&1 || { cat "$OUT/pgbench-$read.txt"; die "pgbench $read failed"; }
	cat "$OUT"/pgbench_log.* >"$OUT/pgbench-$read.log"
	rm -f "$OUT"/pgbench_log.*
	printf '  %-8s transactions %7d  p50 %6s  p95 %6s  p99 %6s  max %7s ms\n' "$read" "$(wc -l <"$OUT/pgbench-$read.log")" \
		"$(pgbench_p "$OUT/pgbench-$read.log" 50)" "$(pgbench_p "$OUT/pgbench-$read.log" 95)" "$(pgbench_p "$OUT/pgbench-$read.log" 99)" \
		"$(pgbench_p "$OUT/pgbench-$read.log" 100)" | tee -a "$OUT/pgbench.txt"
done

start_server memory "$OUT/server.log" "$DB"
quiet http
say "http: each read $RUNS times through the JSON API"
./bin/historygen http -url "http://$BENCH_ADDR" -plan "$PLAN" -runs "$RUNS" -json "$OUT/http.json" | tee "$OUT/http.txt"
stop_server
if grep -q '"level":"ERROR"' "$OUT/server.log"; then
	echo "server logged $(grep -c '"level":"ERROR"' "$OUT/server.log") errors; the first ones:"
	grep '"level":"ERROR"' "$OUT/server.log" | head -5
fi

say "results ($OUT)"
{
	echo "when: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+changes')"
	echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(free -g | awk '/^Mem:/ {print $2}') GiB; PostgreSQL $(psql_admin -d "$DB" -Atc 'SHOW server_version') (shared_buffers $(psql_admin -d "$DB" -Atc 'SHOW shared_buffers'))"
	echo "busy before each step (% of a core): $(paste -sd' ' "$OUT/background-cpu.txt" | sed 's/: /=/g')"
	jq -r '"data: \(.messages) messages, \(.conversations) conversations (\(.conversations_over_100k) over 100,000 messages), \(.users) users, \(.read_receipts) read receipts; heavy user \(.sub): \(.heavy_conversations) conversations, \(.heavy_unread_conversations) unread; thread \(.thread): \(.thread_last_seq) messages, \(.thread_members) members",
	       "load: \(.seconds.total | round) s (copy \(.seconds.copy | round) s, keys \(.seconds.indexes | round) s, VACUUM ANALYZE \(.seconds.vacuum | round) s)"' "$PLAN"
	tail -1 "$OUT/sizes.txt"
	tail -1 "$OUT/check.txt"
	echo "pgbench, each read's transaction at the database (1 client, ${PGBENCH_TIME}s, prepared: -M prepared, as store/prepared.go runs them), ms:"
	cat "$OUT/pgbench.txt"
	for f in store http; do
		jq -r '
		  def r(x): (x * 100 | round) / 100;
		  (.stats[] | select(.name == "ceiling") | .p99_ms) as $c |
		  "\(.where), \(.runs) runs each, ms:",
		  (.stats[] | "  \(.name | . + " " * (20 - length)) p50 \(r(.p50_ms))  p95 \(r(.p95_ms))  p99 \(r(.p99_ms))  max \(r(.max_ms))  p99 = \(if $c > 0 then r(.p99_ms / $c) else "?" end)x ceiling  errors \(.errors)")
		' "$OUT/$f.json"
	done
} | tee "$OUT/summary.txt"
