// Command messenger is the DreamSeed messenger server.
//
//	messenger [serve]   run the server (default)
//	messenger worker    run only the background job workers (no HTTP), until SIGTERM
//	messenger migrate   apply database migrations and exit
//	messenger demo      load the demo organizations, users and conversations and exit
//	messenger vapid-keys print a new VAPID key pair for web push (environment lines)
//	messenger backup DIR             back up the database and file storage into DIR/<UTC stamp>
//	messenger restore DIR/<stamp>    restore a backup into an empty database and storage, then check
//	messenger check [DIR/<stamp>]    the consistency check (against a backup's manifest when given)
//	messenger healthcheck [URL] GET this process's /readyz (or URL); exit 1 unless 200
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // times are shown in Asia/Seoul even on machines without zoneinfo
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "messenger:", err)
		os.Exit(1)
	}
}
