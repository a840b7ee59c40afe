// Command loadgen drives a running messenger through its JSON API and live events, as the
// portal's users would, and measures what they would feel: how long a send takes, how long
// until every member's stream shows the message, and whether any stream missed or doubled
// one. See docs/performance.md.
//
//	loadgen -url http://127.0.0.1:8101 -secret "$MESSENGER_JWT_SECRET" -users 100 -rate 1000 -duration 60s
//
// It signs N users in with portal tokens it mints itself (HS256 with the server's secret),
// opens one SSE stream per user, creates direct conversations (users paired up) and groups
// of 10, then sends at a fixed aggregate rate, open loop: each send starts in a goroutine
// of its own when it is due, whatever is in flight, and its latency counts from the due
// time; each picks a random user and one of their conversations. Every message.new on every
// stream is matched to its send by client_msg_id; a resync makes that user's client catch
// up with after_seq, as a real client would. After the sends and a grace period it counts
// what each member never received (lost) and what a stream received twice (duplicated).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/dreamseed/messenger/auth"
)

type config struct {
	URL            string
	Secret         string
	Issuer         string
	Audience       string
	Org            string
	Zone           string
	Users          int
	Groups         string // "auto", a count of groups (>= 1) or a fraction of users (< 1)
	GroupSize      int
	Rate           float64
	Duration       time.Duration
	Warmup         time.Duration
	Timeout        time.Duration
	Grace          time.Duration
	Conns          int    // most API connections at once; sends beyond wait for one
	Convs          string // "all" or "groups": the conversations sends go to
	MaxInFlight    int    // 0: none; else sends due while this many are in flight are shed, counted
	ConnectTimeout time.Duration
	PID            int
	PGPID          int
	RSSFromMetrics bool
	MetricsURL     string
	Verify         bool
	// PushSubscribe gives every user a push subscription (to an address that is never
	// reached while the user's stream is open), so that the server's push sweep has
	// members to ask about: its whole decision, with no push sent.
	PushSubscribe bool
	JSON          bool
	Seed          uint64
	Progress      time.Duration
	// ProfileURL is the server's /debug/pprof/profile (MESSENGER_PPROF_ADDR); with it, the
	// load generator takes a CPU profile of ProfileFor from the start of the measured
	// window and writes it to ProfileOut.
	ProfileURL string
	ProfileFor time.Duration
	ProfileOut string
	// Timeline, when set, is a CSV file of every measured delivery: when its send was due
	// (ms from the measured window's start) and its send→delivered latency (ms), to see
	// when the slow ones happened.
	Timeline string
	// SendTimeline, when set, is a CSV file of every measured send that succeeded: when it
	// was due (Unix ms, to line up with the server's own timestamps, e.g. River's jobs) and
	// its due→201 latency (ms).
	SendTimeline string
}

func defaultConfig() config {
	return config{
		URL: "http://localhost:8001", Secret: envOr("MESSENGER_JWT_SECRET", auth.DevSecret), Issuer: "dreamseed-portal", Audience: "messenger",
		Org: "bench-org", Zone: "bench-zone", Users: 100, Groups: "auto", GroupSize: 10, Rate: 1000,
		Duration: 60 * time.Second, Warmup: 5 * time.Second, Timeout: 10 * time.Second, Grace: 5 * time.Second,
		Conns: 256, Convs: "all", ConnectTimeout: 30 * time.Second, RSSFromMetrics: true, MetricsURL: "http://127.0.0.1:9101/metrics", Verify: true, Progress: 5 * time.Second,
	}
}

func main() {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("loadgen", flag.ExitOnError)
	fs.StringVar(&cfg.URL, "url", cfg.URL, "base URL of the messenger")
	fs.StringVar(&cfg.Secret, "secret", cfg.Secret, "HS256 secret the server verifies portal tokens with (default: $MESSENGER_JWT_SECRET, else the dev secret)")
	fs.StringVar(&cfg.Issuer, "issuer", cfg.Issuer, "iss of the minted tokens")
	fs.StringVar(&cfg.Audience, "audience", cfg.Audience, "aud of the minted tokens")
	fs.StringVar(&cfg.Org, "org", cfg.Org, "org_id of the bench users")
	fs.StringVar(&cfg.Zone, "zone", cfg.Zone, "zone_id of the bench users")
	fs.IntVar(&cfg.Users, "users", cfg.Users, "number of users, each with one SSE stream")
	fs.StringVar(&cfg.Groups, "groups", cfg.Groups, "group conversations: a count (>= 1), a fraction of the users to put in groups (< 1), or auto (users/group-size: everyone in one group); every user is also in one direct conversation")
	fs.IntVar(&cfg.GroupSize, "group-size", cfg.GroupSize, "members of a group")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "messages per second, all senders together (open loop)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured sending time")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "sending time before the measurement (its messages still count for lost and duplicated)")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "timeout of one API request")
	fs.DurationVar(&cfg.Grace, "grace", cfg.Grace, "how long after the last send to wait for deliveries before counting what is lost")
	fs.IntVar(&cfg.Conns, "conns", cfg.Conns, "most API connections open at once (a browser opens up to 6 per user); a send due while all are busy waits for one, and the wait counts in its latency")
	fs.IntVar(&cfg.MaxInFlight, "max-in-flight", 0, "0: no bound (every due send goes). For saturation runs only: a send due while this many are in flight is not sent and is counted as shed, so that a server far past its capacity keeps -conns requests busy without the generator's backlog outliving -timeout")
	fs.StringVar(&cfg.Convs, "convs", cfg.Convs, "where sends go: all (each user's direct and group conversations) or groups (only the group conversations: the hot ones a saturation run shares with its pgbench ceilings)")
	fs.DurationVar(&cfg.ConnectTimeout, "connect-timeout", cfg.ConnectTimeout, "how long all streams may take to open")
	fs.IntVar(&cfg.PID, "pid", 0, "server process id: sample its RSS from /proc (same machine)")
	fs.IntVar(&cfg.PGPID, "pg-pid", 0, "PostgreSQL postmaster process id: its CPU use (and its backends') is reported apart from other processes")
	fs.BoolVar(&cfg.RSSFromMetrics, "rss-from-metrics", cfg.RSSFromMetrics, "without -pid: sample process_resident_memory_bytes from -metrics-url")
	fs.StringVar(&cfg.MetricsURL, "metrics-url", cfg.MetricsURL, "the server's /metrics, on its metrics listener (MESSENGER_METRICS_ADDR)")
	fs.BoolVar(&cfg.Verify, "verify", cfg.Verify, "at the end, read every conversation back with after_seq and count acknowledged messages the server does not have")
	fs.BoolVar(&cfg.PushSubscribe, "push-subscribe", false, "before sending, subscribe every user to web push (the server needs VAPID keys)")
	fs.BoolVar(&cfg.JSON, "json", false, "print a JSON summary on stdout (the table goes to stderr)")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "random seed (0: from the clock)")
	fs.DurationVar(&cfg.Progress, "progress", cfg.Progress, "progress line interval on stderr (0: none)")
	fs.StringVar(&cfg.ProfileURL, "profile-url", "", "the server's /debug/pprof/profile (MESSENGER_PPROF_ADDR): take a CPU profile from the start of the measured window")
	fs.DurationVar(&cfg.ProfileFor, "profile-for", 20*time.Second, "length of the CPU profile (at most -duration)")
	fs.StringVar(&cfg.ProfileOut, "profile-out", "cpu.pprof", "where to write the CPU profile")
	fs.StringVar(&cfg.Timeline, "timeline", "", "write every measured delivery here as CSV: due_ms (from the measured window's start), latency_ms")
	fs.StringVar(&cfg.SendTimeline, "send-timeline", "", "write every measured send here as CSV: due_unix_ms, latency_ms (due → 201)")
	selfProfile := fs.String("self-profile", "", "write the generator's own CPU profile of the whole run here: where its share of the machine goes")
	fs.Parse(os.Args[1:])

	if *selfProfile != "" {
		f, err := os.Create(*selfProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, err := run(ctx, cfg, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
	if cfg.JSON {
		printTable(os.Stderr, sum)
		writeJSON(os.Stdout, sum)
	} else {
		printTable(os.Stdout, sum)
	}
}

func writeJSON(w io.Writer, sum *summary) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(sum)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
