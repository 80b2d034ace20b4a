package memstore

import (
	"context"
	"sync"

	"example.com/gmailoauth/internal/store"
)

// quotaUsage holds the daily Gmail quota totals. It has its own lock:
// every instance's flush lands here, and it must not wait on the rest of
// the store.
type quotaUsage struct {
	mu   sync.Mutex
	days map[string]int64
}

// AddQuotaUsage implements store.Store.
func (s *Store) AddQuotaUsage(ctx context.Context, day string, units int64) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := store.CheckQuotaUsage(day, units); err != nil {
		return 0, err
	}
	s.quota.mu.Lock()
	defer s.quota.mu.Unlock()
	if s.quota.days == nil {
		s.quota.days = map[string]int64{}
	}
	s.quota.days[day] += units
	return s.quota.days[day], nil
}

// QuotaUsage implements store.Store.
func (s *Store) QuotaUsage(ctx context.Context, day string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := store.CheckQuotaUsage(day, 0); err != nil {
		return 0, err
	}
	s.quota.mu.Lock()
	defer s.quota.mu.Unlock()
	return s.quota.days[day], nil
}
