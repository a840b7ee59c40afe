package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/realtime/redistest"
	"github.com/dreamseed/messenger/store/storetest"
)

// The flood of a big group's awareness: read receipts coalesced per group and interval,
// typing told at most once a second per typist, on both engines.

// engineEnv is a chat service on a fresh database and the engine named ("memory" or
// "redis", under a prefix of the test's own).
func engineEnv(t testing.TB, name string) (*chatEnv, realtime.Engine) {
	t.Helper()
	level := slog.LevelError
	if os.Getenv("AWARENESS_MEASURE") == "1" {
		level = slog.LevelWarn // the engine's word on what it lost
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	var engine realtime.Engine
	switch name {
	case "memory":
		engine = realtime.NewMemory(1024)
	case "redis":
		url := redistest.URL(t)
		r, err := realtime.NewRedisWithPrefix(context.Background(), url, 1024, logger, fmt.Sprintf("test-receipts-%d:", time.Now().UnixNano()))
		if err != nil {
			t.Fatal(err)
		}
		engine = r
	}
	t.Cleanup(func() { engine.Close() })
	engine = &publishLog{Engine: engine}
	db, d := storetest.NewDB(t)
	reg := prometheus.NewRegistry()
	return &chatEnv{t: t, db: db, owner: storetest.Conn(t, d.OwnerDSN), app: storetest.Conn(t, d.AppDSN),
		svc: chat.NewService(db, engine, logger, reg, nil), logger: logger, reg: reg}, engine
}

// publishLog is an engine that notes every publication the service makes, and when.
type publishLog struct {
	realtime.Engine
	mu    sync.Mutex
	pubs  []published
	spent atomic.Int64 // nanoseconds in PublishAll, all calls
}

// published is one publication: an event to some channels, at a time.
type published struct {
	at       time.Time
	ev       realtime.Event
	channels int
}

func (l *publishLog) PublishAll(ctx context.Context, pubs []realtime.Publication) error {
	now := time.Now() // when the service publishes: the call's own time varies with the load
	err := l.Engine.PublishAll(ctx, pubs)
	l.spent.Add(int64(time.Since(now)))
	l.mu.Lock()
	for _, p := range pubs {
		l.pubs = append(l.pubs, published{now, p.Event, len(p.Channels)})
	}
	l.mu.Unlock()
	return err
}

// of answers the publications of events of type typ.
func (l *publishLog) of(typ string) []published {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []published
	for _, p := range l.pubs {
		if p.ev.Type == typ {
			out = append(out, p)
		}
	}
	return out
}

// arrival is one event a subscription took, and when.
type arrival struct {
	at time.Time
	ev realtime.Event
}

// recorder takes every event of each user's subscription as it comes.
type recorder struct {
	mu      sync.Mutex
	got     map[int64][]arrival
	resyncs int // signals that the engine may have lost events of a subscription
	stop    context.CancelFunc
	done    sync.WaitGroup
}

func record(t *testing.T, engine realtime.Engine, users []messenger.User) *recorder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &recorder{got: map[int64][]arrival{}, stop: cancel}
	for _, u := range users {
		sub, err := engine.Subscribe(context.Background(), chat.UserChannel(u.ID))
		if err != nil {
			t.Fatal(err)
		}
		r.done.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-sub.Resync():
					r.mu.Lock()
					r.resyncs++
					r.mu.Unlock()
				}
			}
		})
		r.done.Go(func() {
			defer sub.Close()
			for {
				d, err := sub.Next(ctx)
				if err != nil {
					return
				}
				r.mu.Lock()
				r.got[u.ID] = append(r.got[u.ID], arrival{time.Now(), d.Event})
				r.mu.Unlock()
			}
		})
	}
	t.Cleanup(func() { r.end() })
	return r
}

// quiet waits until no event came for d (at most max).
func (r *recorder) quiet(d, most time.Duration) {
	deadline := time.Now().Add(most)
	count := func() (n int) {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, evs := range r.got {
			n += len(evs)
		}
		return n
	}
	for seen := count(); time.Now().Before(deadline); {
		time.Sleep(d)
		now := count()
		if now == seen {
			return
		}
		seen = now
	}
}

// end stops recording and answers what each user took.
func (r *recorder) end() map[int64][]arrival {
	r.stop()
	r.done.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got
}

// of answers the events of type typ in evs.
func of(evs []arrival, typ string) []arrival {
	var out []arrival
	for _, a := range evs {
		if a.ev.Type == typ {
			out = append(out, a)
		}
	}
	return out
}

// bigGroup signs in n members and puts them in a group; the first is its admin.
func (e *chatEnv) bigGroup(n int) (members []messenger.User, conv int64) {
	e.t.Helper()
	for i := range n {
		members = append(members, e.user(fmt.Sprintf("m%03d", i), fmt.Sprintf("회원%d", i), "org-a"))
	}
	conv, _ = e.group(members[0], members[1:]...)
	return members, conv
}

// runReceipts runs the service's coalescing of receipts until the test ends.
func (e *chatEnv) runReceipts(t *testing.T) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.svc.CoalesceReceipts(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// markAll has every member mark seq read, from workers at once, and answers when each
// mark returned and how long the burst took.
func markAll(t *testing.T, svc *chat.Service, members []messenger.User, conv, seq int64) (returned map[int64]time.Time, took time.Duration) {
	t.Helper()
	var mu sync.Mutex
	returned = make(map[int64]time.Time, len(members))
	work := make(chan messenger.User)
	var wg sync.WaitGroup
	start := time.Now()
	for range 16 {
		wg.Go(func() {
			for u := range work {
				if err := svc.MarkRead(context.Background(), u, conv, seq); err != nil {
					t.Errorf("%s marks %d read: %v", u.Sub, seq, err)
				}
				mu.Lock()
				returned[u.ID] = time.Now()
				mu.Unlock()
			}
		})
	}
	for _, u := range members {
		work <- u
	}
	close(work)
	wg.Wait()
	return returned, time.Since(start)
}

// learned answers the watermarks a member's stream learned from the receipts it took:
// the highest of each reader.
func learned(t *testing.T, evs []arrival) map[string]int64 {
	t.Helper()
	marks := map[string]int64{}
	for _, a := range evs {
		v, err := chat.EventValue(realtime.Event{Type: a.ev.Type, Data: a.ev.Data})
		if err != nil {
			t.Fatal(err)
		}
		switch r := v.(type) {
		case chat.ReadReceipt:
			marks[r.UserID] = max(marks[r.UserID], r.LastReadSeq)
		case chat.ReadReceipts:
			for _, w := range r.Receipts {
				marks[w.UserID] = max(marks[w.UserID], w.LastReadSeq)
			}
		}
	}
	return marks
}

// TestReceiptsCoalesce: in a group of 300, everyone reads the newest message at once.
// Each member's own tabs hear their receipt at once; every member hears the others' rises
// as at most one message.read_receipts per interval, and ends knowing every watermark
// exactly.
func TestReceiptsCoalesce(t *testing.T) {
	for _, engine := range []string{"memory", "redis"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			const n, interval = 300, 500 * time.Millisecond
			e, eng := engineEnv(t, engine)
			e.svc.SetReceiptCoalesce(interval)
			members, conv := e.bigGroup(n)
			msg := e.send(members[0], conv, "내일 준비물 확인하세요")
			stop := e.runReceipts(t)
			rec := record(t, eng, members)
			time.Sleep(100 * time.Millisecond) // the Redis subscriptions are in place

			returned, took := markAll(t, e.svc, members[1:], conv, msg.Seq)
			time.Sleep(3 * interval)
			stop() // anything still pending goes out now
			time.Sleep(200 * time.Millisecond)
			got := rec.end()
			t.Logf("%s: %d marks in %s", engine, n-1, took.Round(time.Millisecond))

			// What the service published: the batches of the group at least an interval
			// apart, each to every member; each reader's own receipt to the reader alone,
			// before its mark returned.
			log := eng.(*publishLog)
			batches := log.of(chat.EventReadReceipts)
			for i := 1; i < len(batches); i++ {
				// decided an interval apart; the publish of the first rise after a quiet
				// interval starts in its request's goroutine, a little after the decision
				if gap := batches[i].at.Sub(batches[i-1].at); gap < interval-50*time.Millisecond {
					t.Errorf("batches %d and %d were published %s apart (interval %s)", i-1, i, gap, interval)
				}
			}
			for _, b := range batches {
				if b.channels != n {
					t.Errorf("a batch went to %d channels, want the %d members", b.channels, n)
				}
			}
			singles := log.of(chat.EventReadReceipt)
			for _, p := range singles {
				var r chat.ReadReceipt
				if err := json.Unmarshal(p.ev.Data, &r); err != nil {
					t.Fatal(err)
				}
				if p.channels != 1 {
					t.Errorf("the single receipt of %s went to %d channels, want its reader's own", r.UserID, p.channels)
				}
				for _, u := range members {
					if u.Sub == r.UserID && !p.at.Before(returned[u.ID]) {
						t.Errorf("%s's own receipt was published after its mark returned", u.Sub)
					}
				}
			}
			if len(singles) != n-1 {
				t.Errorf("%d single receipts published, want one per reader, %d", len(singles), n-1)
			}
			// The burst's batches: one per interval it spans, and the first rise after a quiet
			// interval at once.
			most := int(took/interval) + 2
			if len(batches) > most {
				t.Errorf("%d batches published for a burst of %s, want at most %d", len(batches), took, most)
			}

			// What each member's subscription took.
			worst := 0
			for _, u := range members {
				evs := got[u.ID]
				mine, batches := of(evs, chat.EventReadReceipt), of(evs, chat.EventReadReceipts)
				worst = max(worst, len(evs))
				if len(batches) > most {
					t.Errorf("%s took %d read_receipts batches for a burst of %s, want at most %d", u.Sub, len(batches), took, most)
				}
				// Only its own single receipt.
				if u.ID == members[0].ID {
					if len(mine) != 0 {
						t.Errorf("the sender, who read nothing new, took %d single receipts", len(mine))
					}
				} else if len(mine) != 1 {
					t.Errorf("%s took %d single receipts, want its own one", u.Sub, len(mine))
				} else if r := learned(t, mine); r[u.Sub] != msg.Seq || len(r) != 1 {
					t.Errorf("%s's single receipt says %v, want its own %d", u.Sub, r, msg.Seq)
				}
				// Every watermark, exactly.
				marks := learned(t, evs)
				for _, r := range members[1:] {
					if marks[r.Sub] != msg.Seq {
						t.Errorf("%s learned %s's watermark %d, want %d", u.Sub, r.Sub, marks[r.Sub], msg.Seq)
						break
					}
				}
				if m, ok := marks[members[0].Sub]; ok {
					t.Errorf("%s learned a watermark %d of the sender, who read nothing new", u.Sub, m)
				}
			}
			t.Logf("%s: %d batches published (bound %d); at most %d receipt events per member, %.1f/s over the burst",
				engine, len(batches), most, worst, float64(worst)/took.Seconds())
		})
	}
}

// TestReceiptsOffAndDirect: with coalescing off, and in a direct conversation, every
// member hears each rise at once as message.read_receipt, as before.
func TestReceiptsOffAndDirect(t *testing.T) {
	t.Parallel()
	e, eng := engineEnv(t, "memory")
	members, conv := e.bigGroup(4)
	direct, _, err := e.svc.CreateConversation(context.Background(), members[0], messenger.KindDirect, "", []string{members[1].Sub})
	if err != nil {
		t.Fatal(err)
	}
	e.svc.SetReceiptCoalesce(0)
	e.runReceipts(t)
	msg := e.send(members[0], conv, "하나")
	dmsg := e.send(members[0], direct.ID, "둘")
	rec := record(t, eng, members)
	markAll(t, e.svc, members[1:], conv, msg.Seq)
	if err := e.svc.MarkRead(context.Background(), members[1], direct.ID, dmsg.Seq); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	got := rec.end()
	for _, u := range members {
		want := 3 // the group's three readers
		if u.ID == members[0].ID || u.ID == members[1].ID {
			want++ // and the direct conversation's reader
		}
		if singles, batches := of(got[u.ID], chat.EventReadReceipt), of(got[u.ID], chat.EventReadReceipts); len(singles) != want || len(batches) != 0 {
			t.Errorf("%s took %d single receipts and %d batches, want %d and none", u.Sub, len(singles), len(batches), want)
		}
	}
}

// TestReceiptsFlushedAtStop: rises still waiting for their interval when the coalescing
// stops are published then, not lost; later ones go out at once.
func TestReceiptsFlushedAtStop(t *testing.T) {
	t.Parallel()
	e, eng := engineEnv(t, "memory")
	e.svc.SetReceiptCoalesce(time.Minute)
	members, conv := e.bigGroup(5)
	msg := e.send(members[0], conv, "하나")
	stop := e.runReceipts(t)
	rec := record(t, eng, members[:1])
	ctx := context.Background()
	for _, u := range members[1:3] {
		if err := e.svc.MarkRead(ctx, u, conv, msg.Seq); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	stop()
	if err := e.svc.MarkRead(ctx, members[3], conv, msg.Seq); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	evs := rec.end()[members[0].ID]
	if marks := learned(t, evs); len(marks) != 3 || marks[members[1].Sub] != msg.Seq || marks[members[2].Sub] != msg.Seq || marks[members[3].Sub] != msg.Seq {
		t.Errorf("the sender learned %v, want members 1-3 at %d", marks, msg.Seq)
	}
	// The first rise at once, the second held a minute and flushed at the stop, the third
	// at once as a single receipt (no coalescing any more).
	if b, s := of(evs, chat.EventReadReceipts), of(evs, chat.EventReadReceipt); len(b) != 2 || len(s) != 1 {
		t.Errorf("the sender took %d batches and %d single receipts, want 2 and 1", len(b), len(s))
	}
}

// TestTypingAnnouncedOnceASecond: a typist's signals, however many, reach the others at
// most once a second; a stop always, once.
func TestTypingAnnouncedOnceASecond(t *testing.T) {
	for _, engine := range []string{"memory", "redis"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			e, eng := engineEnv(t, engine)
			members, conv := e.bigGroup(3)
			typist := members[1]
			rec := record(t, eng, members)
			time.Sleep(100 * time.Millisecond)
			ctx := context.Background()
			start := time.Now()
			for i := range 20 {
				if err := e.svc.SetTyping(ctx, typist, conv, true); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Until(start.Add(time.Duration(i+1) * 45 * time.Millisecond)))
			}
			spam := time.Since(start)
			if err := e.svc.SetTyping(ctx, typist, conv, false); err != nil {
				t.Fatal(err)
			}
			if err := e.svc.SetTyping(ctx, typist, conv, false); err != nil { // no change: not told
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			got := rec.end()
			for _, u := range []messenger.User{members[0], members[2]} {
				var on, off int
				for _, a := range of(got[u.ID], chat.EventTyping) {
					var d chat.Typing
					if err := json.Unmarshal(a.ev.Data, &d); err != nil {
						t.Fatal(err)
					}
					if d.Typing {
						on++
					} else {
						off++
					}
				}
				if on < 1 || on > 2 || off != 1 {
					t.Errorf("%s heard %d typing and %d stops from 20 signals in %s and two stops, want 1-2 and 1", u.Sub, on, off, spam.Round(time.Millisecond))
				}
			}
			if n := len(of(got[typist.ID], chat.EventTyping)); n != 0 {
				t.Errorf("the typist heard itself %d times", n)
			}
		})
	}
}

// TestMeasureAwarenessFlood measures the events per second each member of a 500-member
// group takes while every member reads a message at once, and while 10 members type with
// a client signalling five times a second (the rate limit), with coalescing off (before)
// and on (after), on both engines. It runs with AWARENESS_MEASURE=1 (docs/performance.md):
//
//	AWARENESS_MEASURE=1 go test -run TestMeasureAwarenessFlood -v ./chat/
func TestMeasureAwarenessFlood(t *testing.T) {
	if os.Getenv("AWARENESS_MEASURE") != "1" {
		t.Skip("a measurement: AWARENESS_MEASURE=1")
	}
	const n = chat.MaxGroupSize
	for _, engine := range []string{"memory", "redis"} {
		t.Run(engine, func(t *testing.T) {
			e, eng := engineEnv(t, engine)
			members, conv := e.bigGroup(n)
			for _, mode := range []struct {
				name     string
				coalesce time.Duration
				typing   time.Duration
			}{{"before", 0, 0}, {"after", chat.DefaultReceiptCoalesce, chat.DefaultTypingAnnounceEvery}} {
				e.svc.SetReceiptCoalesce(mode.coalesce)
				e.svc.SetTypingAnnounceEvery(mode.typing)
				stop := e.runReceipts(t)
				msg := e.send(members[0], conv, "읽어 주세요")
				rec := record(t, eng, members)
				time.Sleep(200 * time.Millisecond)

				// Everyone reads at once; the window is the burst and the last interval after it.
				start := time.Now()
				_, took := markAll(t, e.svc, members[1:], conv, msg.Seq)
				time.Sleep(mode.coalesce)
				rec.quiet(500*time.Millisecond, 60*time.Second) // every receipt delivered
				stop()
				got := rec.end()
				resyncs := rec.resyncs
				var most, total int
				var last time.Time
				for _, u := range members {
					evs := append(of(got[u.ID], chat.EventReadReceipt), of(got[u.ID], chat.EventReadReceipts)...)
					for _, a := range evs {
						if a.at.After(last) {
							last = a.at
						}
					}
					most, total = max(most, len(evs)), total+len(evs)
				}
				window := last.Sub(start) // to the last receipt delivered
				t.Logf("%s %s receipts: %d members read in %s; per member %.1f events (most %d), the last %s after the burst began: %.1f events/s per member; %d subscriptions told to resync",
					engine, mode.name, n-1, took.Round(time.Millisecond), float64(total)/n, most, window.Round(time.Millisecond),
					float64(total)/n/window.Seconds(), resyncs)
				if mode.coalesce > 0 {
					// its own receipt, and a batch per interval the window spans and one at once
					if bound := 1 + int(window/mode.coalesce) + 1; most > bound {
						t.Errorf("a member took %d receipt events in %s, want at most %d", most, window, bound)
					}
				}

				// 10 members type for 3 s, each signalling every 200 ms.
				rec = record(t, eng, members)
				time.Sleep(200 * time.Millisecond)
				typists := members[1:11]
				const typeFor, every = 3 * time.Second, 200 * time.Millisecond
				var wg sync.WaitGroup
				start = time.Now()
				for _, u := range typists {
					wg.Go(func() {
						for i := 0; time.Since(start) < typeFor; i++ {
							if err := e.svc.SetTyping(context.Background(), u, conv, true); err != nil {
								t.Error(err)
								return
							}
							time.Sleep(time.Until(start.Add(time.Duration(i+1) * every)))
						}
					})
				}
				wg.Wait()
				window = time.Since(start)
				time.Sleep(200 * time.Millisecond)
				got = rec.end()
				most, total = 0, 0
				for _, u := range members[11:] {
					k := len(of(got[u.ID], chat.EventTyping))
					most, total = max(most, k), total+k
				}
				watchers := n - 11
				t.Logf("%s %s typing: 10 typists signalling every %s for %s; per other member %.1f events (most %d): %.1f events/s per member",
					engine, mode.name, every, window.Round(time.Millisecond), float64(total)/float64(watchers), most,
					float64(total)/float64(watchers)/window.Seconds())
				if mode.typing > 0 {
					if bound := 10 * (int(window/mode.typing) + 1); most > bound {
						t.Errorf("a member took %d typing events in %s, want at most %d", most, window, bound)
					}
				}
				// the typing lapses before the next mode
				for _, u := range typists {
					if err := e.svc.SetTyping(context.Background(), u, conv, false); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}
