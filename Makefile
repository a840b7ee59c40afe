# DreamSeed Messenger. `make run` and `make test` are all a fresh machine needs.

GO        ?= go
BIN       := bin/messenger
HTMX      := 4.0.1
TAILWIND  := 3.4.19

.PHONY: run build test test-deploy fuzz generate css vendor lint check-generated bench bench-pages bench-files bench-streams bench-history bench-archive clean

# Fuzz targets, package:target (docs/security.md says what each asserts).
FUZZ_TARGETS := \
	.:FuzzCleanBody .:FuzzCleanTitle .:FuzzCleanName \
	views:FuzzLinkify \
	handlers:FuzzFrame handlers:FuzzPageParams \
	chat:FuzzCursor chat:FuzzStreamPosition \
	realtime:FuzzEventID \
	auth:FuzzClaims auth:FuzzVerifyPayload \
	upload:FuzzDetect upload:FuzzCleanFileName upload:FuzzThumbnails
FUZZTIME ?= 1m
# Targets whose first inputs take seconds (the WebP encoder compiles once per fuzz worker):
# a short pass gives them a count of inputs instead of a time, which could end before their
# seed corpus has run.
FUZZ_SLOW := FuzzDetect FuzzThumbnails
FUZZSLOWTIME ?= $(FUZZTIME)

## run: the messenger on http://localhost:8001 with embedded PostgreSQL and the memory engine.
## When mailpit is installed (go install github.com/axllent/mailpit@v1.33.1) and no
## MESSENGER_SMTP_URL is set, it also runs mailpit (SMTP 127.0.0.1:1025, mail readable at
## http://127.0.0.1:8025, kept in the data dir) and sends the email digest there.
run: build
	@set -e; data="$${MESSENGER_DATA_DIR:-data}"; \
	mp=$$(command -v mailpit || ls "$$($(GO) env GOPATH)/bin/mailpit" 2>/dev/null || true); \
	if [ -z "$$MESSENGER_SMTP_URL" ] && [ -n "$$mp" ]; then \
		mkdir -p "$$data"; \
		"$$mp" --disable-version-check --quiet --smtp 127.0.0.1:1025 --listen 127.0.0.1:8025 --database "$$data/mailpit.db" & mp_pid=$$!; \
		trap 'kill $$mp_pid 2>/dev/null || true' EXIT INT TERM; \
		echo "mailpit: the messenger's email is at http://127.0.0.1:8025"; \
		MESSENGER_SMTP_URL=smtp://127.0.0.1:1025 MESSENGER_MAIL_FROM="DreamSeed <no-reply@localhost>" ./$(BIN); \
	else \
		./$(BIN); \
	fi

build:
	$(GO) build -o $(BIN) ./cmd/messenger

## test: each fuzz target for 3000 inputs (the slow ones 200), then every test with the race detector.
## A count, not a time: a short time can run out while a new input is being recorded, which
## Go reports as a failure ("context deadline exceeded").
test:
	$(GO) vet ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=3000x FUZZSLOWTIME=200x
	$(GO) test -race -count=1 -timeout 20m ./...

## test-deploy: the deployment tests alone (three processes behind nginx, a minute of sends
## with a kill, a reload and a Redis restart; docs/operations.md "Behind nginx"), with their
## figures. DEPLOY_TEST_DURATION (default 1m) sets the minute.
test-deploy:
	@out=$$(mktemp); $(GO) test -count=1 -v -run '^TestDeploy' ./e2e >$$out 2>&1; status=$$?; \
		grep -v -e '^ *{' -e '^ *redis: ' $$out; rm -f $$out; exit $$status

## fuzz: each fuzz target for FUZZTIME (1m), one after the other; prints the execs of each.
## A failing input is written under the package's testdata/fuzz/: commit it with the fix.
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; time=$(FUZZTIME); \
		case " $(FUZZ_SLOW) " in *" $$name "*) time=$(FUZZSLOWTIME);; esac; \
		out=$$($(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$$time ./$$pkg 2>&1) || { echo "$$out"; exit 1; }; \
		echo "$$name ($$pkg): $$(echo "$$out" | grep -o 'execs: [0-9]*' | tail -1) in $$time"; \
	done

## generate: templ components -> *_templ.go (committed)
generate:
	$(GO) tool templ generate

## css: Tailwind -> static/app.css (committed)
css: node_modules/.bin/tailwindcss
	npx tailwindcss -c tailwind.config.js -i static/src/input.css -o static/app.css --minify

node_modules/.bin/tailwindcss: package.json
	npm install --no-audit --no-fund
	touch $@

## vendor: copy htmx and its SSE extension from the pinned npm package into static/
vendor: node_modules/.bin/tailwindcss
	cp node_modules/htmx.org/dist/htmx.min.js static/htmx.min.js
	cp node_modules/htmx.org/dist/ext/hx-sse.js static/hx-sse.js
	cp node_modules/axe-core/axe.min.js node_modules/axe-core/LICENSE e2e/testdata/axe/

## lint: formatting, vet, and generated files up to date
lint: check-generated
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1)
	$(GO) vet ./...

check-generated: generate css
	@git diff --exit-code --stat -- '*_templ.go' || (echo "templ output is stale: run make generate and commit"; exit 1)
	@git diff --exit-code --stat -- static/app.css || (echo "static/app.css is stale: run make css and commit"; exit 1)

## bench: the send path under the portal's load, open loop, against its pgbench ceilings
## measured in the same run (docs/performance.md). BENCH_MODE=saturation, BENCH_ENGINES="memory redis".
bench:
	bash bench/run.sh

## bench-pages: a thread and the conversation list, signed in: wrk's most req/s, 1,000 req/s
## open loop, bytes on the wire, against pgbench's select-only ceiling (docs/performance.md)
bench-pages:
	bash bench/pages.sh

## bench-files: uploads end to end with a private clamd, and thumbnails per core (docs/performance.md)
bench-files:
	bash bench/files.sh

## bench-streams: 10,000 live streams on one process against a bare net/http server holding
## as many in the same run: RSS per stream, zone-announcement bursts, heartbeats (docs/performance.md)
bench-streams:
	bash bench/streams.sh

## bench-history: ten million messages loaded by COPY, the five reads of a long history timed
## through the store and the JSON API beside their ceilings, and their EXPLAINs (docs/performance.md)
bench-history:
	bash bench/history.sh

## bench-archive: on a database bench-history kept (KEEP=1, PLAN=its plan.json), 80 % of the
## messages archived while sends run, and the pages hot, cold and across (docs/performance.md)
bench-archive:
	bash bench/archive.sh

clean:
	rm -rf bin
