package gmail

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Budget defaults.
const (
	// DefaultDeferAt is the share of the daily threshold from which
	// optional work waits for the next day.
	DefaultDeferAt = 0.9
	// DefaultFlushEvery is how often an instance adds what it spent to the
	// day's shared counter: often enough that the total is late by seconds,
	// rarely enough that a handful of instances stay under the ~1 write a
	// second one Firestore document sustains.
	DefaultFlushEvery = 5 * time.Second
)

// UsageCounter keeps the project's Gmail quota usage per day across
// instances; store.Store implements it (a Firestore document per day,
// updated with atomic increments).
type UsageCounter interface {
	// AddQuotaUsage adds units to day's usage (day is a UTC date,
	// YYYY-MM-DD) and returns the day's total, this addition included.
	AddQuotaUsage(ctx context.Context, day string, units int64) (int64, error)
	// QuotaUsage returns day's total (0 when nothing was counted).
	QuotaUsage(ctx context.Context, day string) (int64, error)
}

// Usage is the project's Gmail quota usage of one day, as an instance
// knows it.
type Usage struct {
	// Day is the UTC date counted, YYYY-MM-DD.
	Day string
	// Units is the day's total across instances as last read, plus what
	// this instance spent since.
	Units int64
	// Threshold is the daily billing threshold (0: none is configured).
	Threshold int64
	// Deferring is true when Units has reached DeferAt of Threshold:
	// optional work waits for the next day.
	Deferring bool
}

// Budget is the project's daily Gmail budget. Gmail bills the units a
// project spends in a day beyond its daily billing threshold
// (DefaultProjectUnitsPerDay); the threshold limits nothing, so a Budget
// refuses nothing either: it counts, and tells optional work (the older
// mail of first syncs, watch renewals not yet due) whether it may go on
// today (AllowOptional).
//
// The Transport tells it every unit it spends (Spend). The instance's
// tally is added to the day's shared counter at most every FlushEvery,
// from the first call after that interval, and by Flush (the sweep calls
// it when it ends). The shared total is therefore late by at most
// FlushEvery of each instance's spending, and misses what an instance
// spent after its last flush if it is shut down before the next one.
//
// Set the fields, then use it; it is safe for concurrent use. A nil
// *Budget counts nothing and allows everything.
type Budget struct {
	// PerDay is the daily threshold in units; 0 means
	// DefaultProjectUnitsPerDay, negative means none.
	PerDay int64
	// DeferAt is the share of PerDay from which AllowOptional says no;
	// 0 means DefaultDeferAt.
	DeferAt float64
	// Counter keeps the totals across instances; nil counts in this
	// instance only.
	Counter UsageCounter
	// FlushEvery is the interval of the flushes; 0 means DefaultFlushEvery.
	FlushEvery time.Duration
	// Now is the clock that says which day it is; nil means time.Now.
	Now func() time.Time
	// Log receives a line when a flush fails and when the day's usage
	// reaches DeferAt; nil discards them.
	Log *slog.Logger

	mu        sync.Mutex
	pending   map[string]int64 // spent here, not yet added to the counter, by day
	day       string           // the day known is about
	known     int64            // day's shared total as last read
	read      bool             // known was read (or written) today
	lastFlush time.Time
	flushing  bool
	warned    string // the day the deferral was logged
}

// Day returns the UTC date of t as the counter keys it.
func Day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

func (b *Budget) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

func (b *Budget) threshold() int64 {
	switch {
	case b.PerDay == 0:
		return DefaultProjectUnitsPerDay
	case b.PerDay < 0:
		return 0
	}
	return b.PerDay
}

func (b *Budget) deferAt() float64 {
	if b.DeferAt > 0 {
		return b.DeferAt
	}
	return DefaultDeferAt
}

func (b *Budget) flushEvery() time.Duration {
	if b.FlushEvery > 0 {
		return b.FlushEvery
	}
	return DefaultFlushEvery
}

func (b *Budget) log() *slog.Logger {
	if b.Log != nil {
		return b.Log
	}
	return slog.New(slog.DiscardHandler)
}

// roll moves the known total to today's day. b.mu must be held.
func (b *Budget) roll(day string) {
	if b.day != day {
		b.day, b.known, b.read = day, 0, false
	}
}

// Spend counts units spent now. When the last flush is older than
// FlushEvery it starts one in the background.
func (b *Budget) Spend(units int) {
	if b == nil || units <= 0 {
		return
	}
	now := b.now()
	day := Day(now)
	b.mu.Lock()
	b.roll(day)
	if b.pending == nil {
		b.pending = map[string]int64{}
	}
	b.pending[day] += int64(units)
	due := b.Counter != nil && !b.flushing && now.Sub(b.lastFlush) >= b.flushEvery()
	if due {
		b.flushing = true
	}
	b.mu.Unlock()
	if due {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = b.flush(ctx, true)
		}()
	}
}

// Flush adds the instance's tally to the shared counter now and reads the
// day's total.
func (b *Budget) Flush(ctx context.Context) error {
	if b == nil || b.Counter == nil {
		return nil
	}
	b.mu.Lock()
	for b.flushing { // one flush at a time; wait for the one in flight
		b.mu.Unlock()
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
		b.mu.Lock()
	}
	b.flushing = true
	b.mu.Unlock()
	return b.flush(ctx, true)
}

// flush adds the pending units to the counter, then reads today's total
// when nothing was pending for today. The caller has set b.flushing.
func (b *Budget) flush(ctx context.Context, logErrors bool) error {
	now := b.now()
	today := Day(now)
	b.mu.Lock()
	pending := b.pending
	b.pending = nil
	b.lastFlush = now
	b.mu.Unlock()

	var firstErr error
	total, gotTotal := int64(0), false
	for day, n := range pending {
		t, err := b.Counter.AddQuotaUsage(ctx, day, n)
		if err != nil {
			firstErr = err
			b.mu.Lock()
			if b.pending == nil {
				b.pending = map[string]int64{}
			}
			b.pending[day] += n // keep it for the next flush
			b.mu.Unlock()
			continue
		}
		if day == today {
			total, gotTotal = t, true
		}
	}
	if !gotTotal && firstErr == nil {
		t, err := b.Counter.QuotaUsage(ctx, today)
		if err != nil {
			firstErr = err
		} else {
			total, gotTotal = t, true
		}
	}
	b.mu.Lock()
	b.flushing = false
	if gotTotal {
		b.roll(today)
		b.known, b.read = total, true
	}
	b.mu.Unlock()
	if firstErr != nil && logErrors {
		b.log().WarnContext(ctx, "counting the day's Gmail quota usage failed; the count is kept for the next try",
			slog.String("error", firstErr.Error()))
	}
	return firstErr
}

// Usage returns today's usage as the instance knows it, reading the
// shared total first (and adding the instance's tally to it) when the last
// read is older than FlushEvery.
func (b *Budget) Usage(ctx context.Context) Usage {
	if b == nil {
		return Usage{Day: Day(time.Now())}
	}
	now := b.now()
	today := Day(now)
	b.mu.Lock()
	b.roll(today)
	need := b.Counter != nil && !b.flushing && (!b.read || now.Sub(b.lastFlush) >= b.flushEvery())
	b.mu.Unlock()
	if need {
		_ = b.Flush(ctx)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll(today)
	u := Usage{Day: today, Units: b.known + b.pending[today], Threshold: b.threshold()}
	u.Deferring = u.Threshold > 0 && float64(u.Units) >= b.deferAt()*float64(u.Threshold)
	if u.Deferring && b.warned != today {
		b.warned = today
		b.log().WarnContext(ctx, "the day's Gmail quota usage is near the daily billing threshold; optional work (older mail of first syncs, watch renewals not yet due) waits for the next UTC day",
			slog.String("day", today), slog.Int64("units_today", u.Units), slog.Int64("daily_threshold", u.Threshold))
	}
	return u
}

// AllowOptional reports whether work that can wait for the next day may
// go on: false once the day's usage reaches DeferAt of the threshold. The
// sweep asks before the older mail of a first sync; a watch renewal that
// is not yet due should ask too.
func (b *Budget) AllowOptional(ctx context.Context) bool {
	return !b.Usage(ctx).Deferring
}
