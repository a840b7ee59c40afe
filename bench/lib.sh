# Shared by bench/run.sh, bench/pages.sh and bench/statements.sh (sourced, not run). They
# set bench_name, OUT, PGH, PGP, PGU, BENCH_ADDR, BENCH_PPROF_ADDR, BENCH_WAIT_QUIET, REDIS
# and rate_env before calling these.

# say WHAT: a step's heading.
say() { printf '\n== %s\n' "$*"; }

# die WHY: stop the bench, saying why (after its name).
die() {
	printf '%s: %s\n' "$bench_name" "$*" >&2
	exit 1
}

# psql_admin ARGS...: psql as the database's admin, stopping at the first error.
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
# wait for it to calm down first. Each step's figure goes to $OUT/background-cpu.txt.
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

# ratio A B: A/B to two decimals ("?" without B).
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "?" }'
}

# pgbench_tps FILE: the tps pgbench printed, without the initial connection time.
pgbench_tps() {
	sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$1" | cut -d. -f1
}

SERVER_PID=
# start_server ENGINE LOG DB [ENV...]: the messenger in production mode on $BENCH_ADDR over
# database DB, with Go's profiler on $BENCH_PPROF_ADDR; waits for /readyz.
start_server() {
	local engine=$1 log=$2 db=$3 ready=
	shift 3
	local redis_env=(-u REDIS_URL)
	[ "$engine" = redis ] && redis_env=(REDIS_URL="$REDIS")
	say "server on $BENCH_ADDR (engine: $engine)"
	env -u MESSENGER_APP_DATABASE_URL -u MESSENGER_JWKS_URL -u MESSENGER_PORTAL_ORIGINS "${redis_env[@]}" ${rate_env[@]+"${rate_env[@]}"} "$@" \
		DATABASE_URL="postgres://$PGU@$PGH:$PGP/$db?sslmode=disable" MESSENGER_DEV=0 MESSENGER_SCAN=off MESSENGER_LOG_LEVEL=warn \
		MESSENGER_METRICS_ADDR=off MESSENGER_PPROF_ADDR="$BENCH_PPROF_ADDR" \
		MESSENGER_ADDR="$BENCH_ADDR" MESSENGER_BASE_URL="http://$BENCH_ADDR" MESSENGER_DATA_DIR="$OUT/data" \
		./bin/messenger serve >"$log" 2>&1 &
	SERVER_PID=$!
	for _ in $(seq 1 300); do
		kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$log" >&2; die "the server exited while starting"; }
		if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$BENCH_ADDR/readyz")" = 200 ]; then
			ready=1
			break
		fi
		sleep 0.1
	done
	[ -n "$ready" ] || { tail -20 "$log" >&2; die "the server was not ready within 30 s"; }
	echo "server pid $SERVER_PID ready"
}

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

# prepare_ceilings DB: the tables the pgbench scripts read. bench_hot: the hot conversations
# (the bench users' groups), each with its creator as the minimal send's sender;
# bench_pairs: every (member, hot conversation), for send.sql and signin.sql;
# bench_minimal_messages: messages' row and indexes without its triggers, foreign keys
# and policies, for minimal.sql.
prepare_ceilings() {
	psql_admin -d "$1" <<'SQL'
DROP TABLE IF EXISTS bench_hot, bench_pairs, bench_minimal_messages;
CREATE TABLE bench_hot AS
SELECT row_number() OVER (ORDER BY c.id) AS n, c.id AS conversation_id, c.org_id, c.created_by AS sender_id
  FROM conversations c JOIN users u ON u.id = c.created_by
 WHERE c.kind = 'group' AND u.sub LIKE 'bench-user-%';
ALTER TABLE bench_hot ADD PRIMARY KEY (n);
CREATE TABLE bench_pairs AS
SELECT row_number() OVER (ORDER BY p.conversation_id, p.user_id) AS n,
       p.conversation_id, p.user_id, p.org_id, u.zone_id, u.sub, u.name, u.role
  FROM conversation_participants p
  JOIN users u ON u.id = p.user_id
  JOIN bench_hot h ON h.conversation_id = p.conversation_id
 WHERE p.left_at IS NULL;
ALTER TABLE bench_pairs ADD PRIMARY KEY (n);
GRANT SELECT ON bench_pairs TO messenger_app;
CREATE TABLE bench_minimal_messages (LIKE messages INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS INCLUDING INDEXES);
ANALYZE;
SQL
}
