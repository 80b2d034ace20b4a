package fsstore

import (
	"context"
	"fmt"

	"cloud.google.com/go/firestore"

	"example.com/gmailoauth/internal/store"
)

// QuotaUsageCollection holds one document per UTC day,
// quota_usage/{YYYY-MM-DD}: the project's Gmail quota units counted that
// day, {units, updated_at}.
const QuotaUsageCollection = "quota_usage"

func (s *Store) quotaRef(day string) *firestore.DocumentRef {
	return s.client.Collection(QuotaUsageCollection).Doc(day)
}

// AddQuotaUsage implements store.Store with a server-side increment, which
// needs no transaction, so instances adding at once never contend and
// never lose an addition; the total is read back after it. Each instance
// adds its tally every few seconds (gmail.Budget), not per call: one
// Firestore document sustains about one write a second.
func (s *Store) AddQuotaUsage(ctx context.Context, day string, units int64) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := store.CheckQuotaUsage(day, units); err != nil {
		return 0, err
	}
	ref := s.quotaRef(day)
	if _, err := ref.Set(ctx, map[string]any{
		"units":      firestore.Increment(units),
		"updated_at": firestore.ServerTimestamp,
	}, firestore.MergeAll); err != nil {
		return 0, mapErr(ctx, "add quota usage", err)
	}
	return s.QuotaUsage(ctx, day)
}

// QuotaUsage implements store.Store.
func (s *Store) QuotaUsage(ctx context.Context, day string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := store.CheckQuotaUsage(day, 0); err != nil {
		return 0, err
	}
	snap, err := s.quotaRef(day).Get(ctx)
	if isNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, mapErr(ctx, "get quota usage", err)
	}
	v, err := snap.DataAt("units")
	if err != nil {
		return 0, fmt.Errorf("fsstore: decode quota usage: %w", err)
	}
	n, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("fsstore: decode quota usage: units is %T", v)
	}
	return n, nil
}
