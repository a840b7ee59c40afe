#!/usr/bin/env bash
# make bench-files: uploads end to end (cmd/filebench) on a fresh database, with a private
# clamd, against the ceilings measured in the same run; then the thumbnail rate per core
# against JPEG decoding alone. See docs/performance.md.
#
# Environment (defaults): UPLOADS (30) RATE (1) PHOTO_MB (6) CONCURRENT (20) BIG_MB (10)
# BENCH_PGHOST (127.0.0.1) BENCH_PGPORT (5432) BENCH_PGUSER (postgres)
# BENCH_DB (messenger_bench_files). Results go to bench/out/files-<time>/.
set -euo pipefail
cd "$(dirname "$0")/.."

PGH=${BENCH_PGHOST:-127.0.0.1}
PGP=${BENCH_PGPORT:-5432}
PGU=${BENCH_PGUSER:-postgres}
DB=${BENCH_DB:-messenger_bench_files}
OUT=bench/out/files-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"

go build -o bin/messenger ./cmd/messenger
go build -o bin/filebench ./cmd/filebench
psql -X -q -v ON_ERROR_STOP=1 -h "$PGH" -p "$PGP" -U "$PGU" -d postgres \
	-c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"

printf '\n== uploads (%s, %s)\n' "$(uname -n)" "$(nproc) cores"
./bin/filebench -messenger bin/messenger -out "$OUT" \
	-database-url "postgres://$PGU@$PGH:$PGP/$DB?sslmode=disable" \
	-uploads "${UPLOADS:-30}" -rate "${RATE:-1}" -photo-mb "${PHOTO_MB:-6}" \
	-concurrent "${CONCURRENT:-20}" -big-mb "${BIG_MB:-10}" | tee "$OUT/uploads.txt"

printf '\n== thumbnails, one core: a 12-megapixel JPEG to three WebP sizes, against decoding it alone\n'
go test -run '^$' -bench 'BenchmarkThumbnails|BenchmarkDecodePhoto' -benchtime 20x -cpu 1 ./upload/ | tee "$OUT/thumbnails.txt"
