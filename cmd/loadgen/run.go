package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ecdh"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/dreamseed/messenger/internal/cpuprofile"
	"github.com/dreamseed/messenger/internal/proc"
	"github.com/dreamseed/messenger/internal/sse"
	"github.com/dreamseed/messenger/internal/tick"
)

// streamIdle is how long a stream may stay silent before it is taken for dead and
// reopened: the contract promises a heartbeat at least every 25 s.
const streamIdle = 60 * time.Second

type convInfo struct {
	ID      int64
	Kind    string
	Members []int32
}

// bench is one run.
type bench struct {
	cfg    config
	log    io.Writer
	base   string
	users  []benchUser
	states []*userState
	reg    *registry

	api    *http.Client // sends, conversations, catch-ups
	stream *http.Client // one long request per user

	convs     []convInfo
	userConvs [][]int // user -> indexes into convs

	streamErrMu sync.Mutex
	streamErrs  map[string]int64

	catchUpWG     sync.WaitGroup
	catchUpErrors atomic.Int64
	catchMu       sync.Mutex
	catching      map[int]bool // user -> a catch-up is running
	pending       map[int]bool // user -> another resync came while it ran

	backlog     int64      // sends in flight when the measured window ended
	profileDone chan error // the CPU profile's outcome, when one was asked for
}

func run(ctx context.Context, cfg config, log io.Writer) (*summary, error) {
	if cfg.Rate <= 0 || cfg.Duration <= 0 || cfg.Conns <= 0 || cfg.Timeout <= 0 {
		return nil, errors.New("-rate, -duration, -conns and -timeout must be positive")
	}
	if cfg.MaxInFlight < 0 {
		return nil, errors.New("-max-in-flight must be 0 (no bound) or positive")
	}
	if cfg.Convs != "all" && cfg.Convs != "groups" {
		return nil, fmt.Errorf("-convs %q: want all or groups", cfg.Convs)
	}
	plan, err := planConversations(cfg.Users, cfg.Groups, cfg.GroupSize)
	if err != nil {
		return nil, err
	}
	ttl := cfg.Warmup + cfg.Duration + cfg.Grace + cfg.ConnectTimeout + 30*time.Minute
	users, err := makeUsers(cfg, ttl)
	if err != nil {
		return nil, err
	}
	b := &bench{
		cfg: cfg, log: log, base: strings.TrimRight(cfg.URL, "/"), users: users, reg: newRegistry(),
		streamErrs: map[string]int64{}, catching: map[int]bool{}, pending: map[int]bool{},
		userConvs: make([][]int, cfg.Users),
	}
	for range users {
		b.states = append(b.states, newUserState())
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	b.api = &http.Client{Timeout: cfg.Timeout, Transport: &http.Transport{
		DialContext: dialer.DialContext, MaxIdleConns: 0, MaxIdleConnsPerHost: cfg.Conns,
		MaxConnsPerHost: cfg.Conns, IdleConnTimeout: 90 * time.Second, DisableCompression: true,
	}}
	b.stream = &http.Client{Transport: &http.Transport{
		DialContext: dialer.DialContext, MaxIdleConnsPerHost: cfg.Users, MaxConnsPerHost: 0,
		ResponseHeaderTimeout: 15 * time.Second, DisableCompression: true,
	}}
	defer b.api.CloseIdleConnections()
	defer b.stream.CloseIdleConnections()

	sum := &summary{
		URL: cfg.URL, Users: cfg.Users, RateTarget: cfg.Rate, DurationS: cfg.Duration.Seconds(),
		WarmupS: cfg.Warmup.Seconds(), Conns: cfg.Conns, Convs: cfg.Convs, StartedAt: time.Now().UTC().Format(time.RFC3339),
	}

	// Server memory, sampled every second from now to the end.
	rssCtx, stopRSS := context.WithCancel(ctx)
	rssDone := make(chan rssStats, 1)
	go func() { rssDone <- b.sampleRSS(rssCtx) }()
	defer stopRSS()

	// 1. One stream per user. Opening it signs the user in, so they exist before anyone
	// names them as a participant.
	streamCtx, stopStreams := context.WithCancel(ctx)
	var streamWG sync.WaitGroup
	defer func() { stopStreams(); streamWG.Wait() }()
	ready := make(chan error, cfg.Users)
	fmt.Fprintf(log, "loadgen: opening %d streams on %s/api/v1/events\n", cfg.Users, b.base)
	for i := range users {
		streamWG.Go(func() { b.runStream(streamCtx, i, ready) })
		if i%20 == 19 {
			time.Sleep(5 * time.Millisecond) // do not stampede the sign-ins
		}
	}
	deadline := time.After(cfg.ConnectTimeout)
	for n := 0; n < cfg.Users; n++ {
		select {
		case err := <-ready:
			if err != nil {
				return nil, fmt.Errorf("open event stream: %w", err)
			}
		case <-deadline:
			return nil, fmt.Errorf("open event streams: only %d of %d open after %s", n, cfg.Users, cfg.ConnectTimeout)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}

	// 2. The conversations.
	fmt.Fprintf(log, "loadgen: creating %d conversations\n", len(plan))
	if err := b.createConversations(ctx, plan); err != nil {
		return nil, err
	}
	for _, c := range b.convs {
		if c.Kind == "direct" {
			sum.Conversations.Direct++
		} else {
			sum.Conversations.Group++
		}
	}

	if cfg.PushSubscribe {
		fmt.Fprintf(log, "loadgen: subscribing %d users to web push\n", cfg.Users)
		if err := b.subscribePush(ctx); err != nil {
			return nil, err
		}
	}

	// 3. Send, open loop.
	fmt.Fprintf(log, "loadgen: sending %.0f msg/s open loop for %s (+%s warm-up) to %s conversations over up to %d connections\n", cfg.Rate, cfg.Duration, cfg.Warmup, cfg.Convs, cfg.Conns)
	st, measuredStart, cpuStart, cpuEnd := b.send(ctx)
	sendEnd := time.Now()
	sum.CPU = cpuBetween(cpuStart, cpuEnd)

	sent := st.sent
	sum.Sends.Attempted = st.attempted.Load()
	sum.Sends.OK = st.ok
	sum.Sends.MeasuredOK = st.measuredOK
	for _, v := range st.errKinds {
		sum.Sends.Errors += v
	}
	for _, e := range st.errSample {
		sum.Notes = append(sum.Notes, "send error: "+e)
	}
	sum.Sends.ErrorKinds = st.errKinds
	sum.Sends.MaxInFlight = st.maxFlight.Load()
	sum.Sends.Shed = st.shed.Load()
	sum.Sends.InFlightAtEnd = b.backlog
	sum.Sends.WindowS = cfg.Duration.Seconds()
	sum.Sends.CompletedInWindow = st.inWindow
	sum.Sends.OfferedPerSecond = float64(int64(cfg.Rate*(cfg.Warmup+cfg.Duration).Seconds())-int64(cfg.Rate*cfg.Warmup.Seconds())) / cfg.Duration.Seconds()
	sum.Sends.PerSecond = float64(st.inWindow) / cfg.Duration.Seconds()
	if !st.lastDone.IsZero() {
		sum.Sends.DrainS = max(0, st.lastDone.Sub(measuredStart.Add(cfg.Duration)).Seconds())
	}
	if b.profileDone != nil {
		if err := <-b.profileDone; err != nil {
			sum.Notes = append(sum.Notes, "CPU profile: "+err.Error())
		} else {
			sum.Profile = cfg.ProfileOut
		}
	}
	// Before summarize, which sorts the latencies in place.
	if cfg.SendTimeline != "" {
		if err := writeTimeline(cfg.SendTimeline, "due_unix_ms,latency_ms", time.Time{}, st.sendDue, st.sendLat); err != nil {
			sum.Notes = append(sum.Notes, "send timeline: "+err.Error())
		}
	}
	sum.SendLatency = summarize(st.sendLat)
	sum.QueueDelay = summarize(st.lag)

	// 4. Grace: wait for the last deliveries and catch-ups.
	graceEnd := sendEnd.Add(cfg.Grace)
	left := missing(sent, b.states)
	for time.Now().Before(graceEnd) && ctx.Err() == nil {
		if left == 0 && !b.catchingUp() {
			break
		}
		time.Sleep(100 * time.Millisecond)
		left = missing(sent, b.states)
	}
	sum.GraceUsedS = time.Since(sendEnd).Seconds()
	b.catchUpWG.Wait()
	stopStreams()
	streamWG.Wait()

	// 5. Count.
	lost := countLost(sent, b.states, subsOf(users))
	sum.Delivery.Expected = lost.Expected
	sum.Delivery.Lost = lost.Lost
	for _, s := range lost.Samples {
		sum.Notes = append(sum.Notes, "lost: "+s)
	}
	var lat, due []int64
	for _, u := range b.states {
		u.mu.Lock()
		lat = append(lat, u.latencies...)
		due = append(due, u.dueAt...)
		sum.Delivery.Live += u.deliveries
		sum.Delivery.Duplicated += u.duplicates
		sum.Delivery.Recovered += u.recovered
		sum.Delivery.Foreign += u.foreign
		sum.Streams.Resyncs += u.resyncs
		sum.Streams.CatchUps += u.catchUps
		sum.Streams.Reconnects += u.reconnects
		sum.Streams.Heartbeats += u.heartbeats
		sum.Streams.Events += u.events
		u.mu.Unlock()
	}
	sum.Streams.CatchUpErrors = b.catchUpErrors.Load()
	sum.Streams.Errors = b.streamErrs
	if cfg.Timeline != "" {
		if err := writeTimeline(cfg.Timeline, "due_ms,latency_ms", measuredStart, due, lat); err != nil {
			sum.Notes = append(sum.Notes, "timeline: "+err.Error())
		}
	}
	sum.DeliveryLatency = summarize(lat)
	sum.Delivery.SeqCollisions = seqCollisions(sent)

	if cfg.Verify && ctx.Err() == nil {
		n, err := b.verifyStored(ctx, sent)
		if err != nil {
			sum.Notes = append(sum.Notes, "verify: "+err.Error())
		} else {
			sum.Delivery.NotStored = &n
		}
	}

	stopRSS()
	sum.RSS = <-rssDone
	sum.FinishedAt = time.Now().UTC().Format(time.RFC3339)
	return sum, nil
}

func subsOf(users []benchUser) []string {
	subs := make([]string, len(users))
	for i, u := range users {
		subs[i] = u.Sub
	}
	return subs
}

// apiError is a non-2xx answer, with the contract's error code when there is one.
type apiError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.Path, e.Status, e.Body)
}

// do sends a JSON request as user and decodes a 2xx answer into out.
func (b *bench) do(ctx context.Context, user int, method, path string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.base+path, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+b.users[user].Token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.api.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		text := strings.TrimSpace(string(raw))
		if len(text) > 300 {
			text = text[:300] + "…"
		}
		return resp.StatusCode, &apiError{Method: method, Path: path, Status: resp.StatusCode, Body: text}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// createConversations creates the planned conversations, a few at a time; the first
// failure ends the run.
// subscribePush stores a web push subscription for every user, 8 at a time, as a browser
// would: its own P-256 key and auth secret, an https endpoint of its own.
func (b *bench) subscribePush(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range b.users {
		g.Go(func() error {
			key, err := ecdh.P256().GenerateKey(crand.Reader)
			if err != nil {
				return err
			}
			secret := make([]byte, 16)
			if _, err := crand.Read(secret); err != nil {
				return err
			}
			var sub struct {
				Endpoint string `json:"endpoint"`
				Keys     struct {
					P256DH string `json:"p256dh"`
					Auth   string `json:"auth"`
				} `json:"keys"`
			}
			sub.Endpoint = "https://push.loadgen.example/" + uuid.NewString()
			sub.Keys.P256DH = base64.RawURLEncoding.EncodeToString(key.PublicKey().Bytes())
			sub.Keys.Auth = base64.RawURLEncoding.EncodeToString(secret)
			if _, err := b.do(ctx, i, http.MethodPost, "/api/v1/push/subscriptions", sub, nil); err != nil {
				return fmt.Errorf("push subscription: %w", err)
			}
			return nil
		})
	}
	return g.Wait()
}

func (b *bench) createConversations(ctx context.Context, plan []convPlan) error {
	type created struct {
		ID           int64 `json:"id"`
		Kind         string
		LastSeq      int64 `json:"last_seq"`
		Participants []struct {
			ID string `json:"id"`
		} `json:"participants"`
	}
	b.convs = make([]convInfo, len(plan))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	sem := make(chan struct{}, 8)
	for i, p := range plan {
		sem <- struct{}{}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			creator := p.Members[0]
			var ids []string
			for _, m := range p.Members[1:] {
				ids = append(ids, b.users[m].Sub)
			}
			in := map[string]any{"kind": p.Kind, "participant_ids": ids}
			if p.Title != "" {
				in["title"] = p.Title
			}
			var out created
			status, err := b.do(ctx, int(creator), http.MethodPost, "/api/v1/conversations", in, &out)
			if err == nil && out.ID == 0 {
				err = fmt.Errorf("POST /api/v1/conversations: HTTP %d without a conversation id", status)
			}
			if err == nil && status != http.StatusCreated && !(status == http.StatusOK && p.Kind == "direct") {
				err = fmt.Errorf("POST /api/v1/conversations: HTTP %d, want 201", status)
			}
			if err != nil {
				once.Do(func() {
					firstErr = fmt.Errorf("create %s conversation %d of %d (by %s with %d others): %w",
						p.Kind, i+1, len(plan), b.users[creator].Sub, len(ids), err)
					cancel()
				})
				return
			}
			if len(out.Participants) > 0 {
				got := map[string]bool{}
				for _, pt := range out.Participants {
					got[pt.ID] = true
				}
				for _, m := range p.Members {
					if !got[b.users[m].Sub] {
						once.Do(func() {
							firstErr = fmt.Errorf("conversation %d: %s is not among the participants the server answered", out.ID, b.users[m].Sub)
							cancel()
						})
						return
					}
				}
			}
			b.convs[i] = convInfo{ID: out.ID, Kind: p.Kind, Members: p.Members}
			for _, m := range p.Members {
				b.states[m].join(out.ID, out.LastSeq)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	seen := map[int64]bool{}
	for i, c := range b.convs {
		if seen[c.ID] {
			return fmt.Errorf("the server answered conversation %d twice: the run's conversations must be distinct", c.ID)
		}
		seen[c.ID] = true
		for _, m := range c.Members {
			b.userConvs[m] = append(b.userConvs[m], i)
		}
	}
	return nil
}

// sendStats is what the sends found; every send's goroutine adds to it under mu.
type sendStats struct {
	mu         sync.Mutex
	sent       []sentMsg
	sendLat    []int64 // µs from the due time to the 201, measured sends that succeeded
	sendDue    []int64 // each sendLat's due time, Unix µs (for the send timeline)
	lag        []int64 // µs from the due time to the send's goroutine running (the generator's own lag)
	ok         int64
	measuredOK int64
	inWindow   int64 // 201s that arrived inside the measured window, whenever they were due
	lastDone   time.Time
	errKinds   map[string]int64
	errSample  []string

	attempted atomic.Int64
	okNow     atomic.Int64 // for the progress line
	inFlight  atomic.Int64 // started by the schedule, not yet answered
	maxFlight atomic.Int64 // written by the schedule only
	shed      atomic.Int64 // due while -max-in-flight sends were in flight: not sent
}

// sendSlot is one due send: its slot, when it is due, and who sends where.
type sendSlot struct {
	k        int64
	at       time.Time
	measured bool
	user     int
	conv     int // index into b.convs
}

// senders answers the users who send and, for each, the conversations they send to:
// every conversation, or with -convs groups only the group conversations (the hot ones a
// saturation run and its pgbench ceilings share).
func (b *bench) senders() (active []int, convsOf [][]int) {
	convsOf = make([][]int, len(b.userConvs))
	for u, cs := range b.userConvs {
		for _, ci := range cs {
			if b.cfg.Convs == "groups" && b.convs[ci].Kind != "group" {
				continue
			}
			convsOf[u] = append(convsOf[u], ci)
		}
		if len(convsOf[u]) > 0 {
			active = append(active, u)
		}
	}
	return active, convsOf
}

// send runs the open-loop schedule: slot k is due at start + k/rate, and each send starts
// in a goroutine of its own when it is due, whatever is still in flight. Nothing is
// skipped: a server that cannot keep up shows as sends waiting (for a connection, then
// for the answer) and as latency, which counts from the due time, not from when a request
// got going (no coordinated omission). Every send's deadline is its due time + -timeout.
func (b *bench) send(ctx context.Context) (st *sendStats, measuredStart time.Time, cpuStart, cpuEnd cpuSnap) {
	cfg := b.cfg
	total := int64(cfg.Rate * (cfg.Warmup + cfg.Duration).Seconds())
	firstMeasured := int64(cfg.Rate * cfg.Warmup.Seconds())
	start := time.Now().Add(20 * time.Millisecond)
	measuredStart = start.Add(cfg.Warmup)
	measuredEnd := measuredStart.Add(cfg.Duration)
	slotAt := func(k int64) time.Time {
		return start.Add(time.Duration(float64(k) / cfg.Rate * float64(time.Second)))
	}
	st = &sendStats{errKinds: map[string]int64{}}
	active, convsOf := b.senders()
	seed := cfg.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	rng := rand.New(rand.NewPCG(seed, 0))

	var progressStop chan struct{}
	if cfg.Progress > 0 {
		progressStop = make(chan struct{})
		go b.progress(st, start, progressStop)
	}

	var wg sync.WaitGroup
	var k int64
	for k < total && ctx.Err() == nil {
		now := time.Now()
		if cpuStart.at.IsZero() && k >= firstMeasured {
			cpuStart = takeCPUSnap(cfg.PID, cfg.PGPID)
			if cfg.ProfileURL != "" {
				b.profileDone = make(chan error, 1)
				go func() {
					b.profileDone <- cpuprofile.Take(ctx, cfg.ProfileURL, min(cfg.ProfileFor, cfg.Duration), cfg.ProfileOut)
				}()
			}
		}
		for k < total && !slotAt(k).After(now) {
			u := active[rng.IntN(len(active))]
			s := sendSlot{k: k, at: slotAt(k), measured: k >= firstMeasured, user: u, conv: convsOf[u][rng.IntN(len(convsOf[u]))]}
			k++
			n := st.inFlight.Load()
			if cfg.MaxInFlight > 0 && n >= int64(cfg.MaxInFlight) {
				st.shed.Add(1) // a saturation run's bound on the generator's own backlog
				continue
			}
			st.inFlight.Add(1)
			st.maxFlight.Store(max(st.maxFlight.Load(), n+1))
			wg.Go(func() { b.sendOne(ctx, s, measuredStart, measuredEnd, st) })
		}
		if k < total {
			// At least a millisecond: at thousands of slots a second, waking for each one
			// would cost the machine the server shares more than the sends do. The slots
			// due meanwhile start together when it wakes, each with its own due time.
			time.Sleep(max(time.Until(slotAt(k)), time.Millisecond))
		}
	}
	if cpuStart.at.IsZero() {
		cpuStart = takeCPUSnap(cfg.PID, cfg.PGPID)
	}
	// The measured window ends with the schedule; what is still in flight then drains
	// (each send within its deadline) outside the CPU window and the achieved rate.
	time.Sleep(time.Until(measuredEnd))
	cpuEnd = takeCPUSnap(cfg.PID, cfg.PGPID)
	b.backlog = st.inFlight.Load()
	wg.Wait()
	if progressStop != nil {
		close(progressStop)
	}
	return st, measuredStart, cpuStart, cpuEnd
}

func (b *bench) progress(st *sendStats, start time.Time, stop <-chan struct{}) {
	tick.Every(b.cfg.Progress, stop, nil, func() {
		var delivered int64
		for _, u := range b.states {
			u.mu.Lock()
			delivered += u.deliveries
			u.mu.Unlock()
		}
		fmt.Fprintf(b.log, "loadgen: %5.0fs  attempted %d  ok %d  in flight %d  deliveries %d\n",
			time.Since(start).Seconds(), st.attempted.Load(), st.okNow.Load(), st.inFlight.Load(), delivered)
	})
}

// sendOne sends slot s: a random user's message to one of their conversations, with a
// fresh client_msg_id and a body with a unique token.
func (b *bench) sendOne(ctx context.Context, s sendSlot, measuredStart, measuredEnd time.Time, st *sendStats) {
	began := time.Now()
	defer st.inFlight.Add(-1)
	if ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithDeadline(ctx, s.at.Add(b.cfg.Timeout))
	defer cancel()
	u := s.user
	conv := b.convs[s.conv]
	cmid := uuid.NewString()
	body := fmt.Sprintf("부하 시험 메시지 #%d %s from %s", s.k, cmid[:8], b.users[u].Sub)
	rec := &sendRec{start: s.at, conv: conv.ID, sender: int32(u), measured: s.measured}
	b.reg.put(cmid, rec)
	st.attempted.Add(1)
	var m wireMessage
	status, err := b.do(ctx, u, http.MethodPost, "/api/v1/conversations/"+strconv.FormatInt(conv.ID, 10)+"/messages",
		map[string]string{"body": body, "client_msg_id": cmid}, &m)
	done := time.Now()
	if err == nil && status != http.StatusCreated {
		err = fmt.Errorf("HTTP %d, want 201 for a new client_msg_id", status)
	}
	if err == nil && (m.ID == 0 || m.Seq == 0 || m.ConversationID != conv.ID || !strings.EqualFold(m.ClientMsgID, cmid)) {
		err = fmt.Errorf("answer is not the message sent: id %d seq %d conversation %d client_msg_id %q", m.ID, m.Seq, m.ConversationID, m.ClientMsgID)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if s.measured {
		st.lag = append(st.lag, began.Sub(s.at).Microseconds())
	}
	if err != nil {
		st.errKinds[errorKind(err)]++
		if len(st.errSample) < 5 {
			st.errSample = append(st.errSample, err.Error())
		}
		return
	}
	rec.id.Store(m.ID)
	rec.seq.Store(m.Seq)
	st.okNow.Add(1)
	st.ok++
	st.sent = append(st.sent, sentMsg{conv: conv.ID, id: m.ID, seq: m.Seq, members: conv.Members})
	if !done.Before(measuredStart) && done.Before(measuredEnd) {
		st.inWindow++
	}
	if s.measured {
		st.measuredOK++
		st.sendLat = append(st.sendLat, done.Sub(s.at).Microseconds())
		st.sendDue = append(st.sendDue, s.at.UnixMicro())
		if done.After(st.lastDone) {
			st.lastDone = done
		}
	}
}

// errorKind names an error for the table: "HTTP 429", "timeout", "connection", "invalid answer".
func errorKind(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		return "HTTP " + strconv.Itoa(ae.Status)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "connection"
	}
	if strings.HasPrefix(err.Error(), "HTTP ") {
		return strings.SplitN(err.Error(), ",", 2)[0]
	}
	return "invalid answer"
}

// runStream keeps user i's event stream open until ctx ends, reopening it with
// Last-Event-ID when it drops. The first attempt reports on ready: its failure ends the run.
func (b *bench) runStream(ctx context.Context, i int, ready chan<- error) {
	u := b.states[i]
	first := true
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := b.streamOnce(ctx, i, func() {
			if first {
				first = false
				ready <- nil
			}
			backoff = 100 * time.Millisecond
		})
		if ctx.Err() != nil {
			return
		}
		if first {
			ready <- fmt.Errorf("%s: %w", b.users[i].Sub, err)
			return
		}
		kind := "ended"
		if err != nil {
			kind = errorKind(err)
		}
		b.streamErrMu.Lock()
		b.streamErrs[kind]++
		b.streamErrMu.Unlock()
		u.mu.Lock()
		u.reconnects++
		u.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// streamOnce reads one connection of user i's stream until it ends.
func (b *bench) streamOnce(ctx context.Context, i int, connected func()) error {
	u := b.states[i]
	connCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(connCtx, http.MethodGet, b.base+"/api/v1/events", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+b.users[i].Token)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	u.mu.Lock()
	if u.lastID != "" {
		req.Header.Set("Last-Event-ID", u.lastID)
	}
	u.mu.Unlock()
	resp, err := b.stream.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		hint := ""
		if resp.StatusCode == http.StatusNotFound {
			hint = " (does the server have GET /api/v1/events yet?)"
		}
		return &apiError{Method: "GET", Path: "/api/v1/events" + hint, Status: resp.StatusCode, Body: strings.TrimSpace(string(raw))}
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return fmt.Errorf("GET /api/v1/events: Content-Type %q, want text/event-stream", ct)
	}
	connected()

	watchdog := time.AfterFunc(streamIdle, cancel)
	defer watchdog.Stop()
	rd := sse.NewReader(resp.Body)
	defer func() {
		// An id alone (a stream's first frame, a stale receipt) moves the position too.
		if rd.LastID != "" {
			u.mu.Lock()
			u.lastID = rd.LastID
			u.mu.Unlock()
		}
	}()
	rd.OnLine = func() { watchdog.Reset(streamIdle) }
	rd.OnComment = func() {
		u.mu.Lock()
		u.heartbeats++
		u.mu.Unlock()
	}
	for {
		ev, err := rd.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		now := time.Now()
		u.mu.Lock()
		u.events++
		if ev.HasID {
			u.lastID = ev.ID
		}
		u.mu.Unlock()
		switch ev.Type {
		case "message.new":
			m, err := parseWireMessage(ev.Data)
			if err != nil || m.ID == 0 {
				b.streamErrMu.Lock()
				b.streamErrs["bad message.new data"]++
				b.streamErrMu.Unlock()
				continue
			}
			var rec *sendRec
			if m.ClientMsgID != "" {
				rec = b.reg.get(strings.ToLower(m.ClientMsgID))
			}
			u.onLive(m, rec, now)
		case "resync":
			u.mu.Lock()
			u.resyncs++
			u.mu.Unlock()
			b.startCatchUp(ctx, i)
		}
	}
}

func (b *bench) catchingUp() bool {
	b.catchMu.Lock()
	defer b.catchMu.Unlock()
	return len(b.catching) > 0
}

// startCatchUp fetches, for each of user i's conversations, what came after the last seq
// the user has without a gap: what a client does on resync. One catch-up per user runs at
// a time; a resync during it makes it run once more.
func (b *bench) startCatchUp(ctx context.Context, i int) {
	b.catchMu.Lock()
	defer b.catchMu.Unlock()
	if b.catching[i] {
		b.pending[i] = true
		return
	}
	b.catching[i] = true
	b.catchUpWG.Go(func() {
		for {
			b.catchUp(ctx, i)
			b.catchMu.Lock()
			if !b.pending[i] || ctx.Err() != nil {
				delete(b.catching, i)
				delete(b.pending, i)
				b.catchMu.Unlock()
				return
			}
			delete(b.pending, i)
			b.catchMu.Unlock()
		}
	})
}

type messagePage struct {
	Messages []wireMessage `json:"messages"`
	HasMore  bool          `json:"has_more"`
}

func (b *bench) catchUp(ctx context.Context, i int) {
	u := b.states[i]
	for _, conv := range u.conversations() {
		after := u.watermark(conv)
		for pages := 0; pages < 10000 && ctx.Err() == nil; pages++ {
			var page messagePage
			path := fmt.Sprintf("/api/v1/conversations/%d/messages?after_seq=%d&limit=200", conv, after)
			if _, err := b.do(ctx, i, http.MethodGet, path, nil, &page); err != nil {
				b.catchUpErrors.Add(1)
				break
			}
			u.onCatchUp(page.Messages)
			if !page.HasMore || len(page.Messages) == 0 {
				break
			}
			after = page.Messages[len(page.Messages)-1].Seq
		}
		u.mu.Lock()
		u.catchUps++
		u.mu.Unlock()
	}
}

// verifyStored reads every conversation back and counts acknowledged messages the server
// does not answer: a 201 that did not last.
func (b *bench) verifyStored(ctx context.Context, sent []sentMsg) (int64, error) {
	stored := map[int64]bool{}
	for _, c := range b.convs {
		after := int64(0)
		for {
			var page messagePage
			path := fmt.Sprintf("/api/v1/conversations/%d/messages?after_seq=%d&limit=200", c.ID, after)
			if _, err := b.do(ctx, int(c.Members[0]), http.MethodGet, path, nil, &page); err != nil {
				return 0, err
			}
			for _, m := range page.Messages {
				stored[m.ID] = true
			}
			if !page.HasMore || len(page.Messages) == 0 {
				break
			}
			after = page.Messages[len(page.Messages)-1].Seq
		}
	}
	var n int64
	for _, m := range sent {
		if !stored[m.id] {
			n++
		}
	}
	return n, nil
}

// sampleRSS samples the server's resident memory every second until ctx ends.
func (b *bench) sampleRSS(ctx context.Context) rssStats {
	var st rssStats
	var sample func() (int64, error)
	switch {
	case b.cfg.PID > 0:
		st.Source = fmt.Sprintf("/proc/%d/status", b.cfg.PID)
		sample = func() (int64, error) { return proc.RSS(b.cfg.PID) }
	case b.cfg.RSSFromMetrics:
		st.Source = b.cfg.MetricsURL
		client := &http.Client{Timeout: 2 * time.Second}
		sample = func() (int64, error) { return metricsRSS(ctx, client, b.cfg.MetricsURL) }
	default:
		return st
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if v, err := sample(); err == nil {
			st.Samples++
			st.MaxBytes = max(st.MaxBytes, v)
			st.LastBytes = v
		} else if st.Error == "" && ctx.Err() == nil {
			st.Error = err.Error()
		}
		select {
		case <-ctx.Done():
			return st
		case <-t.C:
		}
	}
}

// metricsRSS reads process_resident_memory_bytes from a Prometheus text page.
func metricsRSS(ctx context.Context, client *http.Client, u string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: HTTP %d", resp.StatusCode)
	}
	return parseRSSMetric(string(raw))
}

func parseRSSMetric(text string) (int64, error) {
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, "process_resident_memory_bytes "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return int64(f), err
		}
	}
	return 0, errors.New("no process_resident_memory_bytes in /metrics")
}

// sortedKeys answers the keys of m in order.
func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// writeTimeline writes each latency (µs) with its due time (Unix µs) as ms, in order of due
// time: the due time counted from origin, or as Unix ms when origin is zero.
func writeTimeline(path, header string, origin time.Time, due, lat []int64) error {
	idx := make([]int, len(due))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(due[a], due[b]) })
	var buf bytes.Buffer
	buf.WriteString(header + "\n")
	var start int64
	if !origin.IsZero() {
		start = origin.UnixMicro()
	}
	for _, i := range idx {
		fmt.Fprintf(&buf, "%.3f,%.3f\n", float64(due[i]-start)/1000, float64(lat[i])/1000)
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
