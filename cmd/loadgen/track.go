package main

import (
	"errors"
	"fmt"
	"hash/maphash"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"
)

// The accounting of the load generator: which messages were sent, which stream received
// which of them, how fast, and what is missing or doubled at the end.

// sendRec is one attempted send, registered under its client_msg_id before the request
// leaves, so that a delivery that overtakes the HTTP answer still finds its start time.
type sendRec struct {
	start    time.Time
	conv     int64
	sender   int32
	measured bool // scheduled after the warm-up: its latencies count

	// Filled in from the 201 answer; zero while in flight or when the send failed.
	id  atomic.Int64
	seq atomic.Int64
}

// registry maps client_msg_id to the send, sharded to keep lock contention low.
type registry struct {
	seed   maphash.Seed
	shards [64]struct {
		mu sync.Mutex
		m  map[string]*sendRec
	}
}

func newRegistry() *registry {
	r := &registry{seed: maphash.MakeSeed()}
	for i := range r.shards {
		r.shards[i].m = make(map[string]*sendRec)
	}
	return r
}

func (r *registry) shard(key string) int {
	return int(maphash.String(r.seed, key) % uint64(len(r.shards)))
}

func (r *registry) put(key string, rec *sendRec) {
	s := &r.shards[r.shard(key)]
	s.mu.Lock()
	s.m[key] = rec
	s.mu.Unlock()
}

func (r *registry) get(key string) *sendRec {
	s := &r.shards[r.shard(key)]
	s.mu.Lock()
	rec := s.m[key]
	s.mu.Unlock()
	return rec
}

// sentMsg is a send the server acknowledged: every active member of conv, the sender
// included, must see it on their stream.
type sentMsg struct {
	conv    int64
	id      int64
	seq     int64
	members []int32
}

// wireMessage is the part of a Message (docs/api.md) the load generator reads.
type wireMessage struct {
	ID             int64  `json:"id"`
	ConversationID int64  `json:"conversation_id"`
	Seq            int64  `json:"seq"`
	ClientMsgID    string `json:"client_msg_id"`
	Sender         struct {
		ID string `json:"id"`
	} `json:"sender"`
}

// parseWireMessage reads the few fields the generator needs with gjson: the streams carry
// ten deliveries a send, and encoding/json's reflection took a fifth of the generator's
// CPU, which is the machine's under test.
func parseWireMessage(data string) (wireMessage, error) {
	if !gjson.Valid(data) {
		return wireMessage{}, errors.New("message: not JSON")
	}
	r := gjson.GetMany(data, "id", "conversation_id", "seq", "client_msg_id", "sender.id")
	m := wireMessage{ID: r[0].Int(), ConversationID: r[1].Int(), Seq: r[2].Int(), ClientMsgID: r[3].String()}
	m.Sender.ID = r[4].String()
	return m, nil
}

// UnmarshalJSON is parseWireMessage for encoding/json (answers and pages of messages).
func (m *wireMessage) UnmarshalJSON(data []byte) (err error) {
	*m, err = parseWireMessage(string(data))
	return err
}

// userState is what one user's stream has received. The stream goroutine and the resync
// catch-up share it under mu.
type userState struct {
	mu sync.Mutex

	liveIDs map[int64]struct{}           // message ids seen as message.new on this user's streams
	seqs    map[int64]map[int64]struct{} // conversation -> seqs received, live or caught up
	mark    map[int64]int64              // conversation -> every seq up to here was received
	convs   []int64                      // the user's conversations, for a resync without a scope

	latencies  []int64 // send start -> live delivery, µs, measured messages only
	dueAt      []int64 // each latency's send start, Unix µs (for the timeline)
	deliveries int64   // unique live deliveries of this run's messages
	duplicates int64   // a message id delivered live a second time
	foreign    int64   // message.new of no message of this run (e.g. system messages)
	recovered  int64   // messages first received through an after_seq catch-up
	catchUps   int64   // after_seq catch-ups run (one per conversation per resync)
	resyncs    int64   // resync events
	events     int64   // every SSE event with data
	heartbeats int64   // comment lines
	reconnects int64   // streams re-opened after they ended
	lastID     string  // the last SSE id seen, for Last-Event-ID
}

func newUserState() *userState {
	return &userState{
		liveIDs: make(map[int64]struct{}),
		seqs:    make(map[int64]map[int64]struct{}),
		mark:    make(map[int64]int64),
	}
}

// join records that the user is in conv, whose messages up to baseSeq predate the run.
func (u *userState) join(conv, baseSeq int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.mark[conv]; !ok {
		u.convs = append(u.convs, conv)
		u.mark[conv] = baseSeq
	} else if baseSeq > u.mark[conv] {
		u.mark[conv] = baseSeq
	}
	u.advance(conv)
}

// addSeq records seq of conv as received and answers whether it is new. Callers hold mu.
func (u *userState) addSeq(conv, seq int64) bool {
	set := u.seqs[conv]
	if set == nil {
		set = make(map[int64]struct{})
		u.seqs[conv] = set
	}
	if _, ok := set[seq]; ok {
		return false
	}
	set[seq] = struct{}{}
	u.advance(conv)
	return true
}

func (u *userState) advance(conv int64) {
	set := u.seqs[conv]
	m := u.mark[conv]
	for {
		if _, ok := set[m+1]; !ok {
			break
		}
		m++
	}
	u.mark[conv] = m
}

// onLive records a message.new event received at now. rec is the send it belongs to (nil:
// not a message of this run). It answers whether the event was a duplicate.
func (u *userState) onLive(m wireMessage, rec *sendRec, now time.Time) (dup bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, seen := u.liveIDs[m.ID]; seen {
		u.duplicates++
		return true
	}
	u.liveIDs[m.ID] = struct{}{}
	u.addSeq(m.ConversationID, m.Seq)
	if rec == nil {
		u.foreign++
		return false
	}
	u.deliveries++
	if rec.measured {
		u.latencies = append(u.latencies, now.Sub(rec.start).Microseconds())
		u.dueAt = append(u.dueAt, rec.start.UnixMicro())
	}
	return false
}

// onCatchUp records messages fetched with after_seq and answers how many were new.
func (u *userState) onCatchUp(msgs []wireMessage) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, m := range msgs {
		if u.addSeq(m.ConversationID, m.Seq) {
			n++
		}
	}
	u.recovered += int64(n)
	return n
}

// watermark answers the seq after which the user may be missing messages of conv.
func (u *userState) watermark(conv int64) int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.mark[conv]
}

// has reports whether the user received seq of conv, live or caught up.
func (u *userState) has(conv, seq int64) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	_, ok := u.seqs[conv][seq]
	return ok
}

func (u *userState) conversations() []int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]int64(nil), u.convs...)
}

// lostReport is the end-of-run comparison of what was acknowledged with what arrived.
type lostReport struct {
	Expected int64    // (acknowledged message, member) pairs
	Lost     int64    // of those, never received by the member
	Samples  []string // a few of the lost ones, "user N: conversation C seq S (message M)"
}

// countLost answers, for every acknowledged message and every member of its conversation
// (the sender included), whether that member's streams received it.
func countLost(sent []sentMsg, users []*userState, subs []string) lostReport {
	var r lostReport
	for _, m := range sent {
		for _, who := range m.members {
			r.Expected++
			if users[who].has(m.conv, m.seq) {
				continue
			}
			r.Lost++
			if len(r.Samples) < 10 {
				name := fmt.Sprint(who)
				if int(who) < len(subs) {
					name = subs[who]
				}
				r.Samples = append(r.Samples, fmt.Sprintf("%s: conversation %d seq %d (message %d)", name, m.conv, m.seq, m.id))
			}
		}
	}
	return r
}

// missing answers how many expected deliveries have not arrived yet; the run waits for it
// to reach zero (or for the grace period to end) before it counts.
func missing(sent []sentMsg, users []*userState) int64 {
	var n int64
	for _, m := range sent {
		for _, who := range m.members {
			if !users[who].has(m.conv, m.seq) {
				n++
			}
		}
	}
	return n
}

// seqCollisions checks that the acknowledged seqs of each conversation are distinct: two
// acknowledged sends with one seq would be a server bug the stream counts cannot show.
func seqCollisions(sent []sentMsg) int64 {
	type key struct{ conv, seq int64 }
	seen := make(map[key]int64, len(sent))
	var n int64
	for _, m := range sent {
		k := key{m.conv, m.seq}
		if id, ok := seen[k]; ok && id != m.id {
			n++
		}
		seen[k] = m.id
	}
	return n
}

// percentiles of a sample of µs values, nearest rank.
type percentiles struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

// rank answers the nearest-rank q-quantile (0 < q <= 1) of sorted.
func rank(sorted []int64, q float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999999) - 1 // ceil(q*n) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

// summarize sorts us in place and answers its percentiles in milliseconds.
func summarize(us []int64) percentiles {
	if len(us) == 0 {
		return percentiles{}
	}
	sort.Slice(us, func(i, j int) bool { return us[i] < us[j] })
	var sum float64
	for _, v := range us {
		sum += float64(v)
	}
	ms := func(v int64) float64 { return float64(v) / 1000 }
	return percentiles{
		Count: int64(len(us)),
		P50:   ms(rank(us, 0.50)),
		P95:   ms(rank(us, 0.95)),
		P99:   ms(rank(us, 0.99)),
		Max:   ms(us[len(us)-1]),
		Mean:  sum / float64(len(us)) / 1000,
	}
}
