package gmail

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// memCounter is a UsageCounter shared by several Budgets, as Firestore is
// by several instances.
type memCounter struct {
	mu    sync.Mutex
	days  map[string]int64
	adds  int
	fails int // the next calls fail
}

func (m *memCounter) AddQuotaUsage(_ context.Context, day string, units int64) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fails > 0 {
		m.fails--
		return 0, context.DeadlineExceeded
	}
	if m.days == nil {
		m.days = map[string]int64{}
	}
	m.adds++
	m.days[day] += units
	return m.days[day], nil
}

func (m *memCounter) QuotaUsage(_ context.Context, day string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.days[day], nil
}

func (m *memCounter) get(day string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.days[day]
}

// TestBudgetCountsAcrossInstances: two instances' spending adds up in the
// shared counter; each flushes at most every FlushEvery (not per call);
// optional work is deferred once the day's total reaches 90 % of the
// threshold, on both instances, within FlushEvery.
func TestBudgetCountsAcrossInstances(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		day := Day(time.Now())
		c := &memCounter{}
		a := &Budget{PerDay: 1000, Counter: c}
		b := &Budget{PerDay: 1000, Counter: c}
		ctx := context.Background()
		if !a.AllowOptional(ctx) {
			t.Fatal("a fresh day defers optional work")
		}
		for range 100 {
			a.Spend(4)
			b.Spend(4)
		}
		synctest.Wait()
		if c.adds > 4 {
			t.Errorf("200 calls made %d counter writes, want a few (one per instance per %v)", c.adds, DefaultFlushEvery)
		}
		time.Sleep(DefaultFlushEvery)
		a.Spend(50)
		b.Spend(50)
		synctest.Wait()
		if got := c.get(day); got != 900 {
			t.Fatalf("counter = %d after both flushed, want 900", got)
		}
		time.Sleep(DefaultFlushEvery) // what an instance knows of the others is at most this late
		for name, bud := range map[string]*Budget{"a": a, "b": b} {
			u := bud.Usage(ctx)
			if u.Units != 900 || u.Threshold != 1000 || !u.Deferring || bud.AllowOptional(ctx) {
				t.Errorf("instance %s: %+v, want 900 of 1000 and optional work deferred", name, u)
			}
		}
	})
}

// TestBudgetKeepsWhatAFlushCouldNotWrite: a failed flush keeps the tally
// for the next one; nothing is lost.
func TestBudgetKeepsWhatAFlushCouldNotWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &memCounter{fails: 1}
		b := &Budget{Counter: c}
		ctx := context.Background()
		b.Spend(20)
		synctest.Wait() // the background flush failed
		if err := b.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if got := c.get(Day(time.Now())); got != 20 {
			t.Errorf("counter = %d, want 20", got)
		}
		if u := b.Usage(ctx); u.Units != 20 || u.Threshold != DefaultProjectUnitsPerDay || u.Deferring {
			t.Errorf("usage = %+v", u)
		}
	})
}

// TestBudgetDays: units are counted on the UTC day they were spent; a new
// day starts from what the counter holds for it.
func TestBudgetDays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := time.Date(2026, 11, 25, 23, 59, 58, 0, time.UTC)
		start := time.Now()
		clock := func() time.Time { return now.Add(time.Since(start)) }
		c := &memCounter{}
		b := &Budget{PerDay: 100, Counter: c, Now: clock}
		ctx := context.Background()
		b.Spend(95)
		synctest.Wait()
		if b.AllowOptional(ctx) {
			t.Fatal("95 of 100 allows optional work")
		}
		time.Sleep(3 * time.Second) // 00:00:01 the next day
		b.Spend(1)
		if err := b.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if c.get("2026-11-25") != 95 || c.get("2026-11-26") != 1 {
			t.Errorf("counter = %v, want 95 on the 25th and 1 on the 26th", c.days)
		}
		if u := b.Usage(ctx); u.Day != "2026-11-26" || u.Units != 1 || u.Deferring {
			t.Errorf("usage on the new day = %+v", u)
		}
	})
}

// TestNilBudget: no budget counts nothing and allows everything.
func TestNilBudget(t *testing.T) {
	var b *Budget
	b.Spend(10)
	if !b.AllowOptional(context.Background()) || b.Flush(context.Background()) != nil {
		t.Error("a nil budget refuses")
	}
}
