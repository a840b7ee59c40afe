package main

import (
	"encoding/json"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRankIsNearestRank(t *testing.T) {
	sorted := make([]int64, 100)
	for i := range sorted {
		sorted[i] = int64(i + 1) // 1..100
	}
	for _, c := range []struct {
		q    float64
		want int64
	}{{0.50, 50}, {0.95, 95}, {0.99, 99}, {1, 100}, {0.001, 1}} {
		if got := rank(sorted, c.q); got != c.want {
			t.Errorf("rank(1..100, %v) = %d, want %d", c.q, got, c.want)
		}
	}
	if got := rank([]int64{7}, 0.99); got != 7 {
		t.Errorf("rank of one sample = %d, want 7", got)
	}
	if got := rank(nil, 0.5); got != 0 {
		t.Errorf("rank of nothing = %d, want 0", got)
	}
}

func TestSummarizeSortsAndConvertsToMilliseconds(t *testing.T) {
	us := make([]int64, 0, 1000)
	for i := range 1000 {
		us = append(us, int64(i+1)*1000) // 1..1000 ms, in µs
	}
	rand.Shuffle(len(us), func(i, j int) { us[i], us[j] = us[j], us[i] })
	p := summarize(us)
	if p.Count != 1000 || p.P50 != 500 || p.P95 != 950 || p.P99 != 990 || p.Max != 1000 || p.Mean != 500.5 {
		t.Errorf("summarize = %+v", p)
	}
	if !slices.IsSorted(us) {
		t.Error("summarize left the sample unsorted")
	}
	if p := summarize(nil); p != (percentiles{}) {
		t.Errorf("summarize(nil) = %+v", p)
	}
}

// msg is a synthetic message.new payload.
func msg(id, conv, seq int64) wireMessage {
	return wireMessage{ID: id, ConversationID: conv, Seq: seq}
}

func TestLiveDeliveriesDuplicatesAndLatency(t *testing.T) {
	u := newUserState()
	u.join(1, 0)
	start := time.Now()
	measured := &sendRec{start: start, measured: true}
	warmup := &sendRec{start: start}

	if u.onLive(msg(10, 1, 1), measured, start.Add(3*time.Millisecond)) {
		t.Error("first delivery taken for a duplicate")
	}
	if u.onLive(msg(11, 1, 2), warmup, start.Add(time.Second)) {
		t.Error("first delivery taken for a duplicate")
	}
	if !u.onLive(msg(10, 1, 1), measured, start.Add(9*time.Millisecond)) {
		t.Error("second delivery of message 10 not taken for a duplicate")
	}
	u.onLive(msg(99, 1, 3), nil, start) // a message of nobody in this run (a system message)

	if u.deliveries != 2 || u.duplicates != 1 || u.foreign != 1 {
		t.Errorf("deliveries %d duplicates %d foreign %d, want 2 1 1", u.deliveries, u.duplicates, u.foreign)
	}
	if !slices.Equal(u.latencies, []int64{3000}) {
		t.Errorf("latencies = %v, want only the measured message's 3000 µs", u.latencies)
	}
	if w := u.watermark(1); w != 3 {
		t.Errorf("watermark = %d, want 3", w)
	}
}

func TestWatermarkStopsAtTheFirstGapAndStartsAtTheBase(t *testing.T) {
	u := newUserState()
	u.join(7, 4) // seqs 1..4 existed before the run
	u.onLive(msg(1, 7, 5), nil, time.Now())
	u.onLive(msg(2, 7, 7), nil, time.Now())
	if w := u.watermark(7); w != 5 {
		t.Fatalf("watermark = %d, want 5 (6 is missing)", w)
	}
	if n := u.onCatchUp([]wireMessage{msg(3, 7, 6), msg(2, 7, 7)}); n != 1 {
		t.Errorf("catch-up new = %d, want 1 (7 was live already)", n)
	}
	if w := u.watermark(7); w != 7 {
		t.Errorf("watermark after catch-up = %d, want 7", w)
	}
	if u.recovered != 1 || u.duplicates != 0 {
		t.Errorf("recovered %d duplicates %d, want 1 0", u.recovered, u.duplicates)
	}
	// A message first caught up and then delivered live is not a duplicate.
	if u.onLive(msg(3, 7, 6), nil, time.Now()) {
		t.Error("live delivery after a catch-up taken for a duplicate")
	}
}

func TestCountLost(t *testing.T) {
	// Three users; conversation 1 is a direct one of users 0 and 1, conversation 2 a group
	// of all three.
	users := []*userState{newUserState(), newUserState(), newUserState()}
	subs := []string{"u0", "u1", "u2"}
	for _, u := range users {
		u.join(2, 0)
	}
	users[0].join(1, 0)
	users[1].join(1, 0)
	sent := []sentMsg{
		{conv: 1, id: 100, seq: 1, members: []int32{0, 1}},
		{conv: 2, id: 101, seq: 1, members: []int32{0, 1, 2}},
		{conv: 2, id: 102, seq: 2, members: []int32{0, 1, 2}},
	}
	now := time.Now()
	// Everyone gets everything, except: user 2 never gets 102; user 1 misses 101 live but
	// recovers it with a catch-up after a resync; user 0 gets 100 twice.
	users[0].onLive(msg(100, 1, 1), nil, now)
	users[0].onLive(msg(100, 1, 1), nil, now)
	users[1].onLive(msg(100, 1, 1), nil, now)
	for _, u := range users {
		u.onLive(msg(101, 2, 1), nil, now)
	}
	users[0].onLive(msg(102, 2, 2), nil, now)
	users[1].onLive(msg(102, 2, 2), nil, now)
	users[1].liveIDs = map[int64]struct{}{100: {}, 102: {}} // forget 101's live delivery...
	users[1].seqs[2] = map[int64]struct{}{2: {}}
	users[1].mark[2] = 0
	if got := missing(sent, users); got != 2 {
		t.Fatalf("missing before catch-up = %d, want 2", got)
	}
	users[1].onCatchUp([]wireMessage{msg(101, 2, 1), msg(102, 2, 2)}) // ...and recover it

	r := countLost(sent, users, subs)
	if r.Expected != 8 || r.Lost != 1 {
		t.Errorf("expected %d lost %d, want 8 1", r.Expected, r.Lost)
	}
	if len(r.Samples) != 1 || !strings.Contains(r.Samples[0], "u2: conversation 2 seq 2 (message 102)") {
		t.Errorf("samples = %q", r.Samples)
	}
	if users[0].duplicates != 1 || users[1].recovered != 1 {
		t.Errorf("duplicates %d recovered %d, want 1 1", users[0].duplicates, users[1].recovered)
	}
}

func TestSeqCollisions(t *testing.T) {
	sent := []sentMsg{{conv: 1, id: 1, seq: 1}, {conv: 1, id: 2, seq: 2}, {conv: 2, id: 3, seq: 1}, {conv: 1, id: 4, seq: 2}}
	if n := seqCollisions(sent); n != 1 {
		t.Errorf("seqCollisions = %d, want 1", n)
	}
}

func TestRegistry(t *testing.T) {
	r := newRegistry()
	rec := &sendRec{conv: 3}
	r.put("a1b2", rec)
	if r.get("a1b2") != rec || r.get("nope") != nil {
		t.Error("registry lookups wrong")
	}
}

func TestParseRSSMetric(t *testing.T) {
	text := "# HELP process_resident_memory_bytes Resident memory size in bytes.\n" +
		"# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 4.2369024e+07\nprocess_start_time_seconds 1.7e+09\n"
	if v, err := parseRSSMetric(text); err != nil || v != 42369024 {
		t.Errorf("parseRSSMetric = %d, %v", v, err)
	}
	if _, err := parseRSSMetric("go_goroutines 7\n"); err == nil {
		t.Error("no error for a page without the metric")
	}
}

func TestCPUBetween(t *testing.T) {
	a := cpuSnap{at: time.Unix(100, 0), busy: 1000, server: 50, self: 10, postgres: map[int]uint64{7: 100, 8: 5}}
	b := cpuSnap{at: time.Unix(110, 0), busy: 2500, server: 550, self: 60, postgres: map[int]uint64{7: 700, 9: 100}}
	u := cpuBetween(a, b)
	// 10 s at 100 ticks/s: 1500 busy ticks = 150 % of a core; server 50 %, loadgen 5 %,
	// postgres 60 % (pid 7) + 10 % (pid 9, new) = 70 %; the rest is someone else's.
	if u.Machine != 150 || u.Server != 50 || u.Loadgen != 5 || u.Postgres != 70 || u.Other != 25 {
		t.Errorf("cpuBetween = %+v", u)
	}
	// With every process known, the others are named, and what no process accounts for too.
	a.procs = map[int]procTime{1: {"messenger", 50}, 2: {"loadgen", 10}, 7: {"postgres", 100}, 8: {"postgres", 5}, 20: {"chromium", 0}}
	b.procs = map[int]procTime{1: {"messenger", 550}, 2: {"loadgen", 60}, 7: {"postgres", 700}, 9: {"postgres", 100}, 20: {"chromium", 150}, 21: {"e2e.test", 30}}
	a.serverPID, a.selfPID, b.serverPID, b.selfPID = 1, 2, 1, 2
	u = cpuBetween(a, b)
	if want := []string{"chromium 15%", "unattributed 7%", "e2e.test 3%"}; !slices.Equal(u.OtherTop, want) {
		t.Errorf("others = %q, want %q", u.OtherTop, want)
	}
	if s := takeCPUSnap(0, 0); runtime.GOOS == "linux" && s.busy == 0 {
		t.Errorf("on Linux the machine's CPU time is readable: %+v", s)
	}
}

// TestParseWireMessage: the fields come from the top level of the message, not from text
// in its body or from the sender object, and what is not JSON is refused.
func TestParseWireMessage(t *testing.T) {
	data := `{"id":41,"conversation_id":7,"seq":3,"sender":{"id":"u-9","name":"\"id\":99"},` +
		`"body":"{\"id\":5,\"seq\":8}","client_msg_id":"0b5c6a7e-0000-4000-8000-000000000001"}`
	m, err := parseWireMessage(data)
	if err != nil || m.ID != 41 || m.ConversationID != 7 || m.Seq != 3 || m.Sender.ID != "u-9" ||
		m.ClientMsgID != "0b5c6a7e-0000-4000-8000-000000000001" {
		t.Fatalf("parseWireMessage = %+v, %v", m, err)
	}
	var page struct {
		Messages []wireMessage `json:"messages"`
	}
	if err := json.Unmarshal([]byte(`{"messages":[`+data+`]}`), &page); err != nil || len(page.Messages) != 1 || page.Messages[0] != m {
		t.Fatalf("in a page: %+v, %v", page, err)
	}
	for _, bad := range []string{``, `{"id":1`, `not json`} {
		if _, err := parseWireMessage(bad); err == nil {
			t.Errorf("parseWireMessage(%q) succeeded", bad)
		}
	}
}
