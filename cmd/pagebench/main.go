// Command pagebench measures the pages a signed-in user opens most: the conversation list
// (GET /) and a thread (GET /c/{id}). It signs in through the portal's endpoint with a token
// it mints (HS256 with the server's secret), checks each page is the right one, measures
// what each weighs on the wire (identity, gzip, br) and the markup per message, then offers
// each page open loop at -rate requests a second and reports the latency from each
// request's due time. `make bench-pages` (bench/pages.sh) runs it, with wrk for the most
// requests a second and pgbench's select-only ceiling in the same run; see
// docs/performance.md.
//
//	pagebench -url http://127.0.0.1:8103 -thread 1 -empty 50 -rate 1000 -duration 20s -cookie-out cookie.txt
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/internal/cpuprofile"
)

type config struct {
	URL          string
	Secret       string
	Sub          string
	Name         string
	Thread       int64
	Empty        int64
	PageMessages int
	ThreadMarker string
	ListMarker   string
	Rate         float64
	Duration     time.Duration
	Warmup       time.Duration
	Conns        int
	Timeout      time.Duration
	CookieOut    string
	JSON         bool
	// ColdRate, when above zero, adds a cold run of each page: every request comes from a
	// session signed in for it alone that has requested nothing yet, so neither the session
	// nor the page can come from the server's cache — the 8:40 case, when every parent opens
	// the app with a new session.
	ColdRate     float64
	ColdDuration time.Duration
	SignInConns  int
	// ColdProfile, if set, is the server's pprof address: the CPU profile of each cold
	// run's measured window is saved as ColdProfileDir/cpu-cold-<page>.pprof.
	ColdProfile    string
	ColdProfileDir string
}

func main() {
	cfg := config{
		URL: "http://127.0.0.1:8103", Secret: os.Getenv("MESSENGER_JWT_SECRET"), Sub: "bench-teacher", Name: "김민준 선생님",
		PageMessages: 50, ThreadMarker: "(110)", ListMarker: "3학년 2반 학부모",
		Rate: 1000, Duration: 20 * time.Second, Warmup: 2 * time.Second, Conns: 64, Timeout: 5 * time.Second,
	}
	fs := flag.NewFlagSet("pagebench", flag.ExitOnError)
	fs.StringVar(&cfg.URL, "url", cfg.URL, "base URL of the messenger")
	fs.StringVar(&cfg.Secret, "secret", cfg.Secret, "HS256 secret the server verifies portal tokens with (default: $MESSENGER_JWT_SECRET)")
	fs.StringVar(&cfg.Sub, "sub", cfg.Sub, "the portal subject to sign in as (bench/pages-seed.sql's teacher)")
	fs.StringVar(&cfg.Name, "name", cfg.Name, "the name in the token (the seed's, so that signing in writes nothing)")
	fs.Int64Var(&cfg.Thread, "thread", 0, "the conversation id of the thread to open (bench/pages-seed.sql prints it)")
	fs.Int64Var(&cfg.Empty, "empty", 0, "a conversation without messages: the thread page less its messages, for the markup per message")
	fs.IntVar(&cfg.PageMessages, "page-messages", cfg.PageMessages, "messages on the thread's first page")
	fs.StringVar(&cfg.ThreadMarker, "thread-marker", cfg.ThreadMarker, "text the thread page must show (its newest message's)")
	fs.StringVar(&cfg.ListMarker, "list-marker", cfg.ListMarker, "text the list must show (the thread's title)")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "requests a second offered to each page, open loop (0: skip)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured time of each page's open-loop run")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "open-loop time before the measurement")
	fs.IntVar(&cfg.Conns, "conns", cfg.Conns, "most connections at once in the open-loop run")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "a request not answered by its due time + this is an error")
	fs.StringVar(&cfg.CookieOut, "cookie-out", "", "write the session's Cookie header value here (for wrk)")
	fs.Float64Var(&cfg.ColdRate, "cold-rate", 0, "requests a second offered to each page open loop, each from a session of its own that has requested nothing before (0: skip)")
	fs.DurationVar(&cfg.ColdDuration, "cold-duration", 10*time.Second, "measured time of each page's cold run")
	fs.IntVar(&cfg.SignInConns, "sign-in-conns", 8, "sign-ins at once while making the cold run's sessions")
	fs.StringVar(&cfg.ColdProfile, "cold-pprof", "", "the server's pprof listener (host:port): profile each cold run's measured window")
	fs.StringVar(&cfg.ColdProfileDir, "cold-pprof-dir", ".", "where the cold runs' CPU profiles go")
	fs.BoolVar(&cfg.JSON, "json", false, "print the summary as JSON on stdout (the table goes to stderr)")
	fs.Parse(os.Args[1:])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, err := run(ctx, cfg, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pagebench:", err)
		os.Exit(1)
	}
	if cfg.JSON {
		printTable(os.Stderr, sum)
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(sum)
	} else {
		printTable(os.Stdout, sum)
	}
}

// summary is what a run found.
type summary struct {
	URL              string       `json:"url"`
	Pages            []pageResult `json:"pages"`
	MarkupPerMessage float64      `json:"markup_per_message_bytes"` // identity bytes of the thread page less the empty one's, ÷ -page-messages
	ListLinks        int          `json:"list_conversations"`       // distinct /c/{id} links on the list
	Notes            []string     `json:"notes,omitempty"`
}

type pageResult struct {
	Name string `json:"name"`
	Path string `json:"path"`
	// Bytes on the wire: the status line and headers plus the body as sent, for each
	// Accept-Encoding; Encoding is the Content-Encoding the server answered.
	Weights  []weight  `json:"weights"`
	OpenLoop *openLoop `json:"open_loop,omitempty"`
	Cold     *openLoop `json:"cold,omitempty"` // open loop, every request a new session's first
}

type weight struct {
	AcceptEncoding string `json:"accept_encoding"`
	Encoding       string `json:"content_encoding"`
	BodyBytes      int    `json:"body_bytes"`
	WireBytes      int    `json:"wire_bytes"`
}

type openLoop struct {
	Offered   float64     `json:"offered_per_second"`
	Achieved  float64     `json:"achieved_per_second"` // 200s that arrived in the measured window ÷ its length
	OK        int64       `json:"ok"`
	Errors    int64       `json:"errors"`
	ErrorKind []string    `json:"error_samples,omitempty"`
	Latency   percentiles `json:"latency"` // due → the whole body read
}

func run(ctx context.Context, cfg config, log io.Writer) (*summary, error) {
	if cfg.Secret == "" {
		return nil, errors.New("-secret (or $MESSENGER_JWT_SECRET) is needed to mint the portal token")
	}
	if cfg.Thread == 0 {
		return nil, errors.New("-thread is needed: the conversation id bench/pages-seed.sql printed")
	}
	base := strings.TrimRight(cfg.URL, "/")
	cookie, err := signIn(ctx, base, cfg)
	if err != nil {
		return nil, err
	}
	sum := &summary{URL: base}
	pages := []struct{ name, path, marker string }{
		{"thread", "/c/" + strconv.FormatInt(cfg.Thread, 10), cfg.ThreadMarker},
		{"list", "/", cfg.ListMarker},
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	identity := map[string]int{}
	for _, p := range pages {
		res := pageResult{Name: p.name, Path: p.path}
		for _, enc := range []string{"identity", "gzip", "br"} {
			w, body, err := fetch(ctx, client, base+p.path, cookie, enc)
			if err != nil {
				return nil, fmt.Errorf("GET %s (Accept-Encoding: %s): %w", p.path, enc, err)
			}
			if enc == "identity" {
				if !strings.Contains(string(body), p.marker) {
					return nil, fmt.Errorf("GET %s: the page lacks %q: not the page the bench means to measure", p.path, p.marker)
				}
				identity[p.name] = w.BodyBytes
				if p.name == "list" {
					sum.ListLinks = countLinks(string(body))
				}
			}
			res.Weights = append(res.Weights, w)
		}
		sum.Pages = append(sum.Pages, res)
	}
	if cfg.Empty != 0 {
		w, _, err := fetch(ctx, client, base+"/c/"+strconv.FormatInt(cfg.Empty, 10), cookie, "identity")
		if err != nil {
			return nil, fmt.Errorf("GET the empty conversation: %w", err)
		}
		sum.MarkupPerMessage = float64(identity["thread"]-w.BodyBytes) / float64(cfg.PageMessages)
	}
	if cfg.Rate > 0 {
		for i, p := range pages {
			fmt.Fprintf(log, "pagebench: GET %s, %.0f/s open loop for %s (+%s warm-up)\n", p.path, cfg.Rate, cfg.Duration, cfg.Warmup)
			ol := offer(ctx, cfg, cfg.Rate, cfg.Duration, base+p.path, "", func(int64) string { return cookie })
			sum.Pages[i].OpenLoop = ol
		}
	}
	if cfg.ColdRate > 0 {
		n := int(cfg.ColdRate * (cfg.Warmup + cfg.ColdDuration).Seconds())
		for i, p := range pages {
			fmt.Fprintf(log, "pagebench: signing in %d sessions for the cold run of GET %s\n", n, p.path)
			t0 := time.Now()
			cookies, err := signInMany(ctx, base, cfg, n)
			if err != nil {
				return nil, fmt.Errorf("cold run's sessions: %w", err)
			}
			fmt.Fprintf(log, "pagebench: %d sessions in %s; GET %s cold, %.0f/s open loop for %s (+%s warm-up)\n",
				n, time.Since(t0).Round(time.Millisecond), p.path, cfg.ColdRate, cfg.ColdDuration, cfg.Warmup)
			var prof sync.WaitGroup
			if cfg.ColdProfile != "" {
				prof.Go(func() {
					if err := profile(ctx, cfg, p.name); err != nil {
						fmt.Fprintln(log, "pagebench: cold run's CPU profile:", err)
					}
				})
			}
			sum.Pages[i].Cold = offer(ctx, cfg, cfg.ColdRate, cfg.ColdDuration, base+p.path, "gzip, deflate, br", func(k int64) string { return cookies[k] })
			prof.Wait()
		}
	}
	if cfg.CookieOut != "" {
		// A session of its own for wrk, signed in last: the cold runs' thousand sessions of
		// the same teacher have pushed the first one past the cap on a user's sessions.
		if cfg.ColdRate > 0 {
			if cookie, err = signIn(ctx, base, cfg); err != nil {
				return nil, err
			}
		}
		if err := os.WriteFile(cfg.CookieOut, []byte(cookie+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	return sum, ctx.Err()
}

// signIn posts a minted portal token to /auth/portal and answers the session cookie.
func signIn(ctx context.Context, base string, cfg config) (string, error) {
	tok, err := auth.MintToken([]byte(cfg.Secret), "messenger", auth.Claims{
		Issuer: "dreamseed-portal", Subject: cfg.Sub, Name: cfg.Name, OrgID: "bench-org", ZoneID: "bench-zone",
		Role: "teacher", Locale: "ko",
	}, 2*time.Hour)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/auth/portal",
		strings.NewReader(url.Values{"token": {tok}, "next": {"/"}}.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) == 0 {
		return "", fmt.Errorf("POST /auth/portal: HTTP %d, want 303 with a session cookie: %s", resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	var parts []string
	for _, c := range resp.Cookies() {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; "), nil
}

// profile saves the server's CPU profile of a cold run's measured window (after the warm-up).
func profile(ctx context.Context, cfg config, page string) error {
	select {
	case <-time.After(cfg.Warmup):
	case <-ctx.Done():
		return ctx.Err()
	}
	return cpuprofile.Take(ctx, "http://"+cfg.ColdProfile+"/debug/pprof/profile", max(cfg.ColdDuration-time.Second, time.Second),
		filepath.Join(cfg.ColdProfileDir, "cpu-cold-"+page+".pprof"))
}

// signInMany signs in n sessions of the same user, cfg.SignInConns at once.
func signInMany(ctx context.Context, base string, cfg config, n int) ([]string, error) {
	cookies := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range max(cfg.SignInConns, 1) {
		wg.Go(func() {
			for {
				k := int(next.Add(1) - 1)
				if k >= n || ctx.Err() != nil {
					return
				}
				c, err := signIn(ctx, base, cfg)
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
				cookies[k] = c
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return cookies, first
}

// fetch GETs u with the cookie, asking for enc, and answers its weight and its body as sent.
func fetch(ctx context.Context, client *http.Client, u, cookie, enc string) (weight, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return weight{}, nil, err
	}
	req.Header.Set("Cookie", cookie)
	req.Header.Set("Accept", "text/html")
	req.Header.Set("Accept-Encoding", enc)
	resp, err := client.Do(req)
	if err != nil {
		return weight{}, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return weight{}, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return weight{}, nil, fmt.Errorf("HTTP %d, want 200", resp.StatusCode)
	}
	head := len(resp.Proto) + 1 + len(resp.Status) + 2 + 2 // status line, blank line
	for k, vs := range resp.Header {
		for _, v := range vs {
			head += len(k) + 2 + len(v) + 2
		}
	}
	w := weight{AcceptEncoding: enc, Encoding: resp.Header.Get("Content-Encoding"), BodyBytes: len(body), WireBytes: head + len(body)}
	if w.Encoding == "" {
		w.Encoding = "identity"
	}
	return w, body, nil
}

var convLink = regexp.MustCompile(`href="/c/([0-9]+)"`)

// countLinks answers how many distinct conversations a page links to.
func countLinks(page string) int {
	seen := map[string]bool{}
	for _, m := range convLink.FindAllStringSubmatch(page, -1) {
		seen[m[1]] = true
	}
	return len(seen)
}

// offer requests u open loop at rate for cfg.Warmup+duration: each request starts in a
// goroutine of its own when it is due, and its latency counts from then (queueing
// included). Request k carries cookie(k) and asks for Accept-Encoding enc ("": none).
func offer(ctx context.Context, cfg config, rate float64, duration time.Duration, u, enc string, cookie func(int64) string) *openLoop {
	client := &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxConnsPerHost:     cfg.Conns,
		MaxIdleConnsPerHost: cfg.Conns,
		DisableCompression:  true,
	}}
	defer client.CloseIdleConnections()
	total := int64(rate * (cfg.Warmup + duration).Seconds())
	first := int64(rate * cfg.Warmup.Seconds())
	start := time.Now().Add(10 * time.Millisecond)
	winStart, winEnd := start.Add(cfg.Warmup), start.Add(cfg.Warmup+duration)
	at := func(k int64) time.Time { return start.Add(time.Duration(float64(k) / rate * float64(time.Second))) }

	var mu sync.Mutex
	var lat []int64
	var inWindow, ok, errs atomic.Int64
	var samples []string
	var wg sync.WaitGroup
	for k := int64(0); k < total && ctx.Err() == nil; {
		now := time.Now()
		for ; k < total && !at(k).After(now); k++ {
			due, measured, c := at(k), k >= first, cookie(k)
			wg.Go(func() {
				rctx, cancel := context.WithDeadline(ctx, due.Add(cfg.Timeout))
				defer cancel()
				err := get(rctx, client, u, c, enc)
				done := time.Now()
				if err != nil {
					errs.Add(1)
					mu.Lock()
					if len(samples) < 3 {
						samples = append(samples, err.Error())
					}
					mu.Unlock()
					return
				}
				ok.Add(1)
				if !done.Before(winStart) && done.Before(winEnd) {
					inWindow.Add(1)
				}
				if measured {
					mu.Lock()
					lat = append(lat, done.Sub(due).Microseconds())
					mu.Unlock()
				}
			})
		}
		if k < total {
			time.Sleep(max(time.Until(at(k)), time.Millisecond))
		}
	}
	wg.Wait()
	return &openLoop{
		Offered: rate, Achieved: float64(inWindow.Load()) / duration.Seconds(),
		OK: ok.Load(), Errors: errs.Load(), ErrorKind: samples, Latency: summarize(lat),
	}
}

func get(ctx context.Context, client *http.Client, u, cookie, enc string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Cookie", cookie)
	req.Header.Set("Accept", "text/html")
	if enc != "" {
		req.Header.Set("Accept-Encoding", enc)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

type percentiles struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// summarize answers nearest-rank percentiles of µs samples, in milliseconds.
func summarize(us []int64) percentiles {
	if len(us) == 0 {
		return percentiles{}
	}
	sort.Slice(us, func(i, j int) bool { return us[i] < us[j] })
	at := func(q float64) float64 {
		i := max(0, min(int(q*float64(len(us))+0.999999999)-1, len(us)-1))
		return float64(us[i]) / 1000
	}
	return percentiles{Count: len(us), P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: float64(us[len(us)-1]) / 1000}
}

func printTable(w io.Writer, s *summary) {
	fmt.Fprintf(w, "\npagebench against %s\n", s.URL)
	for _, p := range s.Pages {
		fmt.Fprintf(w, "\nGET %s (%s)\n", p.Path, p.Name)
		for _, x := range p.Weights {
			fmt.Fprintf(w, "  Accept-Encoding %-8s  answered %-8s  body %7d B  on the wire %7d B\n", x.AcceptEncoding, x.Encoding, x.BodyBytes, x.WireBytes)
		}
		if ol := p.OpenLoop; ol != nil {
			fmt.Fprintf(w, "  open loop: %.0f/s offered, %.1f/s achieved, %d ok, %d errors; latency from due ms p50 %.2f p95 %.2f p99 %.2f max %.2f\n",
				ol.Offered, ol.Achieved, ol.OK, ol.Errors, ol.Latency.P50, ol.Latency.P95, ol.Latency.P99, ol.Latency.Max)
			for _, e := range ol.ErrorKind {
				fmt.Fprintln(w, "    error:", e)
			}
		}
		if ol := p.Cold; ol != nil {
			fmt.Fprintf(w, "  cold (a new session each request, asking as a browser: gzip): %.0f/s offered, %.1f/s achieved, %d ok, %d errors; latency from due ms p50 %.2f p95 %.2f p99 %.2f max %.2f\n",
				ol.Offered, ol.Achieved, ol.OK, ol.Errors, ol.Latency.P50, ol.Latency.P95, ol.Latency.P99, ol.Latency.Max)
			for _, e := range ol.ErrorKind {
				fmt.Fprintln(w, "    error:", e)
			}
		}
	}
	if s.MarkupPerMessage > 0 {
		fmt.Fprintf(w, "\nmarkup per message: %.0f B (identity)\n", s.MarkupPerMessage)
	}
	fmt.Fprintf(w, "conversations linked from the list: %d\n", s.ListLinks)
	for _, n := range s.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}
