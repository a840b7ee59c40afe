# The messenger's container image: `docker build -t dreamseed/messenger .` at the repository
# root. deploy/compose.yaml builds and runs it (servers, worker, backups).

# Build: a static binary. CGO off, and the WebP decoder's `nodynamic` tag, which keeps it
# on its WebAssembly build instead of loading libwebp through dlopen (that would link the
# binary dynamically against the C library).
FROM golang:1.26-alpine AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -buildvcs=false -tags nodynamic -ldflags="-s -w" \
      -o /out/messenger ./cmd/messenger

# Run: Alpine rather than distroless, for the PostgreSQL client tools that `messenger
# backup` and `messenger restore` run (pg_dump, pg_restore; the major version of the
# database server or later) and a shell for the backup service's daily loop.
FROM alpine:3.22
RUN apk add --no-cache ca-certificates tzdata postgresql17-client \
 && adduser -D -H -u 10001 messenger \
 && mkdir -p /data /backups && chown messenger:messenger /data /backups
COPY --from=build /out/messenger /usr/local/bin/messenger
USER messenger
ENV MESSENGER_ADDR=:8001 \
    MESSENGER_METRICS_ADDR=0.0.0.0:9101 \
    MESSENGER_DATA_DIR=/data
EXPOSE 8001 9101
VOLUME ["/data"]
# /readyz: the database and Redis reachable, not shutting down. The image has no curl:
# the binary checks itself (a worker's service overrides this with its /metrics).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["messenger", "healthcheck"]
ENTRYPOINT ["messenger"]
CMD ["serve"]
