// Command filebench measures file uploads end to end on a messenger it starts itself, with
// a private clamd, and the ceilings of the same work measured in the same run: a bare Go
// server that only receives the multipart body and writes it to disk, clamd scanning the
// same bytes directly, and the thumbnails of the photo made in this process. See
// docs/performance.md.
//
//	filebench -messenger bin/messenger -database-url postgres://…/messenger_bench_files
//
// Three measurements:
//  1. latency: UPLOADS uploads of a PHOTO_MB photo, open loop at RATE a second (each starts
//     when it is due, whatever is in flight; latency counts from then): accepted (the 202
//     that shows the sender's pending bubble) and delivered (the recipient's message.new,
//     after the scan, the thumbnails and the message);
//  2. the same schedule against the bare server, clamd scanning the photo alone, and the
//     photo's thumbnails alone;
//  3. memory: CONCURRENT uploads of BIG_MB at once; the server's peak RSS above its RSS
//     once started, against the bytes in flight (a server that buffered whole files would
//     grow by at least that much).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

type config struct {
	Messenger   string
	DatabaseURL string
	Addr        string
	Out         string
	Uploads     int
	Rate        float64
	PhotoMB     float64
	Concurrent  int
	BigMB       float64
	Timeout     time.Duration
}

func main() {
	cfg := config{}
	flag.StringVar(&cfg.Messenger, "messenger", "bin/messenger", "the messenger binary")
	flag.StringVar(&cfg.DatabaseURL, "database-url", "", "owner URL of an empty database for the run")
	flag.StringVar(&cfg.Addr, "addr", "127.0.0.1:8102", "where the messenger listens")
	flag.StringVar(&cfg.Out, "out", "bench/out/files", "directory for the server's data and log")
	flag.IntVar(&cfg.Uploads, "uploads", 30, "photos uploaded in the latency run")
	flag.Float64Var(&cfg.Rate, "rate", 1, "uploads a second in the latency run (open loop)")
	flag.Float64Var(&cfg.PhotoMB, "photo-mb", 6, "size of the photo, in MB")
	flag.IntVar(&cfg.Concurrent, "concurrent", 20, "uploads at once in the memory run")
	flag.Float64Var(&cfg.BigMB, "big-mb", 10, "size of each file of the memory run, in MB (at most the upload limit)")
	flag.DurationVar(&cfg.Timeout, "timeout", 2*time.Minute, "how long an upload may take to be delivered")
	flag.Parse()
	if cfg.DatabaseURL == "" {
		fmt.Fprintln(os.Stderr, "filebench: -database-url is required (an empty database; the bench migrates it)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "filebench:", err)
		os.Exit(1)
	}
}
