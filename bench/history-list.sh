#!/usr/bin/env bash
# The conversation list's transaction at the database, alternated with its ceiling, on a
# kept history database (make bench-history with KEEP=1): each FILE of bench/history (or a
# path) runs ROUNDS times for PGBENCH_TIME s, one client, -M prepared, as messenger_app with
# the heavy user's identity; p50 / p95 / p99 of each round, from pgbench's log.
#   BENCH_HISTORY_DB=hist_h PLAN=bench/plan-hist_h.json bench/history-list.sh ceiling list [other.sql ...]
# Env: PGHOST (127.0.0.1) PGPORT (5432) PGUSER (postgres, for the first page's ids)
# PGBENCH_TIME (10) ROUNDS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
PGH=${PGHOST:-127.0.0.1} PGP=${PGPORT:-5432} PGU=${PGUSER:-postgres}
DB=${BENCH_HISTORY_DB:?name the kept database} PLAN=$(realpath "${PLAN:?the plan.json of that database}")
T=${PGBENCH_TIME:-10} ROUNDS=${ROUNDS:-2}
p() { jq -r ".$1" "$PLAN"; }
read -r LIST_IDS LIST_SEQS < <(psql -h "$PGH" -p "$PGP" -U "$PGU" -d "$DB" -At -F ' ' -c "
SELECT '{' || string_agg(id::text, ',' ORDER BY at DESC, id DESC) || '}', '{' || string_agg(last_seq::text, ',' ORDER BY at DESC, id DESC) || '}'
  FROM (SELECT c.id, c.last_seq, c.last_message_at AS at FROM conversation_participants p JOIN conversations c ON c.id = p.conversation_id
         WHERE p.user_id = $(p user_id) AND p.left_at IS NULL ORDER BY c.last_message_at DESC, c.id DESC LIMIT 51) l")
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
pct() { awk '{ print $3 }' "$1" | sort -n | awk -v p="$2" '{ v[NR] = $1 } END { i = int(NR * p / 100); if (i < 1) i = 1; if (i > NR) i = NR; printf "%.2f", v[i] / 1000 }'; }
echo "$(date -u +%FT%TZ) $DB, ${T}s a run, $ROUNDS rounds; load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
	for f in "$@"; do
		file=$(realpath "$f" 2>/dev/null || true)
		[ -f "$file" ] || file=$(realpath "bench/history/$f.sql")
		rm -f "$OUT"/log.*
		(cd "$OUT" && pgbench -n -M prepared -h "$PGH" -p "$PGP" -U messenger_app -c 1 -T "$T" -l --log-prefix=log \
			-D user="$(p user_id)" -D org="$(p org_id)" -D zone="$(p zone_id)" -D thread="$(p thread)" -D last="$(p thread_last_seq)" \
			-D list_ids="$LIST_IDS" -D list_seqs="$LIST_SEQS" -f "$file" "$DB") >"$OUT/out.txt" 2>&1 || { cat "$OUT/out.txt"; exit 1; }
		cat "$OUT"/log.* >"$OUT/all"
		printf 'round %d  %-28s n %6d  p50 %6s  p95 %6s  p99 %6s  max %7s ms  (load %s)\n' "$round" "$(basename "$file")" "$(wc -l <"$OUT/all")" \
			"$(pct "$OUT/all" 50)" "$(pct "$OUT/all" 95)" "$(pct "$OUT/all" 99)" "$(pct "$OUT/all" 100)" "$(cut -d' ' -f1 /proc/loadavg)"
	done
done
