package realtime

import (
	"context"
	"sync"
	"time"

	"github.com/dreamseed/messenger/internal/tick"
)

// memPresence is the presence and typing state of a Memory engine. It
// mirrors the Redis layout: a user is in users from the Connect that made
// them online until the Disconnect or sweep that reports them offline, so
// each lapse is reported once.
type memPresence struct {
	cfg     presenceConfig
	expired *expiredQueue

	stopRefresh chan struct{} // closed by a test hook
	stopOnce    sync.Once

	mu     sync.Mutex
	users  map[int64]map[string]time.Time // user → connection → expiry
	typing map[int64]map[int64]time.Time  // conversation → user → expiry
}

func newMemPresence(cfg presenceConfig) *memPresence {
	return &memPresence{
		cfg:         cfg,
		expired:     newExpiredQueue(cfg.buffer),
		stopRefresh: make(chan struct{}),
		users:       make(map[int64]map[string]time.Time),
		typing:      make(map[int64]map[int64]time.Time),
	}
}

// purgeConns drops the expired connections and returns how many are live.
func purgeConns(conns map[string]time.Time, now time.Time) int {
	for id, exp := range conns {
		if !exp.After(now) {
			delete(conns, id)
		}
	}
	return len(conns)
}

// check fails a presence or typing call on a cancelled ctx or closed engine.
func (m *Memory) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-m.done:
		return ErrClosed
	default:
		return nil
	}
}

// lock fails as check does, or locks the presence state and answers it with the time
// now: the caller unlocks p.mu.
func (m *Memory) lock(ctx context.Context) (p *memPresence, now time.Time, err error) {
	if err := m.check(ctx); err != nil {
		return nil, time.Time{}, err
	}
	p = m.pres
	now = time.Now()
	p.mu.Lock()
	return p, now, nil
}

// lockConn is lock for a call about one connection: an empty connID is refused first.
func (m *Memory) lockConn(ctx context.Context, connID string) (*memPresence, time.Time, error) {
	if connID == "" {
		return nil, time.Time{}, ErrInvalidConnID
	}
	return m.lock(ctx)
}

// Connect records connID of userID as live for PresenceTTL, renewed by
// the engine until Disconnect or Close.
func (m *Memory) Connect(ctx context.Context, userID int64, connID string) (bool, error) {
	p, now, err := m.lockConn(ctx, connID)
	if err != nil {
		return false, err
	}
	defer p.mu.Unlock()
	conns := p.users[userID]
	if conns == nil {
		conns = make(map[string]time.Time)
		p.users[userID] = conns
	}
	live := purgeConns(conns, now)
	conns[connID] = now.Add(p.cfg.ttl)
	return live == 0, nil
}

// Disconnect removes connID of userID.
func (m *Memory) Disconnect(ctx context.Context, userID int64, connID string) (bool, error) {
	p, now, err := m.lockConn(ctx, connID)
	if err != nil {
		return false, err
	}
	defer p.mu.Unlock()
	conns, ok := p.users[userID]
	if !ok {
		return false, nil // never online, or already reported offline
	}
	delete(conns, connID)
	if purgeConns(conns, now) > 0 {
		return false, nil
	}
	delete(p.users, userID)
	return true, nil
}

// Online reports which of userIDs have a live connection.
func (m *Memory) Online(ctx context.Context, userIDs []int64) (map[int64]bool, error) {
	p, now, err := m.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer p.mu.Unlock()
	out := make(map[int64]bool, len(userIDs))
	for _, id := range userIDs {
		online := false
		for _, exp := range p.users[id] {
			if exp.After(now) {
				online = true
				break
			}
		}
		out[id] = online
	}
	return out, nil
}

// PresenceExpired delivers the users whose connections all lapsed (see
// Engine); in one process that only happens when the refresher is stalled.
func (m *Memory) PresenceExpired() <-chan int64 { return m.pres.expired.channel() }

// SetTyping marks userID typing in convID for TypingTTL, or stops it.
func (m *Memory) SetTyping(ctx context.Context, convID, userID int64, on bool) (bool, error) {
	p, now, err := m.lock(ctx)
	if err != nil {
		return false, err
	}
	defer p.mu.Unlock()
	users := p.typing[convID]
	live := users != nil && users[userID].After(now)
	if on {
		if users == nil {
			users = make(map[int64]time.Time)
			p.typing[convID] = users
		}
		users[userID] = now.Add(p.cfg.typingTTL)
		return !live, nil
	}
	if users != nil {
		delete(users, userID)
		if len(users) == 0 {
			delete(p.typing, convID)
		}
	}
	return live, nil
}

// Typing lists the users typing in convID now.
func (m *Memory) Typing(ctx context.Context, convID int64) ([]int64, error) {
	p, now, err := m.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer p.mu.Unlock()
	var ids []int64
	for id, exp := range p.typing[convID] {
		if exp.After(now) {
			ids = append(ids, id)
		}
	}
	return sortedIDs(ids), nil
}

// refreshLoop renews every connection entry each refresh period.
func (m *Memory) refreshLoop() {
	defer m.wg.Done()
	p := m.pres
	tick.Every(p.cfg.refresh, m.done, p.stopRefresh, func() {
		exp := time.Now().Add(p.cfg.ttl)
		p.mu.Lock()
		for _, conns := range p.users {
			for id := range conns {
				conns[id] = exp
			}
		}
		p.mu.Unlock()
	})
}

// sweepLoop reports lapsed users and forgets expired typing state.
func (m *Memory) sweepLoop() {
	defer m.wg.Done()
	p := m.pres
	tick.Every(p.cfg.sweep, m.done, nil, func() { p.sweep(time.Now()) })
}

func (p *memPresence) sweep(now time.Time) {
	room := p.expired.room()
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, conns := range p.users {
		if room == 0 {
			break
		}
		if purgeConns(conns, now) == 0 {
			delete(p.users, id)
			p.expired.push(id) // cannot fail: at most room users are claimed
			room--
		}
	}
	for conv, users := range p.typing {
		for id, exp := range users {
			if !exp.After(now) {
				delete(users, id)
			}
		}
		if len(users) == 0 {
			delete(p.typing, conv)
		}
	}
}

// stopRefreshing stops the refresher, as if the process had hung.
func (p *memPresence) stopRefreshing() { p.stopOnce.Do(func() { close(p.stopRefresh) }) }
