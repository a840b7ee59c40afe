#!/usr/bin/env bash
# make bench: the messenger under the portal's load, and PostgreSQL's own ceiling for the
# same send transaction. See docs/performance.md.
#
#   1. builds bin/messenger and bin/loadgen;
#   2. makes a fresh database messenger_bench on the local PostgreSQL (DROP/CREATE);
#   3. starts the server on it (MESSENGER_DEV=0, a bench JWT secret, the memory engine or,
#      with BENCH_REDIS=1, Redis) on 127.0.0.1:8101 and waits for /readyz;
#   4. runs bin/loadgen: USERS users with one SSE stream each, RATE messages/s for DURATION;
#   5. stops the server, then runs pgbench with bench/send.sql (the send transaction, as
#      messenger_app, over the conversations the load generator made) for PGBENCH_TIME s;
#   6. prints both: durable sends/s against the pgbench ceiling.
#
# Environment (defaults): USERS (100) RATE (1000) DURATION (60s) WARMUP (5s) SENDERS (64)
# LOADGEN_GROUPS (auto) BENCH_REDIS (0) BENCH_ADDR (127.0.0.1:8101) PGBENCH_CLIENTS (16)
# PGBENCH_TIME (30) PGBENCH_SIGNIN (0: also measure the per-request sign-in transaction)
# SKIP_LOADGEN (0: 1 seeds the conversations with bench/seed.sql and runs pgbench only)
# BENCH_WAITS (0: 1 samples what the server's PostgreSQL backends wait on during the load,
# five times a second, and prints the most common waits)
# BENCH_WAIT_QUIET (0: seconds to wait for the machine to be quiet, below 20 % of a core,
# before each measurement; a busy machine measures its neighbours too)
# BENCH_PUSH (0: 1 gives the server VAPID keys, so every send also enqueues its push job,
# as production with web push does; the load generator's users are online, so few pushes go)
# The server keeps the default rate limits unless this load would meet them (a user
# sending more than 10/s on average, more than 250 users signing in from this address):
# then it gets larger ones, printed and kept in bench/out/<time>/rate-limits.txt.
# BENCH_PGHOST (127.0.0.1) BENCH_PGPORT (5432) BENCH_PGUSER (postgres) BENCH_DB
# (messenger_bench). Results go to bench/out/<time>/.
set -euo pipefail
cd "$(dirname "$0")/.."

USERS=${USERS:-100}
RATE=${RATE:-1000}
DURATION=${DURATION:-60s}
WARMUP=${WARMUP:-5s}
SENDERS=${SENDERS:-64}
LOADGEN_GROUPS=${LOADGEN_GROUPS:-auto}
BENCH_REDIS=${BENCH_REDIS:-0}
BENCH_ADDR=${BENCH_ADDR:-127.0.0.1:8101}
PGBENCH_CLIENTS=${PGBENCH_CLIENTS:-16}
PGBENCH_TIME=${PGBENCH_TIME:-30}
PGBENCH_SIGNIN=${PGBENCH_SIGNIN:-0}
SKIP_LOADGEN=${SKIP_LOADGEN:-0}
BENCH_WAIT_QUIET=${BENCH_WAIT_QUIET:-0}
BENCH_WAITS=${BENCH_WAITS:-0}
BENCH_PUSH=${BENCH_PUSH:-0}
PGH=${BENCH_PGHOST:-127.0.0.1}
PGP=${BENCH_PGPORT:-5432}
PGU=${BENCH_PGUSER:-postgres}
DB=${BENCH_DB:-messenger_bench}
REDIS=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/0}

OUT=bench/out/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
say() { printf '\n== %s\n' "$*"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -h "$PGH" -p "$PGP" -U "$PGU" "$@"; }

# busy_pct: the machine's CPU use over 2 s, in percent of one core.
busy_pct() {
	local a b
	read -r -a a </proc/stat
	sleep 2
	read -r -a b </proc/stat
	echo $(((b[1] + b[2] + b[3] + b[6] + b[7] + b[8] - a[1] - a[2] - a[3] - a[6] - a[7] - a[8]) / 2))
}
# quiet WHAT: report how busy the machine is before a measurement; with BENCH_WAIT_QUIET,
# wait for it to calm down first.
quiet() {
	local busy waited=0
	busy=$(busy_pct)
	while [ "$busy" -gt 20 ] && [ "$waited" -lt "$BENCH_WAIT_QUIET" ]; do
		sleep 8
		waited=$((waited + 10))
		busy=$(busy_pct)
	done
	if [ "$busy" -gt 20 ]; then
		echo "bench: WARNING: before $1 the machine was already busy ($busy % of a core): other work skews the numbers" >&2
	else
		echo "machine quiet before $1 ($busy % of a core busy)"
	fi
	echo "$1: $busy" >>"$OUT/background-cpu.txt"
}

for tool in go psql pgbench curl jq; do
	command -v "$tool" >/dev/null || die "$tool is needed (apt-get install postgresql-client curl jq)"
done
pg_isready -q -h "$PGH" -p "$PGP" || die "no PostgreSQL at $PGH:$PGP"
if [ "$BENCH_REDIS" = 1 ]; then
	redis-cli -u "$REDIS" ping >/dev/null 2>&1 || die "BENCH_REDIS=1 but no Redis at $REDIS"
fi

say "build"
go build -o bin/messenger ./cmd/messenger
go build -o bin/loadgen ./cmd/loadgen

say "fresh database $DB on $PGH:$PGP"
psql_admin -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
OWNER_URL="postgres://$PGU@$PGH:$PGP/$DB?sslmode=disable"

# A secret for this run only: the server verifies, the load generator mints.
MESSENGER_JWT_SECRET=$(head -c 32 /dev/urandom | base64 | tr -d '\n=+/')
export MESSENGER_JWT_SECRET

SERVER_PID=
stop_server() {
	[ -n "$SERVER_PID" ] || return 0
	if kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		for _ in $(seq 1 150); do
			kill -0 "$SERVER_PID" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$SERVER_PID" 2>/dev/null; then
			echo "bench: the server did not stop within 15 s of SIGTERM; killing it" >&2
			kill -KILL "$SERVER_PID" 2>/dev/null || true
		fi
	fi
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=
}
trap stop_server EXIT

LOADGEN_RC=0
if [ "$SKIP_LOADGEN" != 1 ]; then
	say "server on $BENCH_ADDR (engine: $([ "$BENCH_REDIS" = 1 ] && echo redis || echo memory))"
	redis_env=(-u REDIS_URL)
	[ "$BENCH_REDIS" = 1 ] && redis_env=(REDIS_URL="$REDIS")
	# Rate limits (README): the defaults hold the default load, 100 users at 1,000 msg/s
	# (10/s a user against 30/s with a burst of 60; 100 sign-ins from this one address
	# against a burst of 300). A load that would meet them gets larger ones, and says so.
	rate_env=()
	per_user=$(awk -v r="$RATE" -v u="$USERS" 'BEGIN { x = 3 * r / u; printf "%d", (x == int(x)) ? x : int(x) + 1 }')
	if [ "$per_user" -gt 30 ]; then
		rate_env+=(MESSENGER_RATE_SEND="$per_user:$((per_user * 2))")
	fi
	if [ "$USERS" -gt 250 ]; then
		rate_env+=(MESSENGER_RATE_SIGNIN_IP="$(((USERS + 9) / 10)):$((USERS * 2))")
	fi
	if [ ${#rate_env[@]} -gt 0 ]; then
		echo "bench: this load would meet the default rate limits; the server runs with ${rate_env[*]}" | tee "$OUT/rate-limits.txt"
	fi
	if [ "$BENCH_PUSH" = 1 ]; then
		# shellcheck disable=SC2207
		rate_env+=($(./bin/messenger vapid-keys) MESSENGER_VAPID_SUBJECT=mailto:bench@localhost.localdomain)
		echo "bench: web push on (VAPID keys for this run): every send enqueues its push job"
	fi
	env -u MESSENGER_APP_DATABASE_URL -u MESSENGER_JWKS_URL -u MESSENGER_PORTAL_ORIGINS "${redis_env[@]}" ${rate_env[@]+"${rate_env[@]}"} \
		DATABASE_URL="$OWNER_URL" MESSENGER_DEV=0 MESSENGER_SCAN=off MESSENGER_LOG_LEVEL=warn MESSENGER_METRICS_ADDR=off \
		MESSENGER_ADDR="$BENCH_ADDR" MESSENGER_BASE_URL="http://$BENCH_ADDR" MESSENGER_DATA_DIR="$OUT/data" \
		./bin/messenger serve >"$OUT/server.log" 2>&1 &
	SERVER_PID=$!
	ready=
	for _ in $(seq 1 300); do
		kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$OUT/server.log" >&2; die "the server exited while starting"; }
		if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$BENCH_ADDR/readyz")" = 200 ]; then
			ready=1
			break
		fi
		sleep 0.1
	done
	[ -n "$ready" ] || { tail -20 "$OUT/server.log" >&2; die "the server was not ready within 30 s"; }
	echo "server pid $SERVER_PID ready"

	say "loadgen: $USERS users, $RATE msg/s for $DURATION (+$WARMUP warm-up)"
	# The bench cluster's postmaster, when it runs on this machine: loadgen counts its CPU
	# (and its backends') apart from any other PostgreSQL here.
	PG_PID=$(head -1 "$(psql_admin -d "$DB" -Atc 'SHOW data_directory')/postmaster.pid" 2>/dev/null || echo 0)
	quiet loadgen
	WAITS_PID=
	if [ "$BENCH_WAITS" = 1 ]; then
		(
			sleep 10 # past the streams, the conversations and most of the warm-up
			while kill -0 "$SERVER_PID" 2>/dev/null; do
				psql -X -h "$PGH" -p "$PGP" -U "$PGU" -d "$DB" -Atc "
					SELECT coalesce(wait_event_type, 'CPU') || ':' || coalesce(wait_event, '-') || '  ' ||
					       left(regexp_replace(query, '\s+', ' ', 'g'), 50)
					  FROM pg_stat_activity
					 WHERE state = 'active' AND usename = 'messenger_app' AND pid <> pg_backend_pid()" 2>/dev/null
				sleep 0.2
			done >"$OUT/pg-waits.txt"
		) &
		WAITS_PID=$!
	fi
	set +e
	./bin/loadgen -url "http://$BENCH_ADDR" -users "$USERS" -rate "$RATE" -duration "$DURATION" \
		-warmup "$WARMUP" -senders "$SENDERS" -groups "$LOADGEN_GROUPS" -pid "$SERVER_PID" -pg-pid "${PG_PID:-0}" -json \
		>"$OUT/loadgen.json" 2> >(tee "$OUT/loadgen.txt" >&2)
	LOADGEN_RC=$?
	set -e
	[ "$LOADGEN_RC" = 0 ] || echo "bench: loadgen failed (exit $LOADGEN_RC); see $OUT/loadgen.txt" >&2
	if [ -n "$WAITS_PID" ]; then
		kill "$WAITS_PID" 2>/dev/null || true
		wait "$WAITS_PID" 2>/dev/null || true
		say "what the server's backends waited on (samples, wait, statement)"
		sort "$OUT/pg-waits.txt" | uniq -c | sort -rn | head -12
	fi
	say "stop the server"
	stop_server
	if grep -q '"level":"ERROR"' "$OUT/server.log"; then
		echo "server logged $(grep -c '"level":"ERROR"' "$OUT/server.log") errors; the first ones:"
		grep '"level":"ERROR"' "$OUT/server.log" | head -5
	fi
fi

# pgbench runs on the conversations the load generator made; without them (no loadgen, or
# it stopped before making them) it needs the schema and bench/seed.sql's.
if [ "$(psql_admin -d "$DB" -Atc "SELECT to_regclass('public.conversations') IS NOT NULL")" != t ]; then
	say "migrate $DB (the server did not)"
	env -u MESSENGER_APP_DATABASE_URL DATABASE_URL="$OWNER_URL" MESSENGER_DEV=0 MESSENGER_LOG_LEVEL=warn MESSENGER_METRICS_ADDR=off \
		MESSENGER_DATA_DIR="$OUT/data" ./bin/messenger migrate >>"$OUT/server.log" 2>&1
fi
SEEDED=0
if [ "$(psql_admin -d "$DB" -Atc "SELECT count(*) FROM conversations")" = 0 ]; then
	say "seed $USERS users and their conversations with bench/seed.sql"
	psql_admin -d "$DB" -v users="$USERS" -v group_size=10 -f bench/seed.sql
	SEEDED=1
fi
psql_admin -d "$DB" <<'SQL'
DROP TABLE IF EXISTS bench_pairs;
CREATE TABLE bench_pairs AS
SELECT row_number() OVER (ORDER BY p.conversation_id, p.user_id) AS n,
       p.conversation_id, p.user_id, p.org_id, u.zone_id, u.sub, u.name, u.role
  FROM conversation_participants p
  JOIN users u ON u.id = p.user_id
  JOIN conversations c ON c.id = p.conversation_id
 WHERE p.left_at IS NULL AND u.sub LIKE 'bench-user-%'
   AND c.kind <> 'announcement'; -- where only teachers post, and the database says so
ALTER TABLE bench_pairs ADD PRIMARY KEY (n);
GRANT SELECT ON bench_pairs TO messenger_app;
ANALYZE;
SQL
NPAIRS=$(psql_admin -d "$DB" -Atc "SELECT count(*) FROM bench_pairs")
[ "$NPAIRS" -gt 0 ] || die "no bench conversations to run pgbench on"
quiet pgbench

say "pgbench: the send transaction as messenger_app, $PGBENCH_CLIENTS clients, ${PGBENCH_TIME}s, $NPAIRS (conversation, member) pairs"
pgbench -n -M prepared -h "$PGH" -p "$PGP" -U messenger_app -c "$PGBENCH_CLIENTS" -j 2 -T "$PGBENCH_TIME" \
	-D npairs="$NPAIRS" -f bench/send.sql "$DB" 2>&1 | tee "$OUT/pgbench.txt"
PG_TPS=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$OUT/pgbench.txt")
PG_LAT=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$OUT/pgbench.txt")

SIGNIN_TPS=
if [ "$PGBENCH_SIGNIN" = 1 ]; then
	say "pgbench: the per-request sign-in transaction, $PGBENCH_CLIENTS clients, ${PGBENCH_TIME}s"
	pgbench -n -M extended -h "$PGH" -p "$PGP" -U messenger_app -c "$PGBENCH_CLIENTS" -j 2 -T "$PGBENCH_TIME" \
		-D npairs="$NPAIRS" -f bench/signin.sql "$DB" 2>&1 | tee "$OUT/pgbench-signin.txt"
	SIGNIN_TPS=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$OUT/pgbench-signin.txt")
fi

say "results ($OUT)"
{
	echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(free -g | awk '/^Mem:/ {print $2}') GiB"
	echo "PostgreSQL: $(psql_admin -d "$DB" -Atc 'SHOW server_version'), engine: $([ "$BENCH_REDIS" = 1 ] && echo redis || echo memory)"
	if [ "$SKIP_LOADGEN" != 1 ] && [ -s "$OUT/loadgen.json" ]; then
		jq -r --arg tps "${PG_TPS:-0}" '
		  def r(x): (x * 100 | round) / 100;
		  "loadgen: \(.users) users, target \(.rate_target) msg/s for \(.duration_s)s",
		  "  durable sends/s        \(r(.sends.per_second))  (ok \(.sends.ok), errors \(.sends.errors), skipped \(.sends.skipped))",
		  "  send latency ms        p50 \(r(.send_latency.p50_ms))  p95 \(r(.send_latency.p95_ms))  p99 \(r(.send_latency.p99_ms))  max \(r(.send_latency.max_ms))",
		  "  delivery latency ms    p50 \(r(.delivery_latency.p50_ms))  p95 \(r(.delivery_latency.p95_ms))  p99 \(r(.delivery_latency.p99_ms))  max \(r(.delivery_latency.max_ms))",
		  "  deliveries             \(.delivery.live) live + \(.delivery.recovered) caught up of \(.delivery.expected)",
		  "  lost / duplicated      \(.delivery.lost) / \(.delivery.duplicated)   resyncs \(.streams.resyncs)",
		  "  server RSS max         \(r(.rss.max_bytes / 1048576)) MiB",
		  "  CPU (% of a core)      server \((.cpu.server_pct // 0) | round)  postgres \(.cpu.postgres_pct | round)  loadgen \(.cpu.loadgen_pct | round)  other \(.cpu.other_pct | round) \(.cpu.other_top // [] | join(", "))",
		  (if ($tps | tonumber) > 0 then "  vs pgbench ceiling     \(r(100 * .sends.per_second / ($tps | tonumber)))%" else empty end)
		' "$OUT/loadgen.json"
	elif [ "$SKIP_LOADGEN" != 1 ]; then
		echo "loadgen: failed (exit $LOADGEN_RC), see $OUT/loadgen.txt"
	fi
	echo "pgbench send.sql: ${PG_TPS:-?} tps at $PGBENCH_CLIENTS clients (latency avg ${PG_LAT:-?} ms)$([ "$SEEDED" = 1 ] && echo ', on seeded conversations')"
	[ -z "$SIGNIN_TPS" ] || echo "pgbench signin.sql: $SIGNIN_TPS tps"
} | tee "$OUT/summary.txt"
exit "$LOADGEN_RC"
