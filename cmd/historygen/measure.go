package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/store"
)

// The five reads, and the ceiling each run measures beside them.
const (
	readNewest  = "newest page"
	readBack    = "page 100,000 back"
	readList    = "conversation list"
	readUnread  = "unread counts"
	readCatchUp = "after_seq catch-up"
	readCeiling = "ceiling"
)

var readNames = []string{readNewest, readBack, readList, readUnread, readCatchUp, readCeiling}

// backSeq answers a before_seq about 100,000 messages before the thread's newest (half
// way down a thread that short).
func (p Plan) backSeq(rng *rand.Rand) int64 {
	if p.ThreadLastSeq > 101_000 {
		return p.ThreadLastSeq - 100_000 - rng.Int64N(1000)
	}
	return max(1, p.ThreadLastSeq/2)
}

// catchUpSeq answers the after_seq of a client that missed 1 to 50 of the thread's newest
// messages.
func (p Plan) catchUpSeq(rng *rand.Rand) int64 {
	return max(0, p.ThreadLastSeq-1-rng.Int64N(min(50, p.ThreadLastSeq)))
}

// Stats are the latencies of one read over a run.
type Stats struct {
	Name   string  `json:"name"`
	Count  int     `json:"count"`
	Errors int     `json:"errors"`
	P50    float64 `json:"p50_ms"`
	P95    float64 `json:"p95_ms"`
	P99    float64 `json:"p99_ms"`
	Max    float64 `json:"max_ms"`
	Err    string  `json:"first_error,omitempty"`
}

type sampler struct {
	samples map[string][]time.Duration
	errs    map[string]int
	first   map[string]string
}

func newSampler() *sampler {
	return &sampler{samples: map[string][]time.Duration{}, errs: map[string]int{}, first: map[string]string{}}
}

func (s *sampler) record(name string, d time.Duration, err error) {
	if err != nil {
		s.errs[name]++
		if s.first[name] == "" {
			s.first[name] = err.Error()
		}
		return
	}
	s.samples[name] = append(s.samples[name], d)
}

func (s *sampler) stats() []Stats {
	out := make([]Stats, 0, len(readNames))
	for _, name := range readNames {
		d := s.samples[name]
		st := Stats{Name: name, Count: len(d), Errors: s.errs[name], Err: s.first[name]}
		if len(d) > 0 {
			sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
			q := func(p float64) float64 {
				return float64(d[min(len(d)-1, int(p*float64(len(d))))]) / float64(time.Millisecond)
			}
			st.P50, st.P95, st.P99, st.Max = q(0.50), q(0.95), q(0.99), float64(d[len(d)-1])/float64(time.Millisecond)
		}
		out = append(out, st)
	}
	return out
}

// Run is what store or http measured.
type Run struct {
	Where  string  `json:"where"`
	Runs   int     `json:"runs"`
	Warmup int     `json:"warmup"`
	Stats  []Stats `json:"stats"`
}

// measure runs each read runs times (after warmup unmeasured rounds), in a new random
// order each round, so that what the machine does meanwhile falls on all of them alike.
func measure(ctx context.Context, runs, warmup int, seed uint64, do func(name string, rng *rand.Rand) error) *sampler {
	rng := rand.New(rand.NewPCG(seed, 7))
	s := newSampler()
	order := append([]string(nil), readNames...)
	for round := 0; round < warmup+runs && ctx.Err() == nil; round++ {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, name := range order {
			start := time.Now()
			err := do(name, rng)
			if round >= warmup {
				s.record(name, time.Since(start), err)
			}
		}
	}
	return s
}

func printRun(w io.Writer, r Run) {
	var ceiling float64
	for _, st := range r.Stats {
		if st.Name == readCeiling {
			ceiling = st.P99
		}
	}
	fmt.Fprintf(w, "%s: %d runs each (after %d warm-up rounds), ms\n", r.Where, r.Runs, r.Warmup)
	for _, st := range r.Stats {
		fmt.Fprintf(w, "  %-20s p50 %7.2f  p95 %7.2f  p99 %7.2f  max %7.2f  p99/ceiling %6.1f  errors %d %s\n",
			st.Name, st.P50, st.P95, st.P99, st.Max, st.P99/max(ceiling, 1e-9), st.Errors, st.Err)
	}
}

// storeReads answers each read as the JSON API's handlers ask the chat service for it (the
// same transactions and statements), as the heavy user; the ceiling is a transaction of
// the store with nothing in it (BEGIN, the identity's settings, COMMIT). Each answer is
// checked.
func storeReads(ctx context.Context, db *store.DB, p Plan) func(name string, rng *rand.Rand) error {
	me := messenger.User{ID: p.UserID, OrgID: p.OrgID, ZoneID: p.ZoneID}
	svc := chat.NewService(db, realtime.NewMemory(16), slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry(), nil)
	page := func(pg chat.Page, from int64) error {
		msgs, _, err := svc.Messages(ctx, me, p.Thread, pg)
		if err != nil {
			return err
		}
		return checkPage(msgs, p, from, pg.After, chat.PageSize)
	}
	return func(name string, rng *rand.Rand) error {
		switch name {
		case readNewest:
			return page(chat.Page{}, 0)
		case readBack:
			from := p.backSeq(rng)
			return page(chat.Page{BeforeSeq: from}, from)
		case readCatchUp:
			from := p.catchUpSeq(rng)
			return page(chat.Page{After: true, AfterSeq: from}, from)
		case readList:
			list, err := svc.Conversations(ctx, me, "", 0)
			if err == nil && len(list.Conversations) != min(chat.PageSize, p.HeavyConvs) {
				err = fmt.Errorf("the list has %d conversations, want %d", len(list.Conversations), min(chat.PageSize, p.HeavyConvs))
			}
			return err
		case readUnread:
			counts, err := svc.UnreadCounts(ctx, me)
			if err == nil && int64(len(counts)) != p.HeavyUnread {
				err = fmt.Errorf("%d conversations unread, want %d", len(counts), p.HeavyUnread)
			}
			return err
		case readCeiling:
			return db.InTx(ctx, me.Identity(), func(*store.Tx) error { return nil })
		}
		return fmt.Errorf("no read %q", name)
	}
}

// checkPage checks a page of the thread: before from (0: the newest), newest first, or
// after from, oldest first; seqs without gaps.
func checkPage(msgs []messenger.Message, p Plan, from int64, after bool, limit int64) error {
	seqs := make([]int64, len(msgs))
	for i, m := range msgs {
		seqs[i] = m.Seq
	}
	return checkSeqs(seqs, p, from, after, limit)
}

// checkSeqs checks the seqs of a page of at most limit messages.
func checkSeqs(seqs []int64, p Plan, from int64, after bool, limit int64) error {
	want, next, step := limit, p.ThreadLastSeq, int64(-1)
	switch {
	case after:
		want, next, step = min(want, p.ThreadLastSeq-from), from+1, 1
	case from > 0:
		want, next = min(want, from-1), from-1
	default:
		want = min(want, p.ThreadLastSeq)
	}
	if int64(len(seqs)) != want {
		return fmt.Errorf("%d messages, want %d", len(seqs), want)
	}
	for _, s := range seqs {
		if s != next {
			return fmt.Errorf("seq %d where %d was due", s, next)
		}
		next += step
	}
	return nil
}

// runFlags are the flags store and http share.
type runFlags struct {
	plan, out    string
	runs, warmup int
}

func (f *runFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&f.plan, "plan", "plan.json", "what the load made")
	fs.IntVar(&f.runs, "runs", 1000, "measured runs of each read")
	fs.IntVar(&f.warmup, "warmup", 20, "unmeasured rounds first")
	fs.StringVar(&f.out, "json", "", "also write the results here")
}

// measure runs the reads and prints what they measured (and writes it to -json).
func (f runFlags) measure(ctx context.Context, where string, seed uint64, do func(string, *rand.Rand) error) error {
	r := Run{Where: where, Runs: f.runs, Warmup: f.warmup, Stats: measure(ctx, f.runs, f.warmup, seed, do).stats()}
	printRun(os.Stdout, r)
	if f.out != "" {
		if err := writeJSON(f.out, r); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func storeCmd(ctx context.Context, args []string) error {
	var dsn string
	var f runFlags
	fs := flag.NewFlagSet("historygen store", flag.ExitOnError)
	fs.StringVar(&dsn, "db", "", "the loaded database as the application's role (messenger_app)")
	f.add(fs)
	fs.Parse(args)
	p, err := readPlan(f.plan)
	if err != nil {
		return err
	}
	db, err := store.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	return f.measure(ctx, "chat service and store (the server's transactions and statements, as messenger_app)", 1, storeReads(ctx, db, p))
}

// httpReads answers each read as a client of the JSON API asks for it, with the heavy
// user's portal token; the ceiling is GET /healthz, the server's barest answer.
func httpReads(ctx context.Context, base, token string, p Plan) func(name string, rng *rand.Rand) error {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	thread := base + "/api/v1/conversations/" + strconv.FormatInt(p.Thread, 10) + "/messages"
	get := func(url string, into any) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
			return fmt.Errorf("GET %s: %s %s", url, resp.Status, b)
		}
		if into == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			return err
		}
		return json.NewDecoder(resp.Body).Decode(into)
	}
	type page struct {
		Messages []struct {
			Seq int64 `json:"seq"`
		} `json:"messages"`
		HasMore bool `json:"has_more"`
	}
	checkAPIPage := func(url string, from int64, after bool) error {
		var pg page
		if err := get(url, &pg); err != nil {
			return err
		}
		seqs := make([]int64, len(pg.Messages))
		for i, m := range pg.Messages {
			seqs[i] = m.Seq
		}
		avail := p.ThreadLastSeq - from // after from
		if !after && from > 0 {
			avail = from - 1
		} else if !after {
			avail = p.ThreadLastSeq
		}
		if more := avail > chat.PageSize; pg.HasMore != more {
			return fmt.Errorf("has_more %v, want %v", pg.HasMore, more)
		}
		return checkSeqs(seqs, p, from, after, chat.PageSize)
	}
	return func(name string, rng *rand.Rand) error {
		switch name {
		case readNewest:
			return checkAPIPage(thread, 0, false)
		case readBack:
			from := p.backSeq(rng)
			return checkAPIPage(thread+"?before_seq="+strconv.FormatInt(from, 10), from, false)
		case readCatchUp:
			from := p.catchUpSeq(rng)
			return checkAPIPage(thread+"?after_seq="+strconv.FormatInt(from, 10), from, true)
		case readList:
			var list struct {
				Conversations []json.RawMessage `json:"conversations"`
			}
			if err := get(base+"/api/v1/conversations", &list); err != nil {
				return err
			}
			if len(list.Conversations) != min(chat.PageSize, p.HeavyConvs) {
				return fmt.Errorf("the list has %d conversations", len(list.Conversations))
			}
			return nil
		case readUnread:
			var u struct {
				Conversations map[string]int64 `json:"conversations"`
			}
			if err := get(base+"/api/v1/unread", &u); err != nil {
				return err
			}
			if int64(len(u.Conversations)) != p.HeavyUnread {
				return fmt.Errorf("%d conversations unread, want %d", len(u.Conversations), p.HeavyUnread)
			}
			return nil
		case readCeiling:
			return get(base+"/healthz", nil)
		}
		return fmt.Errorf("no read %q", name)
	}
}

func httpCmd(ctx context.Context, args []string) error {
	var base, secret string
	var f runFlags
	fs := flag.NewFlagSet("historygen http", flag.ExitOnError)
	fs.StringVar(&base, "url", "http://127.0.0.1:8105", "the running messenger, on the loaded database")
	fs.StringVar(&secret, "secret", os.Getenv("MESSENGER_JWT_SECRET"), "HS256 secret the server verifies portal tokens with (default: $MESSENGER_JWT_SECRET)")
	f.add(fs)
	fs.Parse(args)
	p, err := readPlan(f.plan)
	if err != nil {
		return err
	}
	token, err := auth.MintToken([]byte(secret), "messenger", auth.Claims{
		Issuer: p.Issuer, Subject: p.Sub, Name: p.Name, OrgID: p.Org, ZoneID: p.Zone, Role: p.Role, Locale: "ko",
	}, time.Hour)
	if err != nil {
		return err
	}
	return f.measure(ctx, "HTTP JSON API (one client, one request at a time, keep-alive)", 2, httpReads(ctx, base, token, p))
}
