package events

import (
	"context"
	"encoding/json"
	"sync"

	"example.com/gmailoauth/internal/store"
)

// DefaultMemoryLimit is how many events a Memory keeps by default.
const DefaultMemoryLimit = 1000

// Memory is the local runner's stand-in for the app's topic: a Publisher
// that keeps the last events' bodies in memory, oldest first, dropping the
// oldest beyond its limit. Safe for concurrent use.
type Memory struct {
	mu      sync.Mutex
	limit   int
	bodies  []json.RawMessage
	total   int
	changed chan struct{} // closed and replaced on every change
}

// NewMemory returns a Memory keeping up to limit events (0 =
// DefaultMemoryLimit).
func NewMemory(limit int) *Memory {
	if limit <= 0 {
		limit = DefaultMemoryLimit
	}
	return &Memory{limit: limit, changed: make(chan struct{})}
}

// Publish implements Publisher; it accepts everything.
func (m *Memory) Publish(ctx context.Context, events []*store.OutboxEvent) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	for _, e := range events {
		m.Add(e.Body)
	}
	return len(events), nil
}

// Add keeps one event body (a copy).
func (m *Memory) Add(body []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.bodies = append(m.bodies, append(json.RawMessage(nil), body...))
	if over := len(m.bodies) - m.limit; over > 0 {
		m.bodies = append(m.bodies[:0:0], m.bodies[over:]...)
	}
	m.total++
	close(m.changed)
	m.changed = make(chan struct{})
}

// Events returns the kept bodies, oldest first.
func (m *Memory) Events() []json.RawMessage {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]json.RawMessage(nil), m.bodies...)
}

// Total is how many events were ever added (kept or dropped).
func (m *Memory) Total() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.total
}

// Changed returns a channel closed at the next Add.
func (m *Memory) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}
