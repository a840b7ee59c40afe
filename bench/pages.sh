#!/usr/bin/env bash
# make bench-pages: the pages a signed-in user opens most — a thread (GET /c/{id}, its first
# page of 50 messages) and the conversation list (GET /, 50 conversations) — and in the same
# run PostgreSQL's select-only ceiling. See docs/performance.md ("The pages bench").
#
#   1. builds bin/messenger and bin/pagebench;
#   2. a fresh database messenger_pages_bench, the server on it (production mode, the memory
#      engine or Redis, Go's profiler on a loopback listener of its own), then
#      bench/pages-seed.sql: a teacher in 50 conversations, one a group of 10 with 110
#      messages (the thread), the others direct with 3 messages each (the last with none);
#   3. bin/pagebench signs the teacher in through /auth/portal, checks both pages, weighs
#      them on the wire (identity, gzip, br) and the markup per message, and offers each
#      page open loop at RATE (1000) requests a second for DURATION, latency from due;
#      Then the cold run: each page offered open loop at COLD_RATE for COLD_DURATION, every
#      request from a session signed in for it alone that has requested nothing yet, so
#      neither the session nor the page comes from the server's cache (the 8:40 case);
#   4. wrk -t2 -c16 for WRK_TIME s on each page, as a browser asks (Accept-Encoding: gzip,
#      br) and without compression: the most requests a second, with the server's CPU
#      profile of the browser-like run;
#   5. stops the server and runs pgbench -S (select-only, prepared, 16 clients) on the same
#      PostgreSQL for PGBENCH_TIME s.
#
# Environment (defaults): RATE (1000) DURATION (20s) COLD_RATE (100; 0 skips the cold run)
# COLD_DURATION (8s; COLD_RATE × (2 s + COLD_DURATION) sessions, at most 1,000) BENCH_WRK (1; 0 skips wrk) WRK_TIME (10) WRK_THREADS (2)
# WRK_CONNS (16) BENCH_ENGINE (memory | redis) BENCH_PROFILE (1) PGBENCH_CLIENTS (16)
# PGBENCH_TIME (15) PGBENCH_SCALE (10) BENCH_WAIT_QUIET (0) BENCH_PAGES_ADDR
# (127.0.0.1:8103) BENCH_PAGES_PPROF_ADDR (127.0.0.1:8104) BENCH_PGHOST (127.0.0.1)
# BENCH_PGPORT (5432) BENCH_PGUSER (postgres) BENCH_PAGES_DB (messenger_pages_bench).
# Results go to bench/out/pages-<time>/.
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${RATE:-1000}
DURATION=${DURATION:-20s}
COLD_RATE=${COLD_RATE:-100}
COLD_DURATION=${COLD_DURATION:-8s}
BENCH_WRK=${BENCH_WRK:-1}
WRK_TIME=${WRK_TIME:-10}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-16}
BENCH_ENGINE=${BENCH_ENGINE:-memory}
BENCH_PROFILE=${BENCH_PROFILE:-1}
PGBENCH_CLIENTS=${PGBENCH_CLIENTS:-16}
PGBENCH_TIME=${PGBENCH_TIME:-15}
PGBENCH_SCALE=${PGBENCH_SCALE:-10}
BENCH_WAIT_QUIET=${BENCH_WAIT_QUIET:-0}
BENCH_ADDR=${BENCH_PAGES_ADDR:-127.0.0.1:8103}
BENCH_PPROF_ADDR=${BENCH_PAGES_PPROF_ADDR:-127.0.0.1:8104}
PGH=${BENCH_PGHOST:-127.0.0.1}
PGP=${BENCH_PGPORT:-5432}
PGU=${BENCH_PGUSER:-postgres}
DB=${BENCH_PAGES_DB:-messenger_pages_bench}
REDIS=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/0}

OUT=bench/out/pages-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
bench_name=bench-pages
# shellcheck source=bench/lib.sh
. bench/lib.sh
rate_env=()
# The cold run signs in a session for every request it makes, all the teacher's: far
# above the sign-in limits and the sessions a user may keep.
[ "$COLD_RATE" = 0 ] || rate_env+=(MESSENGER_RATE_SIGNIN_IP=100000:100000 MESSENGER_RATE_SIGNIN_SUBJECT=100000:100000 MESSENGER_MAX_SESSIONS_PER_USER=1000)

for tool in go psql pgbench curl jq wrk; do
	command -v "$tool" >/dev/null || die "$tool is needed (apt-get install postgresql-client curl jq wrk)"
done
pg_isready -q -h "$PGH" -p "$PGP" || die "no PostgreSQL at $PGH:$PGP"

say "build"
go build -o bin/messenger ./cmd/messenger
go build -o bin/pagebench ./cmd/pagebench

say "fresh database $DB on $PGH:$PGP"
psql_admin -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"

MESSENGER_JWT_SECRET=$(head -c 32 /dev/urandom | base64 | tr -d '\n=+/')
export MESSENGER_JWT_SECRET
trap stop_server EXIT
start_server "$BENCH_ENGINE" "$OUT/server.log" "$DB"

say "seed: a teacher in 50 conversations, a thread of 110 messages"
seeded=$(psql_admin -d "$DB" -v convs=50 -v members=10 -v thread_messages=110 -v direct_messages=3 -f bench/pages-seed.sql | tail -1)
echo "$seeded"
read -r _ THREAD _ EMPTY _ NCONVS <<<"$seeded"
[ -n "$THREAD" ] && [ -n "$EMPTY" ] || die "the seed did not say which conversations it made"

quiet pagebench
say "pagebench: sign in, check and weigh the pages, then $RATE req/s open loop on each for $DURATION"
./bin/pagebench -url "http://$BENCH_ADDR" -thread "$THREAD" -empty "$EMPTY" -rate "$RATE" -duration "$DURATION" \
	-cold-rate "$COLD_RATE" -cold-duration "$COLD_DURATION" \
	$([ "$BENCH_PROFILE" = 1 ] && echo "-cold-pprof $BENCH_PPROF_ADDR -cold-pprof-dir $OUT") \
	-cookie-out "$OUT/cookie.txt" -json >"$OUT/pagebench.json" 2> >(tee "$OUT/pagebench.txt" >&2)
COOKIE=$(cat "$OUT/cookie.txt")

# wrk_run NAME PATH HOW: the most requests a second wrk gets from PATH, asking as a browser
# does (HOW=browser: Accept-Encoding: gzip, deflate, br) or for no compression (identity).
wrk_run() {
	local name=$1 path=$2 how=$3 prof_pid= enc=identity
	[ "$how" = browser ] && enc="gzip, deflate, br"
	quiet "wrk-$name-$how"
	say "wrk -t$WRK_THREADS -c$WRK_CONNS -d${WRK_TIME}s GET $path (Accept-Encoding: $enc)"
	if [ "$BENCH_PROFILE" = 1 ] && [ "$how" = browser ]; then
		curl -s -o "$OUT/cpu-$name.pprof" "http://$BENCH_PPROF_ADDR/debug/pprof/profile?seconds=$((WRK_TIME > 3 ? WRK_TIME - 2 : 1))" &
		prof_pid=$!
	fi
	wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${WRK_TIME}s" --latency -H "Cookie: $COOKIE" -H "Accept: text/html" \
		-H "Accept-Encoding: $enc" "http://$BENCH_ADDR$path" | tee "$OUT/wrk-$name-$how.txt"
	# wrk counts a redirect as an answer: the session must still open the page after the run.
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $COOKIE" "http://$BENCH_ADDR$path")
	[ "$code" = 200 ] || echo "bench-pages: WARNING: after the run GET $path answers HTTP $code, not 200: wrk's figure is not the page's" | tee -a "$OUT/warnings.txt" >&2
	if [ -n "$prof_pid" ]; then
		wait "$prof_pid" || true
		go tool pprof -top -nodecount=30 bin/messenger "$OUT/cpu-$name.pprof" >"$OUT/cpu-$name.top.txt" 2>/dev/null || true
		go tool pprof -top -cum -nodecount=40 bin/messenger "$OUT/cpu-$name.pprof" >"$OUT/cpu-$name.cum.txt" 2>/dev/null || true
	fi
}
wrk_rps() { sed -n 's/^Requests\/sec: *\([0-9.]*\)/\1/p' "$OUT/wrk-$1.txt" | cut -d. -f1; }
wrk_p() { awk -v p="$2" '$1 == p { print $2 }' "$OUT/wrk-$1.txt"; }
wrk_non2xx() {
	local n
	n=$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\)/\1/p' "$OUT/wrk-$1.txt")
	echo "${n:-0}"
}

if [ "$BENCH_WRK" = 1 ]; then
	wrk_run thread "/c/$THREAD" browser
	wrk_run list "/" browser
	wrk_run thread "/c/$THREAD" identity
	wrk_run list "/" identity
fi

if [ "$BENCH_PROFILE" = 1 ]; then
	for f in "$OUT"/cpu-cold-*.pprof; do
		[ -s "$f" ] || continue
		go tool pprof -top -nodecount=30 bin/messenger "$f" >"${f%.pprof}.top.txt" 2>/dev/null || true
		go tool pprof -top -cum -nodecount=40 bin/messenger "$f" >"${f%.pprof}.cum.txt" 2>/dev/null || true
	done
fi

say "stop the server"
stop_server

say "pgbench select-only ceiling: $PGBENCH_CLIENTS clients, ${PGBENCH_TIME}s, scale $PGBENCH_SCALE"
pgbench -i -q -s "$PGBENCH_SCALE" -h "$PGH" -p "$PGP" -U "$PGU" "$DB" >"$OUT/pgbench-init.txt" 2>&1
quiet pgbench-select
pgbench -n -S -M prepared -h "$PGH" -p "$PGP" -U "$PGU" -c "$PGBENCH_CLIENTS" -j 2 -T "$PGBENCH_TIME" "$DB" 2>&1 | tee "$OUT/pgbench-select.txt"
SELECT_TPS=$(pgbench_tps "$OUT/pgbench-select.txt")

say "results ($OUT)"
{
	echo "when: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+changes'); engine $BENCH_ENGINE"
	echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(free -g | awk '/^Mem:/ {print $2}') GiB; PostgreSQL $(psql_admin -d "$DB" -Atc 'SHOW server_version')"
	echo "busy before each step (% of a core): $(paste -sd' ' "$OUT/background-cpu.txt" | sed 's/: /=/g')"
	echo "data: a teacher in $NCONVS conversations; thread /c/$THREAD (110 messages, first page 50); empty /c/$EMPTY"
	echo "ceiling: pgbench select-only ${SELECT_TPS:-?} tps ($PGBENCH_CLIENTS clients, prepared)"
	for page in thread list; do
		b="${page}-browser"
		i="${page}-identity"
		echo "GET $([ "$page" = thread ] && echo "/c/$THREAD" || echo /) ($page)"
		[ "$BENCH_WRK" = 1 ] && echo "  wrk -t$WRK_THREADS -c$WRK_CONNS, as a browser asks: $(wrk_rps "$b") req/s = $(ratio "$(wrk_rps "$b")" "${SELECT_TPS:-0}")x select-only, p50 $(wrk_p "$b" 50%) p99 $(wrk_p "$b" 99%), non-2xx $(wrk_non2xx "$b")"
		[ "$BENCH_WRK" = 1 ] && echo "  wrk -t$WRK_THREADS -c$WRK_CONNS, uncompressed:     $(wrk_rps "$i") req/s = $(ratio "$(wrk_rps "$i")" "${SELECT_TPS:-0}")x select-only, p50 $(wrk_p "$i" 50%) p99 $(wrk_p "$i" 99%), non-2xx $(wrk_non2xx "$i")"
		jq -r --arg page "$page" '
		  def r(x): (x * 100 | round) / 100;
		  .pages[] | select(.name == $page) |
		  (.open_loop // empty | "  open loop \(.offered_per_second)/s: achieved \(r(.achieved_per_second))/s, errors \(.errors), " +
		    (if .latency.count > 0 then "ms from due p50 \(r(.latency.p50_ms)) p95 \(r(.latency.p95_ms)) p99 \(r(.latency.p99_ms)) max \(r(.latency.max_ms))"
		     else "no measured request answered within its deadline" end)),
		  (.cold // empty | "  cold (a new session each request, gzip asked), \(.offered_per_second)/s: achieved \(r(.achieved_per_second))/s, errors \(.errors), " +
		    (if .latency.count > 0 then "ms from due p50 \(r(.latency.p50_ms)) p95 \(r(.latency.p95_ms)) p99 \(r(.latency.p99_ms)) max \(r(.latency.max_ms))"
		     else "no measured request answered within its deadline" end)),
		  "  on the wire: " + ([.weights[] | "\(.accept_encoding) → \(.content_encoding) \(.wire_bytes) B"] | join(", "))
		' "$OUT/pagebench.json"
	done
	jq -r '"markup per message: \(.markup_per_message_bytes | round) B; the list links \(.list_conversations) conversations"' "$OUT/pagebench.json"
	[ ! -s "$OUT/warnings.txt" ] || cat "$OUT/warnings.txt"
	[ "$BENCH_PROFILE" != 1 ] || echo "CPU profiles: $OUT/cpu-thread.pprof, $OUT/cpu-list.pprof (tops: .top.txt)"
} | tee "$OUT/summary.txt"
