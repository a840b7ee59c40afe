// Command streambench holds thousands of live event streams on a messenger and on a bare
// net/http event-stream server in the same run, and compares what they cost: the server's
// resident memory per stream, and how long one event to every stream (a zone announcement)
// takes to reach them all. See docs/performance.md, "Ten thousand streams".
//
//	streambench bare -addr 127.0.0.1:8111
//	streambench run -streams 10000 -bare-url http://127.0.0.1:8111 -bare-pid PID \
//	    -url http://127.0.0.1:8101 -pid PID -secret "$MESSENGER_JWT_SECRET"
//
// The streams are held by this process, not the servers', so each server's RSS is its own.
// Both targets get the same treatment in turn (the bare server first): every stream opened,
// the server's RSS after a settling time, then the bursts, one at a time, each timed from
// the moment its request starts to the moment each stream has the event, then a hold long
// enough for heartbeats, then every stream closed at once.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/dreamseed/messenger/auth"
)

type config struct {
	Streams         int
	OpenConcurrency int
	Settle          time.Duration
	Bursts          int
	BurstGap        time.Duration
	BurstTimeout    time.Duration
	Hold            time.Duration
	Secret          string
	Issuer          string
	Audience        string
	Org             string
	Zone            string
	JSON            string
	GroupSize       int
	SmallSize       int
	GroupSends      int
	GroupRate       float64
}

var logOut io.Writer = os.Stderr

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: streambench bare -addr ADDR | streambench run [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "bare":
		fs := flag.NewFlagSet("bare", flag.ExitOnError)
		addr := fs.String("addr", "127.0.0.1:8111", "listen address")
		fs.Parse(os.Args[2:])
		err = serveBare(*addr)
	case "run":
		err = runMain(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "streambench:", err)
		os.Exit(1)
	}
}

func runMain(args []string) error {
	cfg := config{Secret: envOr("MESSENGER_JWT_SECRET", auth.DevSecret), Issuer: "dreamseed-portal", Audience: "messenger",
		Org: "stream-org", Zone: "stream-zone"}
	var bare, messenger target
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	fs.IntVar(&cfg.Streams, "streams", 10000, "streams held on each target, one per user")
	fs.IntVar(&cfg.OpenConcurrency, "open-concurrency", 100, "streams being opened at once")
	fs.DurationVar(&cfg.Settle, "settle", 10*time.Second, "wait after the last stream opened before the RSS is read")
	fs.IntVar(&cfg.Bursts, "bursts", 10, "bursts: one event to every stream, one after another")
	fs.DurationVar(&cfg.BurstGap, "burst-gap", time.Second, "pause after each burst has arrived")
	fs.DurationVar(&cfg.BurstTimeout, "burst-timeout", 30*time.Second, "how long a burst may take to reach every stream")
	fs.DurationVar(&cfg.Hold, "hold", 45*time.Second, "how long the streams stay open after the bursts (heartbeats every 20 s)")
	fs.IntVar(&cfg.GroupSize, "group-size", 500, "the messenger's group phase: members of the big group (users 0 ..); 0 skips the phase")
	fs.IntVar(&cfg.SmallSize, "small-size", 10, "members of the small group the big one is compared with (the next users)")
	fs.IntVar(&cfg.GroupSends, "group-sends", 200, "sends to each group, alternated, each from a random member")
	fs.Float64Var(&cfg.GroupRate, "group-rate", 20, "sends a second, both groups together (open loop)")
	fs.StringVar(&cfg.Secret, "secret", cfg.Secret, "HS256 secret the messenger verifies portal tokens with (default: $MESSENGER_JWT_SECRET)")
	fs.StringVar(&cfg.Issuer, "issuer", cfg.Issuer, "iss of the minted tokens")
	fs.StringVar(&cfg.Audience, "audience", cfg.Audience, "aud of the minted tokens")
	fs.StringVar(&cfg.Org, "org", cfg.Org, "organization of the users")
	fs.StringVar(&cfg.Zone, "zone", cfg.Zone, "zone of the users: every stream gets its announcements")
	fs.StringVar(&cfg.JSON, "json", "", "write both targets' results here as JSON")
	fs.StringVar(&bare.URL, "bare-url", "", "the bare server (streambench bare); empty: skipped")
	fs.IntVar(&bare.PID, "bare-pid", 0, "the bare server's pid, for its RSS")
	fs.StringVar(&messenger.URL, "url", "", "the messenger; empty: skipped")
	fs.IntVar(&messenger.PID, "pid", 0, "the messenger's pid, for its RSS")
	fs.Parse(args)
	bare.Name, bare.Bare, messenger.Name = "bare", true, "messenger"

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	var results []*result
	for _, t := range []target{bare, messenger} {
		if t.URL == "" {
			continue
		}
		res, err := newBench(cfg, t).run(ctx)
		if err != nil {
			return err
		}
		results = append(results, res)
		// Let the closed connections' TIME_WAIT and the server's own clean-up pass.
		time.Sleep(5 * time.Second)
	}
	report(os.Stdout, results)
	if cfg.JSON != "" {
		raw, err := json.MarshalIndent(results, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(cfg.JSON, raw, 0o644)
	}
	return nil
}

// report prints each target's figures and, with both, the messenger's as ratios to the
// bare server's.
func report(w io.Writer, results []*result) {
	for _, r := range results {
		fmt.Fprintf(w, "%-9s %d streams: RSS %.1f MB (%.1f KiB a stream, idle %.1f MB), after the hold %.1f MB; "+
			"bursts %d/%d delivered, p50 %.1f ms, p99 %.1f ms, max %.1f ms; heartbeats min %d a stream; stream errors %v\n",
			r.Target, r.Streams, mb(r.RSSBytes), r.PerStreamKiB, mb(r.RSSIdleBytes), mb(r.RSSAfterBytes),
			r.Delivered, r.Bursts*r.Streams, r.BurstP50Ms, r.BurstP99Ms, r.BurstMaxMs, r.HeartbeatsMin, r.StreamErrors)
	}
	for _, r := range results {
		if g := r.Group; g != nil {
			fmt.Fprintf(w, "%-9s group of %d with %d streams open: %d/%d delivered, send→delivered p50 %.1f ms, p99 %.1f ms, max %.1f ms; "+
				"the send's answer p50 %.1f ms, p99 %.1f ms (group of %d: delivered p99 %.1f ms, send p50 %.1f ms, p99 %.1f ms); "+
				"publish cost %.1f µs a recipient; send errors %d\n",
				r.Target, g.Size, r.Streams, g.Delivered, g.Sends*(g.Size-1), g.DeliveredP50Ms, g.DeliveredP99Ms, g.DeliveredMaxMs,
				g.SendP50Ms, g.SendP99Ms, g.SmallSize, g.SmallP99Ms, g.SmallSendP50Ms, g.SmallSendP99Ms, g.PerRecipientUs, g.SendErrors)
		}
	}
	if len(results) == 2 && results[0].RSSBytes > 0 && results[0].BurstP99Ms > 0 {
		b, m := results[0], results[1]
		fmt.Fprintf(w, "messenger / bare: RSS %.2fx, per stream %.2fx, burst p99 %.2fx\n",
			float64(m.RSSBytes)/float64(b.RSSBytes), m.PerStreamKiB/b.PerStreamKiB, m.BurstP99Ms/b.BurstP99Ms)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
