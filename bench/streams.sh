#!/usr/bin/env bash
# bench/streams.sh (make bench-streams): ten thousand live streams on one messenger process,
# against a bare net/http event-stream server holding as many in the same run.
#
#   1. builds bin/messenger and bin/streambench; checks the open-file limit (each server
#      needs one descriptor a stream, and so does the client);
#   2. starts the bare server (streambench bare) and the messenger on a fresh database
#      (BENCH_DB, messenger_streams) with the engine BENCH_ENGINE (memory | redis);
#   3. streambench run holds STREAMS streams on each in turn, from its own process: each
#      server's RSS with every stream open, BURSTS bursts (the messenger: a teacher's zone
#      announcement to a zone of STREAMS users; the bare server: one event of the same size
#      to every stream), each timed to every stream, a hold for heartbeats, then every
#      stream closed at once;
#      and, on the messenger, before the hold: a group of GROUP_SIZE members and one of 10
#      take GROUP_SENDS sends each at GROUP_RATE a second, each member's stream timed to
#      every message (send→delivered), and each send's own answer;
#   4. after the close, what the messenger logged (errors) and how many users' last_seen
#      was written.
# Results in bench/out/streams-<time>/: results.json, the servers' logs, summary.txt.
#
# Knobs: STREAMS (10000) BURSTS (10) HOLD (45s) SETTLE (10s) BENCH_ENGINE (memory)
# GROUP_SIZE (500; 0 skips the group phase) GROUP_SENDS (200) GROUP_RATE (20)
# BENCH_ADDR (127.0.0.1:8121) BARE_ADDR (127.0.0.1:8122) BENCH_PPROF_ADDR (127.0.0.1:8123)
# SERVER_ENV (more of the messenger's environment, e.g. GODEBUG=memprofilerate=512) BENCH_WAIT_QUIET (0) BENCH_PGHOST/BENCH_PGPORT/BENCH_PGUSER BENCH_DB BENCH_REDIS_URL.
set -euo pipefail
cd "$(dirname "$0")/.."

STREAMS=${STREAMS:-10000}
BURSTS=${BURSTS:-10}
HOLD=${HOLD:-45s}
SETTLE=${SETTLE:-10s}
GROUP_SIZE=${GROUP_SIZE:-500}
GROUP_SENDS=${GROUP_SENDS:-200}
GROUP_RATE=${GROUP_RATE:-20}
BENCH_ENGINE=${BENCH_ENGINE:-memory}
BENCH_ADDR=${BENCH_ADDR:-127.0.0.1:8121}
BARE_ADDR=${BARE_ADDR:-127.0.0.1:8122}
BENCH_PPROF_ADDR=${BENCH_PPROF_ADDR:-127.0.0.1:8123}
BENCH_WAIT_QUIET=${BENCH_WAIT_QUIET:-0}
PGH=${BENCH_PGHOST:-127.0.0.1}
PGP=${BENCH_PGPORT:-5432}
PGU=${BENCH_PGUSER:-postgres}
DB=${BENCH_DB:-messenger_streams}
REDIS=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/0}

OUT=bench/out/streams-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
bench_name=bench-streams
# shellcheck source=bench/lib.sh
. bench/lib.sh

pg_isready -q -h "$PGH" -p "$PGP" || die "no PostgreSQL at $PGH:$PGP"
[ "$BENCH_ENGINE" = memory ] || [ "$BENCH_ENGINE" = redis ] || die "BENCH_ENGINE: $BENCH_ENGINE is not memory or redis"
[ "$BENCH_ENGINE" = memory ] || redis-cli -u "$REDIS" ping >/dev/null 2>&1 || die "the redis engine needs a Redis at $REDIS"

# Each server holds a descriptor a stream, and the client one a stream too: the soft limit
# is raised to the hard one here (the messenger raises its own at start and logs it), and a
# hard limit too low for the streams is said plainly rather than met as refused connections.
need=$((STREAMS + 1000))
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
	die "this machine's hard limit of open files is $hard; $STREAMS streams need $need in each process (raise it: ulimit -Hn as root, or /etc/security/limits.conf), or run fewer: STREAMS=$((hard - 1000))"
fi
ulimit -n "$hard"
ports=$(awk '{ print $2 - $1 + 1 }' /proc/sys/net/ipv4/ip_local_port_range)
[ "$ports" -gt "$((2 * STREAMS))" ] || echo "bench: WARNING: $ports local ports for $STREAMS streams on each of two servers" >&2

say "build"
go build -o bin/messenger ./cmd/messenger
go build -o bin/streambench ./cmd/streambench

say "fresh database $DB on $PGH:$PGP"
psql_admin -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"

MESSENGER_JWT_SECRET=$(head -c 32 /dev/urandom | base64 | tr -d '\n=+/')
export MESSENGER_JWT_SECRET
BARE_PID=
cleanup() {
	stop_server
	[ -z "$BARE_PID" ] || kill "$BARE_PID" 2>/dev/null || true
}
trap cleanup EXIT

# Every stream's first request signs a new user in, all from this one address.
rate_env=(MESSENGER_RATE_SIGNIN_IP="$(((STREAMS + 9) / 10)):$((STREAMS * 2))" MESSENGER_RATE_SIGNIN_SUBJECT=10:20)

say "bare server on $BARE_ADDR"
./bin/streambench bare -addr "$BARE_ADDR" >"$OUT/bare.log" 2>&1 &
BARE_PID=$!
for _ in $(seq 1 100); do
	curl -sf "http://$BARE_ADDR/readyz" >/dev/null && break
	sleep 0.1
done
curl -sf "http://$BARE_ADDR/readyz" >/dev/null || die "the bare server did not start: $(cat "$OUT/bare.log")"

# shellcheck disable=SC2086
start_server "$BENCH_ENGINE" "$OUT/server.log" "$DB" MESSENGER_LOG_LEVEL=info ${SERVER_ENV:-}
grep -m1 '"open files' "$OUT/server.log" || true

quiet streams
say "streambench: $STREAMS streams on each, $BURSTS bursts, hold $HOLD"
./bin/streambench run -streams "$STREAMS" -bursts "$BURSTS" -hold "$HOLD" -settle "$SETTLE" \
	-group-size "$GROUP_SIZE" -group-sends "$GROUP_SENDS" -group-rate "$GROUP_RATE" \
	-bare-url "http://$BARE_ADDR" -bare-pid "$BARE_PID" -url "http://$BENCH_ADDR" -pid "$SERVER_PID" \
	-json "$OUT/results.json" | tee "$OUT/summary.txt"

say "after every stream closed at once"
sleep 10
users=$(psql_admin -d "$DB" -Atc "SELECT count(*) FROM users WHERE sub LIKE 'stream-user-%'")
seen=$(psql_admin -d "$DB" -Atc "SELECT count(*) FROM users WHERE sub LIKE 'stream-user-%' AND last_seen_at IS NOT NULL")
errors=$(grep -c '"level":"ERROR"' "$OUT/server.log" || true)
{
	echo "users $users, last seen written for $seen; the messenger logged $errors errors"
	echo "when: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+changes'), engine $BENCH_ENGINE"
	echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(free -g | awk '/^Mem:/ {print $2}') GiB; open files $(ulimit -n)"
} | tee -a "$OUT/summary.txt"
[ "$errors" = 0 ] || grep '"level":"ERROR"' "$OUT/server.log" | head -3
