package chat_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/chat"
	"github.com/dreamseed/messenger/internal/syncbuf"
	"github.com/dreamseed/messenger/realtime"
)

// presenceHeard collects the presence events a subscription receives, in order, by the
// portal id of whom they are about.
type presenceHeard struct {
	mu  sync.Mutex
	got map[string][]chat.PresenceChange
}

func listenPresence(t *testing.T, engine realtime.Engine, of messenger.User) *presenceHeard {
	t.Helper()
	sub, err := engine.Subscribe(context.Background(), chat.UserChannel(of.ID))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	h := &presenceHeard{got: map[string][]chat.PresenceChange{}}
	go func() {
		for {
			d, err := sub.Next(context.Background())
			if err != nil {
				return // closed
			}
			if d.Event.Type != chat.EventPresence {
				continue
			}
			v, err := chat.EventValue(d.Event)
			if err != nil {
				continue
			}
			p := v.(chat.PresenceChange)
			h.mu.Lock()
			h.got[p.UserID] = append(h.got[p.UserID], p)
			h.mu.Unlock()
		}
	}()
	return h
}

func (h *presenceHeard) of(sub string) []chat.PresenceChange {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]chat.PresenceChange(nil), h.got[sub]...)
}

// waitFor waits until ok holds of what h heard, or fails the test after timeout.
func (h *presenceHeard) waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lastSeen answers the stored last_seen_at of user (nil: none).
func (e *chatEnv) lastSeen(u messenger.User) *time.Time {
	e.t.Helper()
	var at *time.Time
	if err := e.owner.QueryRow(`SELECT last_seen_at FROM users WHERE id = $1`, u.ID).Scan(&at); err != nil {
		e.t.Fatal(err)
	}
	return at
}

// usersIn signs in n users (prefix0 …) and puts them in a group of observer's (none: no
// group).
func (e *chatEnv) usersIn(observer *messenger.User, prefix string, n int) []messenger.User {
	e.t.Helper()
	var users []messenger.User
	for i := range n {
		users = append(users, e.user(fmt.Sprintf("%s%d", prefix, i), fmt.Sprintf("회원%d", i), "org-a"))
	}
	if observer != nil {
		e.group(*observer, users...)
	}
	return users
}

// runPresence runs the service's presence batches until the test ends.
func (e *chatEnv) runPresence(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.svc.StorePresence(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestPresenceBatches: users whose last stream closes are stored (last_seen_at) and
// announced offline to their contacts by the presence batches, and only to contacts.
func TestPresenceBatches(t *testing.T) {
	e := newChatEnv(t)
	observer := e.user("obs", "관찰자", "org-a")
	stranger := e.user("str", "남남", "org-a")
	users := e.usersIn(&observer, "u", 30)
	e.svc.SetPresenceConfig(chat.PresenceConfig{BatchSize: 7})
	heard := listenPresence(t, e.engine, observer)
	strangerHeard := listenPresence(t, e.engine, stranger)
	e.runPresence(t)
	ctx := context.Background()
	for _, u := range users {
		if err := e.svc.Connected(ctx, u, "c-"+u.Sub); err != nil {
			t.Fatal(err)
		}
	}
	before := time.Now()
	for _, u := range users {
		e.svc.Disconnected(ctx, u, "c-"+u.Sub)
	}
	heard.waitFor(t, "every offline heard", 10*time.Second, func() bool {
		for _, u := range users {
			if got := heard.of(u.Sub); len(got) != 2 || got[1].Online || got[1].LastSeenAt == nil {
				return false
			}
		}
		return true
	})
	for _, u := range users {
		at := e.lastSeen(u)
		if at == nil || at.Before(before.Add(-time.Second)) || at.After(time.Now()) {
			t.Errorf("%s: last_seen_at %v, want the time their stream closed", u.Sub, at)
		}
		if got := heard.of(u.Sub); !got[1].LastSeenAt.Equal(*at) {
			t.Errorf("%s: announced last seen %v, stored %v", u.Sub, got[1].LastSeenAt, at)
		}
	}
	if n := len(strangerHeard.of(users[0].Sub)); n != 0 {
		t.Errorf("someone sharing no conversation heard %d presence events", n)
	}
}

// TestPresenceBackBeforeBatch: a user who goes offline and comes back before their batch
// runs is neither announced offline after their online nor marked last seen.
func TestPresenceBackBeforeBatch(t *testing.T) {
	e := newChatEnv(t)
	observer := e.user("obs", "관찰자", "org-a")
	back, marker := e.user("back", "돌아옴", "org-a"), e.user("marker", "표시", "org-a")
	e.group(observer, back, marker)
	heard := listenPresence(t, e.engine, observer)
	ctx := context.Background()
	for _, u := range []messenger.User{back, marker} {
		if err := e.svc.Connected(ctx, u, "c1-"+u.Sub); err != nil {
			t.Fatal(err)
		}
	}
	e.svc.QueuePresence()
	e.svc.Disconnected(ctx, back, "c1-back")
	if n := e.svc.QueuedPresence(); n != 1 {
		t.Fatalf("%d users queued, want the one gone offline", n)
	}
	if err := e.svc.Connected(ctx, back, "c2-back"); err != nil {
		t.Fatal(err)
	}
	e.svc.Disconnected(ctx, marker, "c1-marker")
	e.runPresence(t)
	heard.waitFor(t, "the marker's offline", 10*time.Second, func() bool { return len(heard.of(marker.Sub)) == 2 })
	time.Sleep(100 * time.Millisecond)
	got := heard.of(back.Sub)
	if len(got) == 0 || !got[len(got)-1].Online {
		t.Errorf("the observer last heard %+v of a user online now, want online", got)
	}
	if at := e.lastSeen(back); at != nil {
		t.Errorf("a user back online before their batch has last_seen_at %v", at)
	}
}

// TestPresenceRacesEndOnline: users going on and offline while the batches run, each
// ending online or offline; what their contact heard last of each is their state.
func TestPresenceRacesEndOnline(t *testing.T) {
	e := newChatEnv(t)
	observer := e.user("obs", "관찰자", "org-a")
	users := e.usersIn(&observer, "r", 20)
	e.svc.SetPresenceConfig(chat.PresenceConfig{BatchSize: 3})
	heard := listenPresence(t, e.engine, observer)
	e.runPresence(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Go(func() {
			for round := range 30 {
				conn := fmt.Sprintf("c%d", round)
				if err := e.svc.Connected(ctx, u, conn); err != nil {
					t.Error(err)
					return
				}
				if round == 29 && i%2 == 0 {
					return // ends online
				}
				e.svc.Disconnected(ctx, u, conn)
			}
		})
	}
	wg.Wait()
	heard.waitFor(t, "the queue empty", 10*time.Second, func() bool { return e.svc.QueuedPresence() == 0 })
	time.Sleep(300 * time.Millisecond) // the last batch's publish
	for i, u := range users {
		got := heard.of(u.Sub)
		if len(got) == 0 {
			t.Errorf("%s: heard nothing", u.Sub)
			continue
		}
		if want := i%2 == 0; got[len(got)-1].Online != want {
			t.Errorf("%s: heard last online=%v, want %v", u.Sub, got[len(got)-1].Online, want)
		}
	}
}

// failingOnline is an engine whose presence lookups fail a number of times.
type failingOnline struct {
	*realtime.Memory
	mu    sync.Mutex
	fails int
}

func (f *failingOnline) Online(ctx context.Context, ids []int64) (map[int64]bool, error) {
	f.mu.Lock()
	fail := f.fails > 0
	if fail {
		f.fails--
	}
	f.mu.Unlock()
	if fail {
		return nil, errors.New("engine unreachable")
	}
	return f.Memory.Online(ctx, ids)
}

// TestPresenceBatchRetried: a batch that fails is logged once (not once per user) and
// tried again until it is stored and announced; nothing is lost.
func TestPresenceBatchRetried(t *testing.T) {
	e := newChatEnv(t)
	engine := &failingOnline{Memory: e.engine}
	logs := &syncbuf.Buffer{}
	e.svc = chat.NewService(e.db, engine, slog.New(slog.NewTextHandler(logs, nil)), prometheus.NewRegistry(), nil)
	observer := e.user("obs", "관찰자", "org-a")
	users := e.usersIn(&observer, "f", 40)
	heard := listenPresence(t, e.engine, observer)
	ctx := context.Background()
	for _, u := range users {
		if err := e.svc.Connected(ctx, u, "c"); err != nil {
			t.Fatal(err)
		}
	}
	e.svc.QueuePresence()
	for _, u := range users {
		e.svc.Disconnected(ctx, u, "c")
	}
	engine.mu.Lock()
	engine.fails = 3
	engine.mu.Unlock()
	e.runPresence(t)
	heard.waitFor(t, "every offline heard after the failures", 15*time.Second, func() bool {
		for _, u := range users {
			if len(heard.of(u.Sub)) != 2 {
				return false
			}
		}
		return true
	})
	for _, u := range users {
		if e.lastSeen(u) == nil {
			t.Errorf("%s: no last_seen_at after the retries", u.Sub)
		}
	}
	if n := strings.Count(logs.String(), "presence batch failed"); n != 3 {
		t.Errorf("%d lines logged for 3 failed batches of %d users:\n%s", n, len(users), logs.String())
	}
}

// TestPresenceStoredAtShutdown: users still queued when StorePresence is told to stop are
// stored before it returns (the process closes the database after it).
func TestPresenceStoredAtShutdown(t *testing.T) {
	e := newChatEnv(t)
	users := e.usersIn(nil, "s", 25)
	ctx := context.Background()
	e.svc.QueuePresence()
	for _, u := range users {
		if err := e.svc.Connected(ctx, u, "c"); err != nil {
			t.Fatal(err)
		}
		e.svc.Disconnected(ctx, u, "c")
	}
	stopped, cancel := context.WithCancel(ctx)
	cancel()
	e.svc.StorePresence(stopped)
	for _, u := range users {
		if e.lastSeen(u) == nil {
			t.Errorf("%s: not stored when the presence batches stopped", u.Sub)
		}
	}
	// From then on a user going offline is stored by the stream that closes.
	late := e.user("late", "늦음", "org-a")
	if err := e.svc.Connected(ctx, late, "c"); err != nil {
		t.Fatal(err)
	}
	e.svc.Disconnected(ctx, late, "c")
	if e.lastSeen(late) == nil {
		t.Error("a user gone offline after the batches stopped was not stored")
	}
}
