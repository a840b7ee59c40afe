package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// summary is what a run found; -json prints it as is.
type summary struct {
	URL           string  `json:"url"`
	StartedAt     string  `json:"started_at"`
	FinishedAt    string  `json:"finished_at"`
	Users         int     `json:"users"`
	RateTarget    float64 `json:"rate_target"`
	DurationS     float64 `json:"duration_s"`
	WarmupS       float64 `json:"warmup_s"`
	Conns         int     `json:"conns"`
	Convs         string  `json:"convs"`
	Conversations struct {
		Direct int `json:"direct"`
		Group  int `json:"group"`
	} `json:"conversations"`
	Sends struct {
		Attempted  int64            `json:"attempted"`
		OK         int64            `json:"ok"`
		Errors     int64            `json:"errors"`
		ErrorKinds map[string]int64 `json:"error_kinds"`
		MeasuredOK int64            `json:"measured_ok"` // acknowledged sends due in the measured window
		WindowS    float64          `json:"window_s"`    // the measured window: -duration after the warm-up
		// OfferedPerSecond is the sends due in the window ÷ its length; PerSecond the 201s
		// that arrived in the window ÷ its length: durable sends per second achieved.
		OfferedPerSecond  float64 `json:"offered_per_second"`
		PerSecond         float64 `json:"per_second"`
		CompletedInWindow int64   `json:"completed_in_window"`
		MaxInFlight       int64   `json:"max_in_flight"`    // most sends started and not yet answered
		InFlightAtEnd     int64   `json:"in_flight_at_end"` // sends still waiting when the window ended: the backlog
		DrainS            float64 `json:"drain_s"`          // from the window's end to the last measured 201
	} `json:"sends"`
	SendLatency     percentiles `json:"send_latency"`     // due → 201
	DeliveryLatency percentiles `json:"delivery_latency"` // due → message.new on each member's stream
	QueueDelay      percentiles `json:"queue_delay"`      // due → the send's goroutine running (the generator's own lag)
	Delivery        struct {
		Expected      int64  `json:"expected"`       // acknowledged messages × members (sender included)
		Live          int64  `json:"live"`           // unique message.new deliveries of this run's messages
		Recovered     int64  `json:"recovered"`      // first received through an after_seq catch-up after resync
		Lost          int64  `json:"lost"`           // expected, never received, even after catch-up and grace
		Duplicated    int64  `json:"duplicated"`     // one message id twice on one user's stream
		Foreign       int64  `json:"foreign"`        // message.new of messages this run did not send
		SeqCollisions int64  `json:"seq_collisions"` // two acknowledged messages with one (conversation, seq)
		NotStored     *int64 `json:"not_stored,omitempty"`
	} `json:"delivery"`
	Streams struct {
		Events        int64            `json:"events"`
		Heartbeats    int64            `json:"heartbeats"`
		Resyncs       int64            `json:"resyncs"`
		CatchUps      int64            `json:"catch_ups"`
		CatchUpErrors int64            `json:"catch_up_errors"`
		Reconnects    int64            `json:"reconnects"`
		Errors        map[string]int64 `json:"errors"`
	} `json:"streams"`
	CPU        cpuUsage `json:"cpu"` // measured window, percent of one core
	GraceUsedS float64  `json:"grace_used_s"`
	RSS        rssStats `json:"rss"`
	Profile    string   `json:"profile,omitempty"` // the server's CPU profile of the measured window
	Notes      []string `json:"notes,omitempty"`
}

type rssStats struct {
	Source    string `json:"source"`
	Samples   int    `json:"samples"`
	MaxBytes  int64  `json:"max_bytes"`
	LastBytes int64  `json:"last_bytes"`
	Error     string `json:"error,omitempty"`
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func latencyRow(p percentiles) string {
	if p.Count == 0 {
		return "-\t-\t-\t-\t0"
	}
	return fmt.Sprintf("%.2f\t%.2f\t%.2f\t%.2f\t%d", p.P50, p.P95, p.P99, p.Max, p.Count)
}

// printTable writes the summary for people.
func printTable(w io.Writer, s *summary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\nloadgen against %s: %d users, %d direct + %d group conversations, %.0f msg/s offered open loop for %.0fs (+%.0fs warm-up) to %s conversations, up to %d connections\n\n",
		s.URL, s.Users, s.Conversations.Direct, s.Conversations.Group, s.RateTarget, s.DurationS, s.WarmupS, s.Convs, s.Conns)
	var kinds []string
	for _, k := range sortedKeys(s.Sends.ErrorKinds) {
		kinds = append(kinds, fmt.Sprintf("%s×%d", k, s.Sends.ErrorKinds[k]))
	}
	errs := fmt.Sprint(s.Sends.Errors)
	if len(kinds) > 0 {
		errs += " (" + strings.Join(kinds, ", ") + ")"
	}
	fmt.Fprintf(tw, "sends attempted\t%d\n", s.Sends.Attempted)
	fmt.Fprintf(tw, "sends ok\t%d\n", s.Sends.OK)
	fmt.Fprintf(tw, "send errors\t%s\n", errs)
	fmt.Fprintf(tw, "offered sends/s\t%.1f\n", s.Sends.OfferedPerSecond)
	fmt.Fprintf(tw, "ACHIEVED durable sends/s\t%.1f  (%d answered 201 in the %.1fs window)\n", s.Sends.PerSecond, s.Sends.CompletedInWindow, s.Sends.WindowS)
	fmt.Fprintf(tw, "in flight: max / at the window's end\t%d / %d  (the last measured 201 came %.1fs after the window)\n", s.Sends.MaxInFlight, s.Sends.InFlightAtEnd, s.Sends.DrainS)
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "latency (ms)\tp50\tp95\tp99\tmax\tcount")
	fmt.Fprintf(tw, "send (due → 201)\t%s\n", latencyRow(s.SendLatency))
	fmt.Fprintf(tw, "send → delivered (due → every member's stream)\t%s\n", latencyRow(s.DeliveryLatency))
	fmt.Fprintf(tw, "generator lag (due → goroutine running)\t%s\n", latencyRow(s.QueueDelay))
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "deliveries expected\t%d\n", s.Delivery.Expected)
	fmt.Fprintf(tw, "deliveries live\t%d\n", s.Delivery.Live)
	fmt.Fprintf(tw, "recovered by catch-up\t%d\n", s.Delivery.Recovered)
	fmt.Fprintf(tw, "LOST\t%d\n", s.Delivery.Lost)
	fmt.Fprintf(tw, "DUPLICATED\t%d\n", s.Delivery.Duplicated)
	if s.Delivery.SeqCollisions > 0 {
		fmt.Fprintf(tw, "SEQ COLLISIONS\t%d\n", s.Delivery.SeqCollisions)
	}
	if s.Delivery.NotStored != nil {
		fmt.Fprintf(tw, "acknowledged but not stored\t%d\n", *s.Delivery.NotStored)
	}
	fmt.Fprintf(tw, "resyncs / catch-ups (errors)\t%d / %d (%d)\n", s.Streams.Resyncs, s.Streams.CatchUps, s.Streams.CatchUpErrors)
	var serrs []string
	for _, k := range sortedKeys(s.Streams.Errors) {
		serrs = append(serrs, fmt.Sprintf("%s×%d", k, s.Streams.Errors[k]))
	}
	fmt.Fprintf(tw, "stream reconnects\t%d %s\n", s.Streams.Reconnects, strings.Join(serrs, ", "))
	fmt.Fprintf(tw, "heartbeats\t%d\n", s.Streams.Heartbeats)
	if s.RSS.Samples > 0 {
		fmt.Fprintf(tw, "server RSS max (last)\t%s (%s), %d samples from %s\n", mib(s.RSS.MaxBytes), mib(s.RSS.LastBytes), s.RSS.Samples, s.RSS.Source)
	} else if s.RSS.Source != "" {
		fmt.Fprintf(tw, "server RSS\tnot sampled: %s\n", s.RSS.Error)
	}
	if c := s.CPU; c.Machine > 0 {
		server := ""
		if c.Server > 0 {
			server = fmt.Sprintf("server %.0f%%, ", c.Server)
		}
		fmt.Fprintf(tw, "CPU, measured window (%% of a core)\tmachine %.0f%% of %d00%%: %spostgres %.0f%%, loadgen %.0f%%, other %.0f%%\n",
			c.Machine, c.Cores, server, c.Postgres, c.Loadgen, c.Other)
		if len(c.OtherTop) > 0 {
			fmt.Fprintf(tw, "  the others\t%s\n", strings.Join(c.OtherTop, ", "))
		}
	}
	tw.Flush()
	for _, n := range s.Notes {
		fmt.Fprintln(w, "  note:", n)
	}
	fmt.Fprintln(w)
}
