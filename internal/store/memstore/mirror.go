package memstore

import (
	"cmp"
	"context"
	"slices"

	"example.com/gmailoauth/internal/store"
)

// matchMirror returns userID's messages matching q (q.Limit aside), in
// listing order. s.mu must be held.
func (s *Store) matchMirror(userID string, q store.MirrorQuery) []*store.MessageMeta {
	var out []*store.MessageMeta
	for _, m := range s.messages[userID] {
		switch {
		case m.InternalDate < q.Since,
			q.Label != "" && !slices.Contains(m.LabelIDs, q.Label),
			q.ExcludeSpamTrash && store.InSpamOrTrash(m.LabelIDs),
			q.After != nil && q.After.Passed(m):
			continue
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *store.MessageMeta) int {
		if c := cmp.Compare(b.InternalDate, a.InternalDate); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	return out
}

// ListMirror implements store.Store.
func (s *Store) ListMirror(ctx context.Context, userID string, q store.MirrorQuery) ([]*store.MessageMeta, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	msgs := s.matchMirror(userID, q)
	if q.Limit > 0 && len(msgs) > q.Limit {
		msgs = msgs[:q.Limit]
	}
	out := make([]*store.MessageMeta, len(msgs))
	for i, m := range msgs {
		c := *m
		c.LabelIDs = slices.Clone(m.LabelIDs)
		out[i] = &c
	}
	return out, nil
}

// CountMirror implements store.Store.
func (s *Store) CountMirror(ctx context.Context, userID string, q store.MirrorQuery) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.matchMirror(userID, q))
	if q.Limit > 0 {
		n = min(n, q.Limit)
	}
	return n, nil
}
