package memstore

import (
	"context"
	"sort"
	"time"

	"example.com/gmailoauth/internal/store"
)

// pushState is the part of the Store that push and the events to the app
// add: the email index, the outbox and the sync leases. Guarded by s.mu;
// the maps are made on first use.
type pushState struct {
	emails map[string]string // store.EmailKey(email) -> user id
	outbox map[string]*store.OutboxEvent
	seq    int64
	leases map[string]*lease
}

type lease struct {
	owner  string
	until  time.Time
	wanted uint64
}

func (s *Store) pushLocked() *pushState {
	p := &s.push
	if p.emails == nil {
		p.emails = map[string]string{}
		p.outbox = map[string]*store.OutboxEvent{}
		p.leases = map[string]*lease{}
	}
	return p
}

// appendLocked stores events in the outbox, in order, with s.mu held.
func (s *Store) appendLocked(events []*store.OutboxEvent, now time.Time) {
	p := s.pushLocked()
	for _, e := range events {
		c := e.Clone()
		p.seq++
		c.Seq, c.CreatedAt = p.seq, now
		p.outbox[c.ID] = c
	}
}

// ChangeCredential implements store.Store. The whole change runs under the
// store's lock, which is this implementation's transaction.
func (s *Store) ChangeCredential(ctx context.Context, userID string, fn store.ChangeFunc) (*store.Credential, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if userID == "" {
		return nil, store.ErrInvalidUserID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.creds[userID]
	ch, err := fn(cur.Clone())
	if err != nil {
		return nil, err
	}
	if ch == nil {
		return cur.Clone(), nil
	}
	p := s.pushLocked()
	unindex := func(c *store.Credential) {
		if c != nil && p.emails[store.EmailKey(c.Email)] == userID {
			delete(p.emails, store.EmailKey(c.Email))
		}
	}
	var out *store.Credential
	switch {
	case ch.Delete:
		unindex(cur)
		delete(s.creds, userID)
	case ch.Credential != nil:
		next := ch.Credential.Clone()
		next.UserID = userID
		moved := cur != nil && store.EmailKey(cur.Email) != store.EmailKey(next.Email)
		if moved {
			unindex(cur)
		}
		if next.Email != "" && (cur == nil || moved || ch.Reindex) {
			p.emails[store.EmailKey(next.Email)] = userID
		}
		s.creds[userID] = next
		out = next.Clone()
	default:
		if cur != nil && ch.Reindex && cur.Email != "" {
			p.emails[store.EmailKey(cur.Email)] = userID
		}
		out = cur.Clone()
	}
	s.appendLocked(ch.Events, time.Now())
	return out, nil
}

// UserIDByEmail implements store.Store.
func (s *Store) UserIDByEmail(ctx context.Context, email string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.pushLocked().emails[store.EmailKey(email)]
	if !ok {
		return "", store.ErrNotFound
	}
	return id, nil
}

// SaveSyncEvents implements store.Store: one atomic step here.
func (s *Store) SaveSyncEvents(ctx context.Context, userID string, mb *store.Mailbox, upserts []*store.MessageMeta, deletes []string, events []*store.OutboxEvent) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if userID == "" {
		return store.ErrInvalidUserID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.grantHeldLocked(userID, mb) {
		return store.ErrGrantGone
	}
	s.saveSyncLocked(userID, mb, upserts, deletes)
	s.appendLocked(events, time.Now())
	return nil
}

// ListOutbox implements store.Store.
func (s *Store) ListOutbox(ctx context.Context, userID string, limit int) ([]*store.OutboxEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*store.OutboxEvent
	for _, e := range s.pushLocked().outbox {
		if userID == "" || e.UserID == userID {
			out = append(out, e.Clone())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// DeleteOutbox implements store.Store.
func (s *Store) DeleteOutbox(ctx context.Context, ids []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pushLocked()
	for _, id := range ids {
		delete(p.outbox, id)
	}
	return nil
}

// ClaimSync implements store.Store.
func (s *Store) ClaimSync(ctx context.Context, userID, owner string, historyID uint64, now time.Time, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pushLocked()
	l := p.leases[userID]
	if l == nil {
		l = &lease{}
		p.leases[userID] = l
	}
	l.wanted = max(l.wanted, historyID)
	if l.owner != "" && l.owner != owner && now.Before(l.until) {
		return false, nil
	}
	l.owner, l.until = owner, now.Add(ttl)
	return true, nil
}

// FinishSync implements store.Store.
func (s *Store) FinishSync(ctx context.Context, userID, owner string, synced uint64, now time.Time, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.pushLocked().leases[userID]
	if l == nil || l.owner != owner {
		return false, nil
	}
	if l.wanted > synced {
		l.until = now.Add(ttl)
		return true, nil
	}
	l.owner, l.until, l.wanted = "", time.Time{}, 0
	return false, nil
}
