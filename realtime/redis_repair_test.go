package realtime_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/realtime/redistest"
)

// lostPair is a publisher that reaches Redis through a proxy the test can cut, and a
// subscriber that reaches it directly, sharing a private key prefix: the publisher fails
// while the subscriber stays connected and is never told to resync by its own reconnect.
// Both are tuned by tu, with the fault tests' health checks.
func lostPair(t *testing.T, tu realtime.Tuning) (pub, sub *realtime.Redis, proxy *faultProxy) {
	t.Helper()
	tu.RedisPing, tu.RedisRead, tu.RedisWaitRetry = fastChecks.RedisPing, fastChecks.RedisRead, fastChecks.RedisWaitRetry
	base := redistest.URL(t)
	prefix := testPrefix(t, base)
	proxy, proxied := newFaultProxy(t, base)
	return newRedisTuned(t, proxied, 0, prefix, tu), newRedisTuned(t, base, 0, prefix, tu), proxy
}

// waitPing waits until e can publish again: after an outage go-redis keeps answering its
// last dial error for a while.
func waitPing(t *testing.T, e realtime.Engine) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for e.Ping(ctxT(t)) != nil {
		if time.Now().After(deadline) {
			t.Fatal("Redis does not answer again")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// recvWithin answers the next delivery of s, failing t after d.
func recvWithin(t *testing.T, s *realtime.Subscription, d time.Duration) realtime.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	got, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("no delivery within %s: %v", d, err)
	}
	return got
}

// TestRedisRepairsLostPublish: an event whose publish failed is never delivered, so once
// Redis answers again the engine publishes resync to each channel it was for — kept in
// the history of a user channel, so a stream resuming from before it resyncs too — and a
// later event of such a channel is not delivered before that resync.
func TestRedisRepairsLostPublish(t *testing.T) {
	pub, sub, proxy := lostPair(t, realtime.Tuning{})
	ctx := ctxT(t)
	user, zone := userChannel(t), "zone:"+userChannel(t)[len("user:"):]
	s := subscribe(t, sub, user, zone)
	publish(t, pub, user, numbered(1))
	before := recvWithin(t, s, 5*time.Second).Event.ID

	proxy.refuse.Store(true)
	proxy.cut()
	if err := pub.Publish(ctx, user, numbered(2)); err == nil {
		t.Fatal("publishing through a cut connection succeeded")
	}
	if err := pub.PublishMany(ctx, []string{zone, user}, numbered(3)); err == nil {
		t.Fatal("publishing through a cut connection succeeded")
	}
	time.Sleep(300 * time.Millisecond) // the engine keeps trying meanwhile
	proxy.refuse.Store(false)
	waitPing(t, pub)
	publish(t, pub, user, numbered(4))

	var userResync string
	gotZone := false
	for !gotZone || userResync == "" {
		d := recvWithin(t, s, 5*time.Second)
		switch {
		case d.Event.Type != realtime.EventResync:
			t.Fatalf("%s: %s %s before the resync of the lost events", d.Channel, d.Event.Type, d.Event.Data)
		case d.Channel == user:
			if d.Event.ID == "" {
				t.Fatal("the resync of a user channel has no id")
			}
			if userResync == "" {
				userResync = d.Event.ID
			}
		case d.Channel == zone:
			gotZone = true
		}
	}
	// A repair is at least once: one whose answer was lost on the way back (Redis ran it,
	// the client timed out) is sent again. A second resync is harmless; event 4 is next.
	d := recvWithin(t, s, 5*time.Second)
	for d.Event.Type == realtime.EventResync {
		d = recvWithin(t, s, 5*time.Second)
	}
	if d.Channel != user || string(d.Event.Data) != string(numbered(4).Data) {
		t.Fatalf("after the resync: %s %s %s, want event 4", d.Channel, d.Event.Type, d.Event.Data)
	}
	expectNoResync(t, s)

	// A stream that was away resumes from its last id and replays the resync.
	missed, err := sub.History(ctx, user, before)
	if err != nil {
		t.Fatal(err)
	}
	last := len(missed) - 1
	if last < 1 || missed[0].Type != realtime.EventResync || missed[0].ID != userResync || missed[last].Type != "message.new" {
		t.Fatalf("history after %s: %+v, want the resync and event 4", before, missed)
	}
	for _, ev := range missed[1:last] {
		if ev.Type != realtime.EventResync {
			t.Fatalf("history after %s: %+v, want only resyncs before event 4", before, missed)
		}
	}
}

// TestRedisRepairsEverythingWhenTooMuchLost: past its bound on remembered channels the
// engine makes every stream resync: live ones through every process's subscriber, those
// resuming later because their ids are from an older epoch.
func TestRedisRepairsEverythingWhenTooMuchLost(t *testing.T) {
	t.Parallel()
	pub, sub, proxy := lostPair(t, realtime.Tuning{MaxLostChannels: 2})
	ctx := ctxT(t)
	user, other := userChannel(t), userChannel(t)
	s := subscribe(t, sub, user)
	bystander := subscribe(t, sub, other)
	publish(t, pub, user, numbered(1))
	before := recvWithin(t, s, 5*time.Second).Event.ID

	proxy.refuse.Store(true)
	proxy.cut()
	for i := range 3 {
		if err := pub.Publish(ctx, userChannel(t), numbered(10+i)); err == nil {
			t.Fatal("publishing through a cut connection succeeded")
		}
	}
	proxy.refuse.Store(false)
	expectResync(t, s, 5*time.Second)
	expectResync(t, bystander, time.Second)
	waitPing(t, pub)
	if _, err := sub.History(ctx, user, before); !errors.Is(err, realtime.ErrHistoryGone) {
		t.Fatalf("history after an id from before the repair: %v, want ErrHistoryGone", err)
	}
	publish(t, pub, user, numbered(2))
	if d := recvWithin(t, s, 5*time.Second); string(d.Event.Data) != string(numbered(2).Data) {
		t.Fatalf("after the repair: %s %s, want event 2", d.Event.Type, d.Event.Data)
	}
}

// TestRedisPublishersDoNotQueueBehindRepair: while a repair of lost events hangs (a Redis
// that is slow rather than refusing), publishers are not held up one after another behind
// it: each returns at once, and its event is covered by the repair's resync.
func TestRedisPublishersDoNotQueueBehindRepair(t *testing.T) {
	pub, sub, proxy := lostPair(t, realtime.Tuning{})
	ctx := ctxT(t)
	user, other := userChannel(t), userChannel(t)
	s := subscribe(t, sub, user, other)

	release := pub.HoldRepair() // the repair of what is lost next hangs until release
	proxy.refuse.Store(true)
	proxy.cut()
	if err := pub.Publish(ctx, user, numbered(1)); err == nil {
		t.Fatal("publishing through a cut connection succeeded")
	}
	proxy.refuse.Store(false)
	waitPing(t, pub)

	done := make(chan error, 1)
	start := time.Now()
	go func() {
		for i := range 5 {
			if err := pub.Publish(ctx, other, numbered(i+2)); err == nil {
				done <- fmt.Errorf("publish %d went out ahead of the pending repair", i)
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		release()
		t.Fatal("publishes wait behind a repair under way; want each to return at once")
	}
	t.Logf("5 publishes returned in %s while the repair hung", time.Since(start).Round(time.Microsecond))
	release()
	publish(t, pub, user, numbered(7))
	got := map[string]bool{}
	for len(got) < 2 {
		d := recvWithin(t, s, 5*time.Second)
		if d.Event.Type != realtime.EventResync {
			t.Fatalf("%s: %s %s before the resync of the lost events", d.Channel, d.Event.Type, d.Event.Data)
		}
		got[d.Channel] = true
	}
	if d := recvWithin(t, s, 5*time.Second); d.Channel != user || string(d.Event.Data) != string(numbered(7).Data) {
		t.Fatalf("after the resyncs: %s %s %s, want event 7", d.Channel, d.Event.Type, d.Event.Data)
	}
}
