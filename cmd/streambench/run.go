package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/internal/proc"
)

// target is one server the streams are held on: the messenger or the bare server.
type target struct {
	Name string
	URL  string
	PID  int
	Bare bool
}

// result is what one target measured.
type result struct {
	Target          string           `json:"target"`
	Streams         int              `json:"streams"`
	OpenSeconds     float64          `json:"open_seconds"`
	RSSIdleBytes    int64            `json:"rss_idle_bytes"`  // before any stream
	RSSBytes        int64            `json:"rss_bytes"`       // with every stream open, settled
	RSSAfterBytes   int64            `json:"rss_after_bytes"` // after the bursts and the hold
	PerStreamKiB    float64          `json:"per_stream_kib"`  // (RSSBytes - RSSIdleBytes) / streams
	Bursts          int              `json:"bursts"`
	Delivered       int64            `json:"delivered"`       // burst events received, of bursts × streams
	BurstP50Ms      float64          `json:"burst_p50_ms"`    // from the burst's request to each stream's event
	BurstP99Ms      float64          `json:"burst_p99_ms"`    //
	BurstMaxMs      float64          `json:"burst_max_ms"`    //
	BurstAnswerMs   []float64        `json:"burst_answer_ms"` // each burst request's own latency
	EachBurstP99Ms  []float64        `json:"each_burst_p99_ms"`
	HeartbeatsMin   int64            `json:"heartbeats_min"` // the fewest heartbeats any stream received
	HeartbeatsTotal int64            `json:"heartbeats_total"`
	StreamErrors    map[string]int64 `json:"stream_errors,omitempty"`
	Group           *groupResult     `json:"group,omitempty"` // the messenger's group phase
}

// bench holds the streams of one target.
type bench struct {
	cfg     config
	t       target
	client  *http.Client
	tokens  []string
	annID   int64 // the zone's announcement conversation (the messenger)
	burst   atomic.Int64
	arrived [][]int64 // [burst][stream]: Unix ns the stream got that burst's event, 0 if not
	got     atomic.Int64
	beats   []atomic.Int64
	group   atomic.Pointer[groupPhase] // while the group phase runs
	errMu   sync.Mutex
	errs    map[string]int64
}

func newBench(cfg config, t target) *bench {
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{
		DialContext:         dialer.DialContext,
		MaxIdleConns:        100,
		MaxIdleConnsPerHost: 100,
		DisableCompression:  true,
		// A stream's 10,000 connections and the API's few: read buffers kept small, since
		// there are as many as streams.
		ReadBufferSize:  4 << 10,
		WriteBufferSize: 4 << 10,
	}
	b := &bench{cfg: cfg, t: t, client: &http.Client{Transport: tr}, errs: map[string]int64{}}
	b.arrived = make([][]int64, cfg.Bursts)
	for i := range b.arrived {
		b.arrived[i] = make([]int64, cfg.Streams)
	}
	b.beats = make([]atomic.Int64, cfg.Streams)
	return b
}

// run opens every stream, measures the server's memory, sends the bursts, holds the
// streams, and closes them all at once.
func (b *bench) run(ctx context.Context) (*result, error) {
	res := &result{Target: b.t.Name, Streams: b.cfg.Streams, Bursts: b.cfg.Bursts}
	if !b.t.Bare {
		if err := b.mintTokens(); err != nil {
			return nil, err
		}
	}
	time.Sleep(2 * time.Second)
	res.RSSIdleBytes = b.rss()

	streamsCtx, closeAll := context.WithCancel(ctx)
	defer closeAll()
	var wg sync.WaitGroup
	start := time.Now()
	opened := make(chan error, b.cfg.Streams)
	slots := make(chan struct{}, b.cfg.OpenConcurrency)
	for i := range b.cfg.Streams {
		slots <- struct{}{}
		wg.Go(func() {
			b.stream(streamsCtx, i, func(err error) {
				opened <- err
				<-slots
			})
		})
		if ctx.Err() != nil {
			break
		}
	}
	for range b.cfg.Streams {
		if err := <-opened; err != nil {
			closeAll()
			wg.Wait()
			return nil, fmt.Errorf("%s: open a stream: %w", b.t.Name, err)
		}
	}
	res.OpenSeconds = time.Since(start).Seconds()
	fmt.Fprintf(logOut, "%s: %d streams open in %.1f s\n", b.t.Name, b.cfg.Streams, res.OpenSeconds)

	time.Sleep(b.cfg.Settle)
	res.RSSBytes = b.rssMedian(5)
	res.PerStreamKiB = float64(res.RSSBytes-res.RSSIdleBytes) / float64(b.cfg.Streams) / 1024
	fmt.Fprintf(logOut, "%s: RSS %.1f MB (idle %.1f MB): %.1f KiB a stream\n", b.t.Name, mb(res.RSSBytes), mb(res.RSSIdleBytes), res.PerStreamKiB)

	if !b.t.Bare {
		if err := b.findAnnouncements(ctx); err != nil {
			return nil, err
		}
	}
	var lat []float64
	for k := range b.cfg.Bursts {
		b.burst.Store(int64(k))
		b.got.Store(0)
		due := time.Now()
		if err := b.sendBurst(ctx, k); err != nil {
			return nil, fmt.Errorf("%s: burst %d: %w", b.t.Name, k, err)
		}
		res.BurstAnswerMs = append(res.BurstAnswerMs, ms(time.Since(due)))
		deadline := time.Now().Add(b.cfg.BurstTimeout)
		for b.got.Load() < int64(b.cfg.Streams) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		res.Delivered += b.got.Load()
		var one []float64
		for _, at := range b.arrived[k] {
			if at != 0 {
				one = append(one, ms(time.Duration(at-due.UnixNano())))
			}
		}
		lat = append(lat, one...)
		slices.Sort(one)
		res.EachBurstP99Ms = append(res.EachBurstP99Ms, quantile(one, 0.99))
		time.Sleep(b.cfg.BurstGap)
	}
	b.burst.Store(-1)
	slices.Sort(lat)
	res.BurstP50Ms, res.BurstP99Ms = quantile(lat, 0.50), quantile(lat, 0.99)
	if len(lat) > 0 {
		res.BurstMaxMs = lat[len(lat)-1]
	}
	fmt.Fprintf(logOut, "%s: %d of %d burst events delivered, p50 %.1f ms, p99 %.1f ms, max %.1f ms; each burst's p99 %.0f ms, its request %.0f ms\n",
		b.t.Name, res.Delivered, b.cfg.Bursts*b.cfg.Streams, res.BurstP50Ms, res.BurstP99Ms, res.BurstMaxMs, res.EachBurstP99Ms, res.BurstAnswerMs)

	if !b.t.Bare && b.cfg.GroupSize > 0 && b.cfg.GroupSends > 0 {
		g, err := b.runGroup(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.t.Name, err)
		}
		res.Group = g
	}

	time.Sleep(b.cfg.Hold)
	res.RSSAfterBytes = b.rss()
	res.HeartbeatsMin = -1
	for i := range b.beats {
		n := b.beats[i].Load()
		res.HeartbeatsTotal += n
		if res.HeartbeatsMin < 0 || n < res.HeartbeatsMin {
			res.HeartbeatsMin = n
		}
	}
	closeAll()
	wg.Wait()
	b.errMu.Lock()
	if len(b.errs) > 0 {
		res.StreamErrors = b.errs
	}
	b.errMu.Unlock()
	return res, nil
}

// mintTokens makes the portal tokens of the streams' users: the first a teacher of the
// zone, who posts the announcements.
func (b *bench) mintTokens() error {
	b.tokens = make([]string, b.cfg.Streams)
	for i := range b.tokens {
		role, name := "parent", "학부모 "+strconv.Itoa(i)
		if i == 0 {
			role, name = "teacher", "김민준 선생님"
		}
		tok, err := auth.MintToken([]byte(b.cfg.Secret), b.cfg.Audience, auth.Claims{
			Issuer: b.cfg.Issuer, Subject: "stream-user-" + strconv.Itoa(i), Name: name, OrgID: b.cfg.Org, ZoneID: b.cfg.Zone,
			Role: role, Locale: "ko",
		}, 2*time.Hour)
		if err != nil {
			return fmt.Errorf("mint token: %w", err)
		}
		b.tokens[i] = tok
	}
	return nil
}

// stream holds stream i until ctx ends; opened is called once, with nil when the stream
// answered 200, or the error.
func (b *bench) stream(ctx context.Context, i int, opened func(error)) {
	path := "/events"
	if !b.t.Bare {
		path = "/api/v1/events"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.t.URL+path, nil)
	if err != nil {
		opened(err)
		return
	}
	req.Header.Set("Accept", "text/event-stream")
	if !b.t.Bare {
		req.Header.Set("Authorization", "Bearer "+b.tokens[i])
	}
	resp, err := b.client.Do(req)
	if err != nil {
		opened(err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		opened(fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, strings.TrimSpace(string(raw))))
		return
	}
	opened(nil)
	err = b.read(resp.Body, i)
	if ctx.Err() == nil {
		kind := "ended"
		if err != nil {
			kind = err.Error()
		}
		b.errMu.Lock()
		b.errs[kind]++
		b.errMu.Unlock()
	}
}

// read counts stream i's heartbeats and records when it got each burst's event.
func (b *bench) read(body io.Reader, i int) error {
	br := bufio.NewReaderSize(body, 2<<10)
	var event []byte
	for {
		line, err := br.ReadSlice('\n')
		for errors.Is(err, bufio.ErrBufferFull) { // a long data line: not what is counted
			_, err = br.ReadSlice('\n')
			line = []byte("data: \n")
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		switch {
		case len(line) == 1 || (len(line) == 2 && line[0] == '\r'):
			if bytes.Equal(event, []byte("message.new")) {
				if k := b.burst.Load(); k >= 0 && b.arrived[k][i] == 0 {
					b.arrived[k][i] = time.Now().UnixNano()
					b.got.Add(1)
				}
			}
			event = event[:0]
		case line[0] == ':':
			b.beats[i].Add(1)
		case bytes.HasPrefix(line, []byte("data: ")) && bytes.Equal(event, []byte("message.new")):
			if g := b.group.Load(); g != nil {
				g.match(line, i)
			}
		case bytes.HasPrefix(line, []byte("event: ")):
			event = append(event[:0], bytes.TrimRight(line[len("event: "):], "\r\n")...)
		}
	}
}

// findAnnouncements finds the zone's announcement conversation, which the teacher posts to.
func (b *bench) findAnnouncements(ctx context.Context) error {
	var out struct {
		Conversations []struct {
			ID   int64  `json:"id"`
			Kind string `json:"kind"`
		} `json:"conversations"`
	}
	if err := b.api(ctx, http.MethodGet, "/api/v1/conversations?limit=50", nil, &out); err != nil {
		return err
	}
	for _, c := range out.Conversations {
		if c.Kind == "announcement" {
			b.annID = c.ID
			return nil
		}
	}
	return errors.New("the teacher has no announcement conversation (is the zone set on the tokens?)")
}

// sendBurst sends burst k: an announcement to the zone, or the bare server's event.
func (b *bench) sendBurst(ctx context.Context, k int) error {
	if b.t.Bare {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.t.URL+"/burst?n="+strconv.Itoa(k), nil)
		if err != nil {
			return err
		}
		resp, err := b.client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("POST /burst: %d", resp.StatusCode)
		}
		return nil
	}
	in := map[string]string{
		"client_msg_id": fmt.Sprintf("00000000-0000-4000-8000-%012d", time.Now().UnixNano()%1e12),
		"body":          fmt.Sprintf("burst %d: 내일은 재량휴업일입니다. 가정에서 안전하게 지내세요.", k),
	}
	return b.api(ctx, http.MethodPost, "/api/v1/conversations/"+strconv.FormatInt(b.annID, 10)+"/messages", in, nil)
}

// api makes a JSON request as the teacher.
func (b *bench) api(ctx context.Context, method, path string, in, out any) error {
	return b.apiAs(ctx, 0, method, path, in, out)
}

// apiAs makes a JSON request as user i.
func (b *bench) apiAs(ctx context.Context, i int, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.t.URL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+b.tokens[i])
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func (b *bench) rss() int64 {
	if b.t.PID == 0 {
		return 0
	}
	n, err := proc.RSS(b.t.PID)
	if err != nil {
		fmt.Fprintf(logOut, "%s: RSS of pid %d: %v\n", b.t.Name, b.t.PID, err)
	}
	return n
}

// rssMedian samples the RSS n times a second apart and answers the median.
func (b *bench) rssMedian(n int) int64 {
	var s []int64
	for i := range n {
		if i > 0 {
			time.Sleep(time.Second)
		}
		s = append(s, b.rss())
	}
	slices.Sort(s)
	return s[len(s)/2]
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func mb(n int64) float64         { return float64(n) / 1e6 }
