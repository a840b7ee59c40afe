package realtime

import "context"

// Memory is an Engine for a single process: publishing hands events straight
// to the subscribers' queues, so it needs no goroutine per subscriber.
type Memory struct {
	hub       *hub
	queueSize int
}

var _ Engine = (*Memory)(nil)

// NewMemory returns an in-process engine whose subscriptions queue up to
// queueSize events each (DefaultQueueSize when queueSize <= 0).
func NewMemory(queueSize int) *Memory {
	return &Memory{hub: newHub(), queueSize: queueSizeOrDefault(queueSize)}
}

// Publish delivers ev to the current subscribers of channel before it
// returns, in call order, without waiting for any of them.
func (m *Memory) Publish(ctx context.Context, channel string, ev Event) error {
	if channel == "" {
		return ErrInvalidChannel
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := validEvent(ev); err != nil {
		return err
	}
	return m.hub.publish(channel, ev)
}

// Subscribe returns a subscription to channels; it is active immediately.
func (m *Memory) Subscribe(ctx context.Context, channels ...string) (*Subscription, error) {
	if err := validChannels(channels); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := newSubscription(m, m.queueSize)
	if err := m.hub.register(s); err != nil {
		return nil, err
	}
	if err := m.attach(ctx, s, channels); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Ping reports ErrClosed after Close and nil otherwise.
func (m *Memory) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.hub.isClosed() {
		return ErrClosed
	}
	return nil
}

// Close closes every subscription's C channel; later calls do nothing.
func (m *Memory) Close() error {
	m.hub.close()
	return nil
}

func (m *Memory) attach(ctx context.Context, s *Subscription, channels []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, _, err := m.hub.add(s, channels)
	return err
}

func (m *Memory) detach(s *Subscription, channels []string) { m.hub.remove(s, channels) }

func (m *Memory) release(s *Subscription, channels []string) { m.hub.release(s, channels) }
