package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"example.com/gmailoauth/internal/store"
)

// quotaTests are the contract of the daily Gmail quota usage.
var quotaTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"QuotaUsage/Missing", testQuotaUsageMissing},
	{"QuotaUsage/Adds", testQuotaUsageAdds},
	{"QuotaUsage/Concurrent", testQuotaUsageConcurrent},
	{"QuotaUsage/InvalidDay", testQuotaUsageInvalid},
	{"QuotaUsage/Separate", testQuotaUsageSeparate},
	{"QuotaUsage/CancelledContext", testQuotaUsageCancelled},
}

func testQuotaUsageCancelled(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.AddQuotaUsage(ctx, "2026-11-25", 3); !errors.Is(err, context.Canceled) {
		t.Errorf("AddQuotaUsage with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := s.QuotaUsage(ctx, "2026-11-25"); !errors.Is(err, context.Canceled) {
		t.Errorf("QuotaUsage with a cancelled context = %v, want context.Canceled", err)
	}
	if got, err := s.QuotaUsage(t.Context(), "2026-11-25"); err != nil || got != 0 {
		t.Errorf("after a cancelled AddQuotaUsage the day holds %d, %v; want 0", got, err)
	}
}

func testQuotaUsageMissing(t *testing.T, s store.Store) {
	n, err := s.QuotaUsage(t.Context(), "2026-11-25")
	if err != nil || n != 0 {
		t.Errorf("QuotaUsage of a day without usage = %d, %v; want 0, nil", n, err)
	}
}

// testQuotaUsageAdds: each addition returns the day's running total, and
// days are counted apart.
func testQuotaUsageAdds(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i, c := range []struct {
		day        string
		add, total int64
	}{
		{"2026-11-25", 2005, 2005},
		{"2026-11-25", 0, 2005},
		{"2026-11-25", 79_999_999_999, 80_000_002_004},
		{"2026-11-26", 1, 1},
	} {
		got, err := s.AddQuotaUsage(ctx, c.day, c.add)
		if err != nil || got != c.total {
			t.Fatalf("AddQuotaUsage #%d (%s, %d) = %d, %v; want %d", i, c.day, c.add, got, err, c.total)
		}
	}
	for day, want := range map[string]int64{"2026-11-25": 80_000_002_004, "2026-11-26": 1, "2026-11-24": 0} {
		if got, err := s.QuotaUsage(ctx, day); err != nil || got != want {
			t.Errorf("QuotaUsage(%s) = %d, %v; want %d", day, got, err, want)
		}
	}
}

// testQuotaUsageConcurrent: additions from many instances at once are
// never lost, and each sees a total that includes its own addition.
func testQuotaUsageConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			total, err := s.AddQuotaUsage(ctx, "2026-11-25", int64(i+1))
			if err == nil && total < int64(i+1) {
				err = fmt.Errorf("total %d is below the addition %d", total, i+1)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("AddQuotaUsage #%d: %v", i, err)
		}
	}
	if got, err := s.QuotaUsage(ctx, "2026-11-25"); err != nil || got != n*(n+1)/2 {
		t.Errorf("QuotaUsage after %d concurrent additions = %d, %v; want %d", n, got, err, n*(n+1)/2)
	}
}

func testQuotaUsageInvalid(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, day := range []string{"", "2026-13-01", "2026-1-5", "26-11-25", "2026/11/25", "../x", "2026-11-25T00:00:00Z"} {
		if _, err := s.AddQuotaUsage(ctx, day, 1); !errors.Is(err, store.ErrInvalidDay) {
			t.Errorf("AddQuotaUsage(%q) = %v, want store.ErrInvalidDay", day, err)
		}
		if _, err := s.QuotaUsage(ctx, day); !errors.Is(err, store.ErrInvalidDay) {
			t.Errorf("QuotaUsage(%q) = %v, want store.ErrInvalidDay", day, err)
		}
	}
	if _, err := s.AddQuotaUsage(ctx, "2026-11-25", -5); !errors.Is(err, store.ErrInvalidDay) {
		t.Errorf("AddQuotaUsage(-5) = %v, want store.ErrInvalidDay", err)
	}
	if got, _ := s.QuotaUsage(ctx, "2026-11-25"); got != 0 {
		t.Errorf("a refused addition was counted: %d", got)
	}
}

// testQuotaUsageSeparate: the usage documents are not credentials,
// mailboxes or the sweep state.
func testQuotaUsageSeparate(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, err := s.AddQuotaUsage(ctx, "2026-11-25", 7); err != nil {
		t.Fatal(err)
	}
	creds, err := s.ListCredentials(ctx, "", "", 0)
	if err != nil || len(creds) != 0 {
		t.Errorf("ListCredentials after AddQuotaUsage = %d, %v; want none", len(creds), err)
	}
	if _, err := s.GetMailbox(ctx, "2026-11-25"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetMailbox(day) = %v, want store.ErrNotFound", err)
	}
	if st, err := s.GetSweepState(ctx); err != nil || st != (store.SweepState{}) {
		t.Errorf("GetSweepState after AddQuotaUsage = %+v, %v; want the zero state", st, err)
	}
}
