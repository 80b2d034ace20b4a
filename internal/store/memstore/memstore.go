// Package memstore is the in-memory store.Store: the embedded default for
// local runs and tests. It holds copies, never shared pointers, so callers
// cannot change stored state by accident, and it passes the same contract
// suite (storetest) as the Firestore store.
package memstore

import (
	"context"
	"sort"
	"sync"
	"time"

	"example.com/gmailoauth/internal/store"
)

// Store is an in-memory store.Store. The zero value is not usable; call New.
type Store struct {
	mu        sync.Mutex
	creds     map[string]*store.Credential
	states    map[string]*store.AuthState
	mailboxes map[string]*store.Mailbox
	messages  map[string]map[string]*store.MessageMeta
	sweep     store.SweepState
	quota     quotaUsage
	// pruneAt is the number of states at which PutState next drops the
	// expired ones (see pruneStatesLocked).
	pruneAt int
	push    pushState // push.go
}

var _ store.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{
		creds:     map[string]*store.Credential{},
		states:    map[string]*store.AuthState{},
		mailboxes: map[string]*store.Mailbox{},
		messages:  map[string]map[string]*store.MessageMeta{},
	}
}

// GetCredential implements store.Store.
func (s *Store) GetCredential(ctx context.Context, userID string) (*store.Credential, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.creds[userID]
	if !ok {
		return nil, store.ErrNotFound
	}
	return c.Clone(), nil
}

// UpdateCredential implements store.Store: ChangeCredential without events.
func (s *Store) UpdateCredential(ctx context.Context, userID string, fn store.UpdateFunc) (*store.Credential, error) {
	return s.ChangeCredential(ctx, userID, func(cur *store.Credential) (*store.CredentialChange, error) {
		next, err := fn(cur)
		if err != nil || next == nil {
			return nil, err
		}
		return &store.CredentialChange{Credential: next}, nil
	})
}

// DeleteCredential implements store.Store: ChangeCredential deleting.
func (s *Store) DeleteCredential(ctx context.Context, userID string) error {
	_, err := s.ChangeCredential(ctx, userID, func(*store.Credential) (*store.CredentialChange, error) {
		return &store.CredentialChange{Delete: true}, nil
	})
	return err
}

// ListCredentials implements store.Store.
func (s *Store) ListCredentials(ctx context.Context, status, after string, limit int) ([]*store.Credential, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.creds))
	for id, c := range s.creds {
		if id > after && (status == "" || c.Status == status) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if limit > 0 && len(ids) > limit {
		ids = ids[:limit]
	}
	out := make([]*store.Credential, len(ids))
	for i, id := range ids {
		out[i] = s.creds[id].Clone()
	}
	return out, nil
}

// PutState implements store.Store.
func (s *Store) PutState(ctx context.Context, key string, st *store.AuthState) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := *st
	c.Scopes = append([]string(nil), st.Scopes...)
	s.states[key] = &c
	s.pruneStatesLocked(st.CreatedAt)
	return nil
}

// ConsumeState implements store.Store.
func (s *Store) ConsumeState(ctx context.Context, key string, now time.Time) (*store.AuthState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.states[key]
	if !ok {
		return nil, store.ErrNotFound
	}
	delete(s.states, key)
	if !now.Before(st.ExpiresAt) {
		return nil, store.ErrStateExpired
	}
	return st, nil
}

// GetMailbox implements store.Store.
func (s *Store) GetMailbox(ctx context.Context, userID string) (*store.Mailbox, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mb, ok := s.mailboxes[userID]
	if !ok {
		return nil, store.ErrNotFound
	}
	c := *mb
	return &c, nil
}

// SaveSync implements store.Store.
func (s *Store) SaveSync(ctx context.Context, userID string, mb *store.Mailbox, upserts []*store.MessageMeta, deletes []string) error {
	return s.SaveSyncEvents(ctx, userID, mb, upserts, deletes, nil)
}

// saveSyncLocked is SaveSync with s.mu held.
func (s *Store) saveSyncLocked(userID string, mb *store.Mailbox, upserts []*store.MessageMeta, deletes []string) {
	msgs := s.messages[userID]
	if msgs == nil {
		msgs = map[string]*store.MessageMeta{}
		s.messages[userID] = msgs
	}
	for _, m := range upserts {
		c := *m
		c.LabelIDs = append([]string(nil), m.LabelIDs...)
		msgs[m.ID] = &c
	}
	for _, id := range deletes {
		delete(msgs, id)
	}
	if mb != nil {
		c := *mb
		c.UserID = userID
		s.mailboxes[userID] = &c
	}
}

// ListMailboxMessages implements store.Store.
func (s *Store) ListMailboxMessages(ctx context.Context, userID, after string, limit int) ([]*store.MessageMeta, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.messages[userID]))
	for id := range s.messages[userID] {
		if id > after {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if limit > 0 && len(ids) > limit {
		ids = ids[:limit]
	}
	out := make([]*store.MessageMeta, len(ids))
	for i, id := range ids {
		c := *s.messages[userID][id]
		c.ID = id
		c.LabelIDs = append([]string(nil), c.LabelIDs...)
		out[i] = &c
	}
	return out, nil
}

// GetMailboxMessages implements store.Store.
func (s *Store) GetMailboxMessages(ctx context.Context, userID string, ids []string) ([]*store.MessageMeta, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	msgs := s.messages[userID]
	out := make([]*store.MessageMeta, 0, min(len(ids), len(msgs)))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		m, ok := msgs[id]
		if !ok || seen[id] {
			continue
		}
		seen[id] = true
		c := *m
		c.ID = id
		c.LabelIDs = append([]string(nil), m.LabelIDs...)
		out = append(out, &c)
	}
	return out, nil
}

// DeleteMailbox implements store.Store.
func (s *Store) DeleteMailbox(ctx context.Context, userID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.mailboxes, userID)
	delete(s.messages, userID)
	return nil
}

// GetSweepState implements store.Store.
func (s *Store) GetSweepState(ctx context.Context) (store.SweepState, error) {
	if err := ctx.Err(); err != nil {
		return store.SweepState{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sweep, nil
}

// PutSweepState implements store.Store.
func (s *Store) PutSweepState(ctx context.Context, st store.SweepState) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep = st
	return nil
}

// Close implements store.Store; it does nothing.
func (s *Store) Close() error { return nil }
