package memstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/memstore"
)

// TestExpiredStatesArePruned is issue 15 item 14's memory half: states
// that expired without a callback are dropped, so the memory store holds
// about the pending states, not every state ever started. 20,000
// authorizations started one every 100 ms (virtual time) with a 10-minute
// lifetime leave at most 6,000 pending at any moment.
func TestExpiredStatesArePruned(t *testing.T) {
	s := memstore.New()
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const n, every, ttl = 20_000, 100 * time.Millisecond, 10 * time.Minute
	live := int(ttl / every)
	for i := range n {
		now := t0.Add(time.Duration(i) * every)
		if err := s.PutState(ctx, fmt.Sprintf("k%05d", i), &store.AuthState{CreatedAt: now, ExpiresAt: now.Add(ttl)}); err != nil {
			t.Fatal(err)
		}
	}
	if got, limit := s.PendingStates(), 2*live+1; got > limit {
		t.Errorf("after %d states, %d pending at most: the store holds %d, want at most %d", n, live, got, limit)
	}
	// The newest states are all still there.
	last := t0.Add(time.Duration(n-1) * every)
	if _, err := s.ConsumeState(ctx, fmt.Sprintf("k%05d", n-1), last); err != nil {
		t.Errorf("the newest state: %v", err)
	}
}
