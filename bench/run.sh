#!/usr/bin/env bash
# make bench: the messenger under the portal's load, open loop, and in the same run the
# ceilings it is measured against. See docs/performance.md ("Running the bench").
#
#   1. builds bin/messenger and bin/loadgen;
#   2. for each engine (BENCH_ENGINES): a fresh database messenger_bench on the local
#      PostgreSQL (DROP/CREATE), the server on it (MESSENGER_DEV=0, a bench JWT secret, the
#      memory engine or Redis, Go's profiler on a loopback listener of its own), then
#      bin/loadgen: USERS users with one SSE stream each, RATE messages/s offered open loop
#      for DURATION; the server's CPU profile over the measured window (BENCH_PROFILE);
#   3. stops the server, then runs the ceilings with pgbench, 16 clients, on the run's hot
#      conversations (the USERS/10 groups): bench/minimal.sql, the minimal durable send
#      (number, insert, commit), and bench/send.sql, the server's own send transaction;
#   4. prints everything as ratios to the minimal ceiling.
#
# Modes (BENCH_MODE):
#   portal      (default) the portal's workload: RATE 1000, each send to a random user's
#               direct or group conversation;
#   saturation  RATE 8000 (far above what two cores take), every send to one of the
#               group conversations, the same hot conversations the ceilings use: the
#               durable sends/s the server holds ÷ the minimal ceiling. At most
#               LOADGEN_MAX_IN_FLIGHT (2000) sends in flight, the rest shed and counted,
#               and LOADGEN_TIMEOUT 60s, so that no send outlives its deadline.
#
# Environment (defaults): USERS (100) RATE (by mode) DURATION (60s) WARMUP (5s) CONNS (256)
# LOADGEN_GROUPS (auto) LOADGEN_CONVS (by mode: all | groups) LOADGEN_TIMEOUT (by mode: 10s
# | 60s) LOADGEN_MAX_IN_FLIGHT (by mode: 0, no bound | 2000)
# BENCH_ENGINES (memory; "memory redis" runs the load on both, one after the other; the
# older BENCH_REDIS=1 means redis) BENCH_ADDR (127.0.0.1:8101) BENCH_PPROF_ADDR
# (127.0.0.1:8102) BENCH_PROFILE (1: the server's CPU profile for PROFILE_SECONDS, 20,
# from the start of the measured window, saved as cpu-<engine>.pprof, its top printed)
# PGBENCH_CLIENTS (16) PGBENCH_TIME (30) PGBENCH_SIGNIN (0: also the sign-in transaction)
# SKIP_LOADGEN (0: 1 seeds the conversations with bench/seed.sql and runs pgbench only)
# BENCH_WAITS (0: 1 samples what the server's PostgreSQL backends wait on during the load)
# BENCH_WAIT_QUIET (0: seconds to wait for the machine to be quiet, below 20 % of a core,
# before each measurement; a busy machine measures its neighbours too)
# BENCH_PUSH (0: 1 gives the server VAPID keys and every user a push subscription, so each
# window's push sweep asks about every member (all live: no push is sent); the jobs' times
# are saved as jobs-<engine>.csv, beside the sends' sends-<engine>.csv)
# BENCH_STATEMENTS (0: 1 also measures what each of the send's statements costs, on a
# private PostgreSQL with pg_stat_statements: bench/statements.sh)
# BENCH_PGHOST (127.0.0.1) BENCH_PGPORT (5432) BENCH_PGUSER (postgres) BENCH_DB
# (messenger_bench). The server keeps the default rate limits unless this load would meet
# them; then it gets larger ones, printed. Results go to bench/out/<time>/.
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_MODE=${BENCH_MODE:-portal}
case "$BENCH_MODE" in
portal)
	RATE=${RATE:-1000} LOADGEN_CONVS=${LOADGEN_CONVS:-all}
	LOADGEN_TIMEOUT=${LOADGEN_TIMEOUT:-10s} LOADGEN_MAX_IN_FLIGHT=${LOADGEN_MAX_IN_FLIGHT:-0}
	;;
saturation)
	# Far past capacity an unbounded open loop only measures how the server fails once every
	# send waits longer than its timeout; to measure what it holds, the generator keeps 2,000
	# sends in flight at most (the rest are shed, counted) with a deadline they never reach.
	RATE=${RATE:-8000} LOADGEN_CONVS=${LOADGEN_CONVS:-groups}
	LOADGEN_TIMEOUT=${LOADGEN_TIMEOUT:-60s} LOADGEN_MAX_IN_FLIGHT=${LOADGEN_MAX_IN_FLIGHT:-2000}
	;;
*) echo "bench: BENCH_MODE=$BENCH_MODE: want portal or saturation" >&2; exit 2 ;;
esac
USERS=${USERS:-100}
DURATION=${DURATION:-60s}
WARMUP=${WARMUP:-5s}
CONNS=${CONNS:-256}
LOADGEN_GROUPS=${LOADGEN_GROUPS:-auto}
if [ -z "${BENCH_ENGINES:-}" ]; then
	BENCH_ENGINES=memory
	[ "${BENCH_REDIS:-0}" = 1 ] && BENCH_ENGINES=redis
fi
BENCH_ADDR=${BENCH_ADDR:-127.0.0.1:8101}
BENCH_PPROF_ADDR=${BENCH_PPROF_ADDR:-127.0.0.1:8102}
BENCH_PROFILE=${BENCH_PROFILE:-1}
PROFILE_SECONDS=${PROFILE_SECONDS:-20}
PGBENCH_CLIENTS=${PGBENCH_CLIENTS:-16}
PGBENCH_TIME=${PGBENCH_TIME:-30}
PGBENCH_SIGNIN=${PGBENCH_SIGNIN:-0}
SKIP_LOADGEN=${SKIP_LOADGEN:-0}
BENCH_WAIT_QUIET=${BENCH_WAIT_QUIET:-0}
BENCH_WAITS=${BENCH_WAITS:-0}
BENCH_PUSH=${BENCH_PUSH:-0}
BENCH_STATEMENTS=${BENCH_STATEMENTS:-0}
PGH=${BENCH_PGHOST:-127.0.0.1}
PGP=${BENCH_PGPORT:-5432}
PGU=${BENCH_PGUSER:-postgres}
DB=${BENCH_DB:-messenger_bench}
REDIS=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/0}

OUT=bench/out/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
bench_name=bench
# shellcheck source=bench/lib.sh
. bench/lib.sh

for tool in go psql pgbench curl jq; do
	command -v "$tool" >/dev/null || die "$tool is needed (apt-get install postgresql-client curl jq)"
done
pg_isready -q -h "$PGH" -p "$PGP" || die "no PostgreSQL at $PGH:$PGP"
case " $BENCH_ENGINES " in
*" redis "*) redis-cli -u "$REDIS" ping >/dev/null 2>&1 || die "the redis engine needs a Redis at $REDIS" ;;
esac
for e in $BENCH_ENGINES; do
	[ "$e" = memory ] || [ "$e" = redis ] || die "BENCH_ENGINES: $e is not memory or redis"
done

say "build"
go build -o bin/messenger ./cmd/messenger
go build -o bin/loadgen ./cmd/loadgen

OWNER_URL="postgres://$PGU@$PGH:$PGP/$DB?sslmode=disable"
fresh_db() {
	say "fresh database $DB on $PGH:$PGP"
	psql_admin -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
}

# A secret for this run only: the server verifies, the load generator mints.
MESSENGER_JWT_SECRET=$(head -c 32 /dev/urandom | base64 | tr -d '\n=+/')
export MESSENGER_JWT_SECRET
trap stop_server EXIT

# Rate limits (README): the defaults hold the portal load, 100 users at 1,000 msg/s (10/s a
# user against 30/s with a burst of 60; 100 sign-ins from this one address against a burst
# of 300). A load that would meet them gets larger ones, and says so.
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
	echo "bench: web push on (VAPID keys for this run, every user subscribed): each window's sweep asks who is away"
fi

LOADGEN_RC=0
RAN_ENGINES=()
if [ "$SKIP_LOADGEN" != 1 ]; then
	for engine in $BENCH_ENGINES; do
		fresh_db
		start_server "$engine" "$OUT/server-$engine.log" "$DB"
		say "loadgen ($engine engine, $BENCH_MODE): $USERS users, $RATE msg/s offered open loop to $LOADGEN_CONVS conversations for $DURATION (+$WARMUP warm-up)"
		# The bench cluster's postmaster, when it runs on this machine: loadgen counts its CPU
		# (and its backends') apart from any other PostgreSQL here.
		PG_PID=$(head -1 "$(psql_admin -d "$DB" -Atc 'SHOW data_directory')/postmaster.pid" 2>/dev/null || echo 0)
		quiet "loadgen-$engine"
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
				done >"$OUT/pg-waits-$engine.txt"
			) &
			WAITS_PID=$!
		fi
		push_args=()
		if [ "$BENCH_PUSH" = 1 ]; then
			push_args=(-push-subscribe)
		fi
		profile_args=()
		if [ "$BENCH_PROFILE" = 1 ]; then
			profile_args=(-profile-url "http://$BENCH_PPROF_ADDR/debug/pprof/profile" -profile-for "${PROFILE_SECONDS}s" -profile-out "$OUT/cpu-$engine.pprof"
				-self-profile "$OUT/cpu-loadgen-$engine.pprof")
		fi
		set +e
		env ${LOADGEN_GOGC:+GOGC=$LOADGEN_GOGC} ${LOADGEN_GOMEMLIMIT:+GOMEMLIMIT=$LOADGEN_GOMEMLIMIT} ./bin/loadgen -url "http://$BENCH_ADDR" -users "$USERS" -rate "$RATE" -duration "$DURATION" \
			-warmup "$WARMUP" -conns "$CONNS" -convs "$LOADGEN_CONVS" -timeout "$LOADGEN_TIMEOUT" -max-in-flight "$LOADGEN_MAX_IN_FLIGHT" \
			-groups "$LOADGEN_GROUPS" ${push_args[@]+"${push_args[@]}"} -timeline "$OUT/timeline-$engine.csv" -send-timeline "$OUT/sends-$engine.csv" -pid "$SERVER_PID" -pg-pid "${PG_PID:-0}" ${profile_args[@]+"${profile_args[@]}"} -json \
			>"$OUT/loadgen-$engine.json" 2> >(tee "$OUT/loadgen-$engine.txt" >&2)
		rc=$?
		set -e
		[ "$rc" = 0 ] || { echo "bench: loadgen failed (exit $rc); see $OUT/loadgen-$engine.txt" >&2; LOADGEN_RC=$rc; }
		if [ -n "$WAITS_PID" ]; then
			kill "$WAITS_PID" 2>/dev/null || true
			wait "$WAITS_PID" 2>/dev/null || true
			say "what the server's backends waited on (samples, wait, statement)"
			sort "$OUT/pg-waits-$engine.txt" | uniq -c | sort -rn | head -12
		fi
		say "stop the server"
		stop_server
		if [ "$BENCH_PUSH" = 1 ]; then
			# When each job was inserted, came due, started and ended (Unix ms), to set beside
			# the sends' timeline: which of a job's moments the slow sends fell on.
			psql_admin -d "$DB" -c "COPY (SELECT id, kind, queue, state,
				round(extract(epoch FROM created_at) * 1000, 3) AS created_ms,
				round(extract(epoch FROM scheduled_at) * 1000, 3) AS scheduled_ms,
				round(extract(epoch FROM attempted_at) * 1000, 3) AS attempted_ms,
				round(extract(epoch FROM finalized_at) * 1000, 3) AS finalized_ms
				FROM river_job ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)" >"$OUT/jobs-$engine.csv"
		fi
		if grep -q '"level":"ERROR"' "$OUT/server-$engine.log"; then
			echo "server logged $(grep -c '"level":"ERROR"' "$OUT/server-$engine.log") errors; the first ones:"
			grep '"level":"ERROR"' "$OUT/server-$engine.log" | head -5
		fi
		if [ -s "$OUT/cpu-$engine.pprof" ]; then
			say "where the server's CPU went ($engine engine, ${PROFILE_SECONDS}s of the measured window)"
			go tool pprof -top -nodecount=30 bin/messenger "$OUT/cpu-$engine.pprof" 2>/dev/null | tee "$OUT/cpu-$engine.top.txt" | head -40
			go tool pprof -top -cum -nodecount=40 bin/messenger "$OUT/cpu-$engine.pprof" >"$OUT/cpu-$engine.cum.txt" 2>/dev/null || true
		fi
		if [ -s "$OUT/cpu-loadgen-$engine.pprof" ]; then
			go tool pprof -top -cum -nodecount=40 bin/loadgen "$OUT/cpu-loadgen-$engine.pprof" >"$OUT/cpu-loadgen-$engine.cum.txt" 2>/dev/null || true
		fi
		RAN_ENGINES+=("$engine")
	done
else
	fresh_db
fi

# The ceilings run on the conversations the (last) load made; without them (no loadgen, or
# it stopped before making them) they need the schema and bench/seed.sql's.
if [ "$(psql_admin -d "$DB" -Atc "SELECT to_regclass('public.conversations') IS NOT NULL")" != t ]; then
	say "migrate $DB (the server did not)"
	env -u MESSENGER_APP_DATABASE_URL DATABASE_URL="$OWNER_URL" MESSENGER_DEV=0 MESSENGER_LOG_LEVEL=warn MESSENGER_METRICS_ADDR=off \
		MESSENGER_DATA_DIR="$OUT/data" ./bin/messenger migrate >>"$OUT/server-migrate.log" 2>&1
fi
SEEDED=0
if [ "$(psql_admin -d "$DB" -Atc "SELECT count(*) FROM conversations c JOIN users u ON u.id = c.created_by WHERE c.kind = 'group' AND u.sub LIKE 'bench-user-%'")" = 0 ]; then
	say "seed $USERS users and their conversations with bench/seed.sql"
	psql_admin -d "$DB" -v users="$USERS" -v group_size=10 -f bench/seed.sql
	SEEDED=1
fi
prepare_ceilings "$DB"
NPAIRS=$(psql_admin -d "$DB" -Atc "SELECT count(*) FROM bench_pairs")
NHOT=$(psql_admin -d "$DB" -Atc "SELECT count(*) FROM bench_hot")
[ "$NHOT" -gt 0 ] || die "no hot conversations to run pgbench on"

quiet pgbench-minimal
say "pgbench: the minimal durable send (bench/minimal.sql), $PGBENCH_CLIENTS clients, ${PGBENCH_TIME}s, $NHOT hot conversations"
pgbench -n -M prepared -h "$PGH" -p "$PGP" -U "$PGU" -c "$PGBENCH_CLIENTS" -j 2 -T "$PGBENCH_TIME" \
	-D nhot="$NHOT" -f bench/minimal.sql "$DB" 2>&1 | tee "$OUT/pgbench-minimal.txt"
MIN_TPS=$(pgbench_tps "$OUT/pgbench-minimal.txt")

quiet pgbench-send
say "pgbench: the server's send transaction (bench/send.sql) as messenger_app, $PGBENCH_CLIENTS clients, ${PGBENCH_TIME}s, $NPAIRS (member, hot conversation) pairs"
pgbench -n -M prepared -h "$PGH" -p "$PGP" -U messenger_app -c "$PGBENCH_CLIENTS" -j 2 -T "$PGBENCH_TIME" \
	-D npairs="$NPAIRS" -f bench/send.sql "$DB" 2>&1 | tee "$OUT/pgbench-send.txt"
SEND_TPS=$(pgbench_tps "$OUT/pgbench-send.txt")

SIGNIN_TPS=
if [ "$PGBENCH_SIGNIN" = 1 ]; then
	say "pgbench: the per-request sign-in transaction, $PGBENCH_CLIENTS clients, ${PGBENCH_TIME}s"
	pgbench -n -M extended -h "$PGH" -p "$PGP" -U messenger_app -c "$PGBENCH_CLIENTS" -j 2 -T "$PGBENCH_TIME" \
		-D npairs="$NPAIRS" -f bench/signin.sql "$DB" 2>&1 | tee "$OUT/pgbench-signin.txt"
	SIGNIN_TPS=$(pgbench_tps "$OUT/pgbench-signin.txt")
fi

STATEMENTS_RC=0
if [ "$BENCH_STATEMENTS" = 1 ]; then
	set +e
	OUT="$OUT" bash bench/statements.sh
	STATEMENTS_RC=$?
	set -e
fi

say "results ($OUT)"
{
	echo "when: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+changes')"
	echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(free -g | awk '/^Mem:/ {print $2}') GiB; PostgreSQL $(psql_admin -d "$DB" -Atc 'SHOW server_version') (synchronous_commit $(psql_admin -d "$DB" -Atc 'SHOW synchronous_commit'))"
	echo "busy before each step (% of a core): $(paste -sd' ' "$OUT/background-cpu.txt" | sed 's/: /=/g')"
	echo "ceilings ($PGBENCH_CLIENTS clients, ${PGBENCH_TIME}s, prepared, $NHOT hot conversations$([ "$SEEDED" = 1 ] && echo ', seeded'))"
	echo "  minimal durable send (bench/minimal.sql)   ${MIN_TPS:-?} tps  = 1.00"
	echo "  the server's send    (bench/send.sql)      ${SEND_TPS:-?} tps  = $(ratio "${SEND_TPS:-0}" "${MIN_TPS:-0}")x minimal"
	[ -z "$SIGNIN_TPS" ] || echo "  the sign-in          (bench/signin.sql)    $SIGNIN_TPS tps"
	for engine in ${RAN_ENGINES[@]+"${RAN_ENGINES[@]}"}; do
		f="$OUT/loadgen-$engine.json"
		if [ -s "$f" ]; then
			jq -r --arg min "${MIN_TPS:-0}" --arg send "${SEND_TPS:-0}" --arg engine "$engine" --arg mode "$BENCH_MODE" '
			  def r(x): (x * 100 | round) / 100;
			  def ratio(a; b): if (b | tonumber) > 0 then "\(r(a / (b | tonumber)))x" else "?" end;
			  "\($mode), \($engine) engine: \(.users) users, \(.rate_target) msg/s offered open loop to \(.convs) conversations for \(.duration_s)s",
			  "  ACHIEVED durable sends/s  \(r(.sends.per_second)) of \(r(.sends.offered_per_second)) offered = \(ratio(.sends.per_second; $min)) the minimal ceiling, \(ratio(.sends.per_second; $send)) the send.sql ceiling",
			  "  errors                    \(.sends.errors) \(.sends.error_kinds | to_entries | map("\(.key)×\(.value)") | join(", "))   in flight max \(.sends.max_in_flight), at the end \(.sends.in_flight_at_end)\(if .sends.shed > 0 then ", shed by the generator \(.sends.shed)" else "" end)",
			  "  send ms (from due)        p50 \(r(.send_latency.p50_ms))  p95 \(r(.send_latency.p95_ms))  p99 \(r(.send_latency.p99_ms))  max \(r(.send_latency.max_ms))",
			  "  send→delivered ms         p50 \(r(.delivery_latency.p50_ms))  p95 \(r(.delivery_latency.p95_ms))  p99 \(r(.delivery_latency.p99_ms))  max \(r(.delivery_latency.max_ms))",
			  "  lost / duplicated         \(.delivery.lost) / \(.delivery.duplicated)   (\(.delivery.live) live + \(.delivery.recovered) caught up of \(.delivery.expected); resyncs \(.streams.resyncs); not stored \(.delivery.not_stored // "?"))",
			  "  server RSS max            \(r(.rss.max_bytes / 1048576)) MiB",
			  "  CPU (% of a core)         server \((.cpu.server_pct // 0) | round)  postgres \(.cpu.postgres_pct | round) (ended backends \((.cpu.postgres_ended_pct // 0) | round))  loadgen \(.cpu.loadgen_pct | round)  other \(.cpu.other_pct | round) \(.cpu.other_top // [] | join(", "))",
			  (if .profile then "  CPU profile               \(.profile) (top: \(.profile | sub("\\.pprof$"; ".top.txt")))" else empty end)
			' "$f"
		else
			echo "$BENCH_MODE, $engine engine: loadgen failed, see $OUT/loadgen-$engine.txt"
		fi
	done
	[ "$BENCH_STATEMENTS" != 1 ] || echo "statements: $OUT/statements.txt$([ "$STATEMENTS_RC" = 0 ] || echo " (failed, exit $STATEMENTS_RC)")"
} | tee "$OUT/summary.txt"
exit "$LOADGEN_RC"
