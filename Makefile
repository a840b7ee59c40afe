# DreamSeed Messenger. `make run` and `make test` are all a fresh machine needs.

GO        ?= go
BIN       := bin/messenger
HTMX      := 4.0.1
TAILWIND  := 3.4.19

.PHONY: run build test generate css vendor lint check-generated bench clean

## run: the messenger on http://localhost:8001 with embedded PostgreSQL and the memory engine
run: build
	./$(BIN)

build:
	$(GO) build -o $(BIN) ./cmd/messenger

## test: every test, with the race detector
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

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

## lint: formatting, vet, and generated files up to date
lint: check-generated
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1)
	$(GO) vet ./...

check-generated: generate
	@git diff --exit-code --stat -- '*_templ.go' || (echo "templ output is stale: run make generate and commit"; exit 1)

## bench: load generator against a running server (see docs/performance.md)
bench:
	bash bench/run.sh

clean:
	rm -rf bin
