package memstore

import (
	"context"
	"sort"
	"time"

	"example.com/gmailoauth/internal/store"
)

// minPruneAt is the state count below which PutState never prunes.
const minPruneAt = 1024

// grantHeldLocked reports whether a SaveSync for mb may write: always when
// mb names no grant, else only while userID's credential holds it. s.mu
// must be held.
func (s *Store) grantHeldLocked(userID string, mb *store.Mailbox) bool {
	if mb == nil || mb.Grant == "" {
		return true
	}
	c, ok := s.creds[userID]
	return ok && c.Grant == mb.Grant
}

// pruneStatesLocked drops the states expired at now once the map has
// doubled since the last prune, so memory follows the pending states, not
// every state ever made, at an amortised constant cost per PutState. (The
// Firestore store leaves this to its TTL policy.) s.mu must be held.
func (s *Store) pruneStatesLocked(now time.Time) {
	if len(s.states) < max(s.pruneAt, minPruneAt) {
		return
	}
	for k, st := range s.states {
		if !now.Before(st.ExpiresAt) {
			delete(s.states, k)
		}
	}
	s.pruneAt = 2 * len(s.states)
}

// PendingStates returns the number of states held, expired or not (for
// tests of the pruning).
func (s *Store) PendingStates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.states)
}

// ListMailboxIDs implements store.Store.
func (s *Store) ListMailboxIDs(ctx context.Context, after string, limit int) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.mailboxes))
	for id := range s.mailboxes {
		if id > after {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if limit > 0 && len(ids) > limit {
		ids = ids[:limit]
	}
	return ids, nil
}
