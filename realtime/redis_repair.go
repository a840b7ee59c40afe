package realtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// EventResync is the type of the event an engine publishes on a channel whose events it
// may have lost: its consumers catch up from the database.
const EventResync = "resync"

// DefaultMaxLostChannels bounds how many channels with lost events an engine remembers;
// past it, it makes every stream resync instead (see Redis).
const DefaultMaxLostChannels = 10000

// resyncAllChannel is the engine's own pub/sub channel (under the prefix) on which a
// process tells every process to signal Resync on all its subscriptions. No application
// channel has this name: theirs are "user:…", "zone:…" and the like.
const resyncAllChannel = "engine:resync-all"

// lostChannels remembers the channels whose non-droppable events failed to publish, until
// a resync has been published to them. Each entry keeps the generation of its latest
// loss, so a repair forgets only what it covered: a channel that loses another event
// while its resync is on the way stays for the next repair.
type lostChannels struct {
	mu      sync.Mutex
	max     int
	gen     uint64
	byName  map[string]uint64
	all     uint64 // generation at which the bound was passed; 0: not passed
	pending atomic.Bool
}

func newLostChannels(max int) *lostChannels {
	return &lostChannels{max: max, byName: make(map[string]uint64)}
}

// add remembers channels; past the bound it remembers "all" instead.
func (l *lostChannels) add(channels []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gen++
	for _, c := range channels {
		if _, ok := l.byName[c]; !ok && len(l.byName) >= l.max {
			l.all = l.gen
			clear(l.byName)
			break
		}
		l.byName[c] = l.gen
	}
	l.pending.Store(true)
}

// snapshot answers what a repair must cover now.
func (l *lostChannels) snapshot() (channels map[string]uint64, all uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	channels = make(map[string]uint64, len(l.byName))
	for c, g := range l.byName {
		channels[c] = g
	}
	return channels, l.all
}

// repaired forgets what a successful repair of snapshot covered.
func (l *lostChannels) repaired(channels map[string]uint64, all uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c, g := range channels {
		if l.byName[c] == g {
			delete(l.byName, c)
		}
	}
	if l.all == all {
		l.all = 0
	}
	l.pending.Store(len(l.byName) > 0 || l.all != 0)
}

// publish publishes pubs as send does, after the repair of earlier lost events, so that no
// event of a channel overtakes the resync that stands for an earlier one lost on it. A
// non-droppable event that fails is remembered as lost, and the repair loop woken.
//
// Publishers never queue behind a repair: when one is under way (Redis may be slow to
// answer, not just refusing), the event counts as lost too and the repair covers it.
func (r *Redis) publish(ctx context.Context, pubs []Publication) error {
	var errs []error
	if err := r.tryRepair(ctx); err != nil {
		errs = make([]error, len(pubs))
		for i := range errs {
			errs[i] = err
		}
	} else {
		errs = r.send(ctx, pubs)
	}
	lost := false
	for i, p := range pubs {
		if errs[i] != nil && !p.Event.Droppable {
			r.lost.add(p.Channels)
			lost = true
		}
	}
	if lost {
		select {
		case r.repairWake <- struct{}{}:
		default:
		}
	}
	return errors.Join(dedupErrors(errs)...)
}

// errRepairBusy: another goroutine is repairing lost events; an event published now
// would overtake their resync.
var errRepairBusy = errors.New("realtime: lost events are being repaired")

// repairWait is how long a publisher waits for a repair already under way (a healthy
// Redis finishes one in a millisecond or two) before it counts its event as lost too.
const repairWait = 250 * time.Millisecond

// tryRepair is repair for a publisher: it waits for a repair already under way only
// briefly, so publishers never queue one after another behind a Redis that hangs.
func (r *Redis) tryRepair(ctx context.Context) error {
	if !r.lost.pending.Load() {
		return nil
	}
	wait := time.NewTimer(repairWait)
	defer wait.Stop()
	select {
	case r.repairSem <- struct{}{}:
	case <-wait.C:
		return errRepairBusy
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.repairSem }()
	return r.repairLocked(ctx)
}

// repair publishes resync to every channel whose events were lost, if any: on a channel
// keeping history it is stored, so a stream resuming from before it resyncs as well. Past
// the bound on remembered channels, it starts a new epoch (every resume from an older id
// resyncs) and tells every process to resync all its subscriptions.
func (r *Redis) repair(ctx context.Context) error {
	if !r.lost.pending.Load() {
		return nil
	}
	select {
	case r.repairSem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.repairSem }()
	return r.repairLocked(ctx)
}

// repairLocked is repair with the repair semaphore held.
func (r *Redis) repairLocked(ctx context.Context) error {
	channels, all := r.lost.snapshot()
	if len(channels) == 0 && all == 0 {
		r.lost.repaired(channels, all)
		return nil
	}
	if all != 0 {
		pipe := r.client.Pipeline()
		for _, key := range r.epochKeys() {
			pipe.Set(ctx, key, newEpoch(), 0)
		}
		if r.cluster {
			pipe.SPublish(ctx, r.resyncAllName(0), "")
		} else {
			pipe.Publish(ctx, r.resyncAllName(0), "")
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("realtime: resync after lost events: %w", err)
		}
	}
	names := make([]string, 0, len(channels))
	for c := range channels {
		names = append(names, c)
	}
	if len(names) > 0 {
		if err := errors.Join(r.send(ctx, []Publication{{Channels: names, Event: Event{Type: EventResync}}})...); err != nil {
			return fmt.Errorf("realtime: resync after lost events: %w", err)
		}
	}
	r.lost.repaired(channels, all)
	r.log.Info("realtime: published resync for events lost while Redis failed", "channels", len(names), "all", all != 0)
	return nil
}

// repairLoop repairs lost events as soon as Redis answers again, also when nothing else
// is published on their channels.
func (r *Redis) repairLoop() {
	defer r.wg.Done()
	failures := 0
	for {
		select {
		case <-r.done:
			return
		case <-r.repairWake:
		}
		for r.lost.pending.Load() {
			ctx, cancel := context.WithTimeout(r.bg, r.timings.op)
			err := r.repair(ctx)
			cancel()
			if err == nil {
				failures = 0
				continue
			}
			failures++
			if failures == 1 {
				r.log.Warn("realtime: events lost while Redis failed; resync once it answers", "err", err)
			}
			if !r.sleep(backoff(failures + 1)) {
				return
			}
		}
	}
}
