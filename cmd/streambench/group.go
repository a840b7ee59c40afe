package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The group phase (the messenger only, with every stream still open): a group of
// GroupSize members (users 0 .. GroupSize-1, the teacher creating it) and a small group of
// SmallSize (the next users) take GroupSends sends between them, alternated, open loop at
// GroupRate a second, each from a random member. Every other member's stream is timed to
// its message.new: send→delivered for the big group against the small one, and each
// send's own answer, whose growth with the group's size is the publish cost per recipient.

// groupResult is what the group phase measured.
type groupResult struct {
	Size           int     `json:"size"`
	SmallSize      int     `json:"small_size"`
	Sends          int     `json:"sends"` // to the big group (as many again to the small one)
	Rate           float64 `json:"rate"`
	Delivered      int64   `json:"delivered"` // to the big group's other members, of sends × (size-1)
	DeliveredSmall int64   `json:"delivered_small"`
	DeliveredP50Ms float64 `json:"delivered_p50_ms"` // from when the send was due
	DeliveredP99Ms float64 `json:"delivered_p99_ms"`
	DeliveredMaxMs float64 `json:"delivered_max_ms"`
	SmallP50Ms     float64 `json:"small_delivered_p50_ms"`
	SmallP99Ms     float64 `json:"small_delivered_p99_ms"`
	SendP50Ms      float64 `json:"send_p50_ms"` // the POST's own answer
	SendP99Ms      float64 `json:"send_p99_ms"`
	SmallSendP50Ms float64 `json:"small_send_p50_ms"`
	SmallSendP99Ms float64 `json:"small_send_p99_ms"`
	PerRecipientUs float64 `json:"per_recipient_us"` // (send p50 big − small) / (size − small size)
	SendErrors     int64   `json:"send_errors"`
	FirstSendError string  `json:"first_send_error,omitempty"`
	PhaseSeconds   float64 `json:"phase_seconds"`
}

// groupPhase is the state the streams' readers fill while the group phase runs.
type groupPhase struct {
	nonce   string    // the run's part of every client_msg_id, so no other message matches
	due     []int64   // [send]: Unix ns it was due
	arrived [][]int64 // [send][stream]: Unix ns the stream got it, 0 if not; streams 0 .. size+small-1
	got     atomic.Int64
}

// clientMsgID is send k's client_msg_id: the nonce and k, in a UUID's shape.
func (g *groupPhase) clientMsgID(k int) string {
	return fmt.Sprintf("00000000-0000-4000-8000-%s%06d", g.nonce, k)
}

// match records a message.new whose data holds one of the phase's client_msg_ids.
func (g *groupPhase) match(data []byte, stream int) {
	const key = `"client_msg_id":"`
	i := bytes.Index(data, []byte(key))
	if i < 0 || stream >= len(g.arrived[0]) {
		return
	}
	id := data[i+len(key):]
	if len(id) < 36 || string(id[24:30]) != g.nonce {
		return
	}
	k, err := strconv.Atoi(string(id[30:36]))
	if err != nil || k < 0 || k >= len(g.arrived) {
		return
	}
	if g.arrived[k][stream] == 0 {
		g.arrived[k][stream] = time.Now().UnixNano()
		g.got.Add(1)
	}
}

// runGroup creates the two groups and times their sends.
func (b *bench) runGroup(ctx context.Context) (*groupResult, error) {
	size, small, sends := b.cfg.GroupSize, b.cfg.SmallSize, b.cfg.GroupSends
	if size+small > b.cfg.Streams {
		return nil, fmt.Errorf("group phase: %d + %d members, only %d streams", size, small, b.cfg.Streams)
	}
	big, err := b.createGroup(ctx, 0, size, "전교생 공지방")
	if err != nil {
		return nil, err
	}
	smallID, err := b.createGroup(ctx, size, size+small, "3학년 2반 모둠")
	if err != nil {
		return nil, err
	}
	// Let the member-change events settle before anything is timed.
	time.Sleep(2 * time.Second)

	g := &groupPhase{nonce: fmt.Sprintf("%06d", time.Now().UnixNano()/1e3%1e6), due: make([]int64, 2*sends)}
	g.arrived = make([][]int64, 2*sends)
	for k := range g.arrived {
		g.arrived[k] = make([]int64, size+small)
	}
	b.group.Store(g)
	defer b.group.Store(nil)

	res := &groupResult{Size: size, SmallSize: small, Sends: sends, Rate: b.cfg.GroupRate}
	answers := make([]float64, 2*sends)
	senders := make([]int, 2*sends)
	var wg sync.WaitGroup
	var errs atomic.Int64
	var firstErr atomic.Value
	interval := time.Duration(float64(time.Second) / b.cfg.GroupRate)
	start := time.Now()
	for k := range 2 * sends {
		due := start.Add(time.Duration(k) * interval)
		time.Sleep(time.Until(due))
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		conv, lo, n := big, 0, size
		if k%2 == 1 {
			conv, lo, n = smallID, size, small
		}
		sender := lo + rand.IntN(n)
		senders[k] = sender
		g.due[k] = due.UnixNano()
		wg.Go(func() {
			in := map[string]string{"client_msg_id": g.clientMsgID(k), "body": "수행평가 안내: 다음 주 월요일까지 제출하세요. " + strconv.Itoa(k)}
			err := b.apiAs(ctx, sender, http.MethodPost, "/api/v1/conversations/"+strconv.FormatInt(conv, 10)+"/messages", in, nil)
			answers[k] = ms(time.Since(due))
			if err != nil {
				if errs.Add(1) == 1 {
					firstErr.Store(err.Error())
				}
			}
		})
	}
	wg.Wait()
	want := int64(sends*size + sends*small) // the sender's own stream gets the message too
	deadline := time.Now().Add(b.cfg.BurstTimeout)
	for g.got.Load() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	res.PhaseSeconds = time.Since(start).Seconds()
	res.SendErrors = errs.Load()
	if v, ok := firstErr.Load().(string); ok {
		res.FirstSendError = v
	}

	var bigLat, smallLat, bigSend, smallSend []float64
	for k := range 2 * sends {
		lo, hi := 0, size
		if k%2 == 1 {
			lo, hi = size, size+small
		}
		for s := lo; s < hi; s++ {
			if s == senders[k] {
				continue
			}
			if at := g.arrived[k][s]; at != 0 {
				d := ms(time.Duration(at - g.due[k]))
				if k%2 == 0 {
					bigLat, res.Delivered = append(bigLat, d), res.Delivered+1
				} else {
					smallLat, res.DeliveredSmall = append(smallLat, d), res.DeliveredSmall+1
				}
			}
		}
		if k%2 == 0 {
			bigSend = append(bigSend, answers[k])
		} else {
			smallSend = append(smallSend, answers[k])
		}
	}
	for _, s := range [][]float64{bigLat, smallLat, bigSend, smallSend} {
		slices.Sort(s)
	}
	res.DeliveredP50Ms, res.DeliveredP99Ms = quantile(bigLat, 0.50), quantile(bigLat, 0.99)
	if len(bigLat) > 0 {
		res.DeliveredMaxMs = bigLat[len(bigLat)-1]
	}
	res.SmallP50Ms, res.SmallP99Ms = quantile(smallLat, 0.50), quantile(smallLat, 0.99)
	res.SendP50Ms, res.SendP99Ms = quantile(bigSend, 0.50), quantile(bigSend, 0.99)
	res.SmallSendP50Ms, res.SmallSendP99Ms = quantile(smallSend, 0.50), quantile(smallSend, 0.99)
	if size > small {
		res.PerRecipientUs = (res.SendP50Ms - res.SmallSendP50Ms) * 1000 / float64(size-small)
	}
	fmt.Fprintf(logOut, "%s: group of %d: %d/%d delivered, p50 %.1f ms, p99 %.1f ms, max %.1f ms; send p50 %.1f p99 %.1f ms; "+
		"group of %d: %d/%d delivered, p50 %.1f p99 %.1f ms, send p50 %.1f p99 %.1f ms; %.1f µs a recipient; %d send errors %s\n",
		b.t.Name, size, res.Delivered, sends*(size-1), res.DeliveredP50Ms, res.DeliveredP99Ms, res.DeliveredMaxMs, res.SendP50Ms, res.SendP99Ms,
		small, res.DeliveredSmall, sends*(small-1), res.SmallP50Ms, res.SmallP99Ms, res.SmallSendP50Ms, res.SmallSendP99Ms,
		res.PerRecipientUs, res.SendErrors, res.FirstSendError)
	return res, nil
}

// createGroup makes a group of the users lo .. hi-1, user lo creating it, and answers its id.
func (b *bench) createGroup(ctx context.Context, lo, hi int, title string) (int64, error) {
	subs := make([]string, 0, hi-lo-1)
	for i := lo + 1; i < hi; i++ {
		subs = append(subs, "stream-user-"+strconv.Itoa(i))
	}
	var out struct {
		ID int64 `json:"id"`
	}
	in := map[string]any{"kind": "group", "title": title, "participant_ids": subs}
	if err := b.apiAs(ctx, lo, http.MethodPost, "/api/v1/conversations", in, &out); err != nil {
		return 0, fmt.Errorf("create the group of %d: %w", hi-lo, err)
	}
	return out.ID, nil
}
