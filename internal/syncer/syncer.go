// Package syncer is the offline job: it copies the metadata of every
// connected user's recent mail into the store and keeps it current.
//
// A user's first sync reads the mailbox historyId (users.getProfile), lists
// the messages matching the query (SYNC_QUERY), spam and trash included,
// newest first, 100 ids a page
// (gmail.SyncPageSize), fetches each message's metadata (subject, from,
// date, snippet, labels: messages.get with format=metadata, 20 units, the
// cheapest call that yields them) concurrently within a bound, and saves
// every page together with the next page token, so the user's newest mail
// is in the store within seconds and a sync stopped by the deadline
// continues from that page. Pages after the first are backfill: their calls
// leave a frontend page's worth of the user's budget for a person
// (gmail.Backfill), and when the project's usage of the day nears the daily
// billing threshold (gmail.Budget) they wait for the next day, saved where
// they stopped. When the listing ends, the historyId read before it becomes
// the checkpoint, and the oldest internal date listed the mirror's horizon:
// the frontend's listings are answered from the store down to it (package
// mailbox). Later syncs call users.history.list from the checkpoint
// (100 records a page) and apply only the changes: added
// messages are fetched, deleted ones removed, label changes applied from the
// history records themselves (no Gmail call). A 404 (checkpoint too old)
// falls back to a full sync, which also drops stored messages Gmail no
// longer lists. A sync that finds no change makes one history call and
// writes nothing.
//
// A sweep syncs every active credential, paging users from the store (100 at
// a time, never all in memory), several users at once within a bound. One
// user's failure, revoked grant or panic is counted and the sweep goes on.
// The sweep stops starting work at its deadline; users in flight finish
// their current page and save it. The sweep cursor (the last user id before
// which every user is done) is kept in the store's sweep state, so the next
// run (on any instance) continues where this one stopped and a round ends
// when it reaches the last user.
package syncer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"example.com/gmailoauth/internal/apperr"
	"example.com/gmailoauth/internal/gmail"
	"example.com/gmailoauth/internal/store"
)

// Defaults of the Syncer's bounds.
const (
	DefaultUserConcurrency = 8
	DefaultUsersPageSize   = 100
)

// Syncer syncs mailboxes. Set the fields, then use it; safe for concurrent use.
type Syncer struct {
	Store store.Store
	// Budget is the project's daily Gmail budget: the older mail of first
	// syncs waits while it says optional work should (nil: never waits).
	Budget *gmail.Budget
	// Gmail makes the calls: tokens, quota, the rule for a refused token,
	// and the sync's patience.
	Gmail *gmail.Service
	Log   *slog.Logger
	Now   func() time.Time

	// Query selects the messages of a full sync (Gmail search syntax); ""
	// means every message.
	Query string
	// UserConcurrency bounds the users synced at once in a sweep.
	UserConcurrency int
	// MetadataConcurrency bounds the messages.get calls of one user at once
	// (0 = gmail.DefaultMetadataConcurrency).
	MetadataConcurrency int
	// Deadline is how long a sweep may start new work; 0 means no limit
	// other than the context's.
	Deadline time.Duration
	// UsersPageSize is the number of credentials read from the store at once.
	UsersPageSize int
	// Severity is how loud a user's failed sync is logged, by its error code.
	// The wiring sets the HTTP layer's rule (httpx.Severity), so one failure
	// is logged at one severity whether a request or a sweep met it; nil
	// logs every failure at WARNING.
	Severity func(apperr.Code) slog.Level
	// Events, when set, makes every save carry the events of its changes to
	// the app (message.added, message.deleted, message.labels_changed,
	// sync.failed) into the store's outbox, in the same write
	// (store.SaveSyncEvents); see package events.
	Events bool
	// Touch, when positive, makes a sync that finds no change still record
	// that the mirror is current (LastSyncAt) once the last record is older
	// than Touch, so a quiet mailbox does not look neglected (push: the
	// sweep syncs mailboxes with no sync for a while).
	Touch time.Duration
}

func (s *Syncer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Syncer) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// Summary is the answer of a sweep.
type Summary struct {
	Users           int   `json:"users"`   // users looked at
	Synced          int   `json:"synced"`  // synced to the end (changes or not)
	Revoked         int   `json:"revoked"` // grant revoked: marked, skipped
	Failed          int   `json:"failed"`  // Gmail or store error, or a panic
	Partial         int   `json:"partial"` // stopped part-way by the deadline; progress saved
	Skipped         int   `json:"skipped"` // already synced in this round
	MessagesAdded   int64 `json:"messages_added"`
	MessagesRemoved int64 `json:"messages_removed"`
	GmailCalls      int64 `json:"gmail_calls"`
	QuotaUnits      int64 `json:"quota_units"`
	RateLimited     int64 `json:"rate_limited"` // 429/403 rate-limit answers (retried)
	DurationMS      int64 `json:"duration_ms"`
	// Deferred counts users whose older mail (of a first sync) waits for
	// the next day: the project's Gmail usage of the day is near the daily
	// billing threshold. Their newest mail and their new mail are synced.
	Deferred int `json:"deferred"`
	// The project's Gmail quota usage of the UTC day QuotaDay, counted
	// across instances (this sweep's units included), the daily billing
	// threshold, and whether optional work is being deferred.
	QuotaDay            string `json:"quota_day"`
	QuotaUnitsToday     int64  `json:"quota_units_today"`
	QuotaDailyThreshold int64  `json:"quota_daily_threshold"`
	DeferringOptional   bool   `json:"deferring_optional"`
	// Complete is true when every user was handled (the round ended); false
	// when the deadline stopped the sweep. Cursor is where the next run
	// starts ("" = from the first user).
	Complete bool   `json:"complete"`
	Cursor   string `json:"cursor,omitempty"`
}

type tally struct {
	mu sync.Mutex
	s  Summary
}

func (t *tally) add(res *Result, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.s.Users++
	if res != nil {
		t.s.MessagesAdded += int64(res.Added)
		t.s.MessagesRemoved += int64(res.Removed)
	}
	switch {
	case err == nil:
		t.s.Synced++
	case errors.Is(err, errDeferred):
		t.s.Deferred++
	case errors.Is(err, errStopped):
		t.s.Partial++
	case IsRevoked(err):
		t.s.Revoked++
	default:
		t.s.Failed++
	}
}

// SyncOne syncs one user and summarises it like a sweep of one.
func (s *Syncer) SyncOne(ctx context.Context, userID string) (*Summary, error) {
	start := s.now()
	if _, err := s.Store.GetCredential(ctx, userID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrUnknownUser
		}
		return nil, err
	}
	cnt := &gmail.Counter{}
	ctx = gmail.WithCounter(ctx, cnt)
	var t tally
	res, err := s.safeSync(ctx, userID, func() bool { return false }, nil)
	t.add(res, err)
	sum := t.s
	sum.Complete = err == nil
	s.finish(ctx, &sum, cnt, start)
	return &sum, nil
}

// finish fills the summary's counts and the day's quota usage (after
// adding this instance's tally to the shared count).
func (s *Syncer) finish(ctx context.Context, sum *Summary, cnt *gmail.Counter, start time.Time) {
	sum.GmailCalls = cnt.Calls.Load()
	sum.QuotaUnits = cnt.Units.Load()
	sum.RateLimited = cnt.RateLimited.Load()
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = s.Budget.Flush(fctx) // best effort: a failure is logged and the tally kept
	u := s.Budget.Usage(fctx)
	sum.QuotaDay, sum.QuotaUnitsToday, sum.QuotaDailyThreshold, sum.DeferringOptional = u.Day, u.Units, u.Threshold, u.Deferring
	sum.DurationMS = s.now().Sub(start).Milliseconds()
}

// safeSync runs syncUser, turning a panic into an error (logged with its
// stack), so one user's bug never stops a sweep.
func (s *Syncer) safeSync(ctx context.Context, userID string, stopping func() bool, mb *store.Mailbox) (res *Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log().ErrorContext(ctx, "sync panicked", slog.String("user_id", userID),
				slog.String("panic", fmt.Sprint(p)), slog.String("stack", string(debug.Stack())))
			res, err = &Result{Kind: KindNone}, &panicError{p: p}
		}
	}()
	return s.syncUser(ctx, userID, stopping, mb)
}

// panicError is a user's sync that panicked (see safeSync).
type panicError struct{ p any }

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.p) }

func isPanic(err error) bool {
	var pe *panicError
	return errors.As(err, &pe)
}

// Sweep syncs every active user, from the stored cursor on, until the last
// user or the deadline.
func (s *Syncer) Sweep(ctx context.Context) (*Summary, error) {
	start := s.now()
	stopping := s.stopAt(ctx, start)
	st, err := s.Store.GetSweepState(ctx)
	if err != nil {
		return nil, fmt.Errorf("read sweep cursor: %w", err)
	}
	if st.After == "" || st.RoundStart.IsZero() {
		st = store.SweepState{RoundStart: s.now(), OrphansCheckedAt: st.OrphansCheckedAt}
	}
	cnt := &gmail.Counter{}
	ctx = gmail.WithCounter(ctx, cnt)

	var t tally
	tr := newTracker(st.After)
	jobs := make(chan string)
	var wg sync.WaitGroup
	for range cmp.Or(s.UserConcurrency, DefaultUserConcurrency) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range jobs {
				tr.finish(id, s.sweepOne(ctx, id, st.RoundStart, stopping, &t))
			}
		}()
	}
	exhausted, listErr := s.dispatch(ctx, st, tr, jobs, stopping)
	close(jobs)
	wg.Wait()

	sum := t.s
	next := store.SweepState{After: tr.prefix(), RoundStart: st.RoundStart, OrphansCheckedAt: st.OrphansCheckedAt}
	if exhausted && tr.allDone() {
		// The round is over; the next run starts a new one.
		next = store.SweepState{OrphansCheckedAt: s.checkOrphans(ctx, st.OrphansCheckedAt, stopping)}
		sum.Complete = true
	}
	sum.Cursor = next.After
	s.saveCursor(context.WithoutCancel(ctx), next)
	s.finish(ctx, &sum, cnt, start)
	s.log().InfoContext(ctx, "sweep done", slog.Int("users", sum.Users), slog.Int("synced", sum.Synced),
		slog.Int("revoked", sum.Revoked), slog.Int("failed", sum.Failed), slog.Int("partial", sum.Partial),
		slog.Int("deferred", sum.Deferred), slog.Int64("gmail_calls", sum.GmailCalls),
		slog.Int64("quota_units", sum.QuotaUnits), slog.String("quota_day", sum.QuotaDay),
		slog.Int64("quota_units_today", sum.QuotaUnitsToday), slog.Int64("quota_daily_threshold", sum.QuotaDailyThreshold),
		slog.Bool("deferring_optional", sum.DeferringOptional), slog.Bool("complete", sum.Complete))
	if listErr != nil && sum.Users == 0 {
		return &sum, fmt.Errorf("list users: %w", listErr)
	}
	return &sum, nil
}

// stopAt returns the sweep's soft deadline test: Deadline after start on
// the syncer's clock, and a tenth of the context's remaining time (at least
// a second) before its deadline, which is on the wall clock like every
// context deadline, so users in flight can finish their page.
func (s *Syncer) stopAt(ctx context.Context, start time.Time) func() bool {
	var soft, hard time.Time
	if s.Deadline > 0 {
		soft = start.Add(s.Deadline)
	}
	if dl, ok := ctx.Deadline(); ok {
		hard = dl.Add(-max(time.Second, time.Until(dl)/10))
	}
	return func() bool {
		return ctx.Err() != nil ||
			!soft.IsZero() && !s.now().Before(soft) ||
			!hard.IsZero() && !time.Now().Before(hard)
	}
}

// dispatch pages through the active credentials in id order after the
// cursor and hands each user to the workers, saving the cursor now and then
// so even a killed run loses little. It reports whether it reached the last
// user.
func (s *Syncer) dispatch(ctx context.Context, st store.SweepState, tr *tracker, jobs chan<- string, stopping func() bool) (exhausted bool, err error) {
	pageSize := cmp.Or(s.UsersPageSize, DefaultUsersPageSize)
	after, lastSaved := st.After, st.After
	for !stopping() {
		creds, err := s.Store.ListCredentials(ctx, store.StatusActive, after, pageSize)
		if err != nil {
			return false, err
		}
		for _, c := range creds {
			if stopping() {
				return false, nil
			}
			tr.start(c.UserID)
			select {
			case jobs <- c.UserID:
			case <-ctx.Done():
				tr.finish(c.UserID, false)
				return false, nil
			}
			after = c.UserID
		}
		if len(creds) < pageSize {
			return true, nil
		}
		if p := tr.prefix(); p != lastSaved {
			if s.saveCursor(ctx, store.SweepState{After: p, RoundStart: st.RoundStart, OrphansCheckedAt: st.OrphansCheckedAt}) {
				lastSaved = p
			}
		}
	}
	return false, nil
}

// saveCursor writes the sweep's resume point (best effort: a lost save
// only repeats some users next time).
func (s *Syncer) saveCursor(ctx context.Context, st store.SweepState) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st.UpdatedAt = s.now()
	if err := s.Store.PutSweepState(ctx, st); err != nil {
		s.log().WarnContext(ctx, "saving the sweep cursor failed", slog.String("error", err.Error()))
		return false
	}
	return true
}

// sweepOne syncs one user of a sweep and reports whether the user is done
// for this round (a user stopped part-way is not: the next run resumes it).
func (s *Syncer) sweepOne(ctx context.Context, userID string, roundStart time.Time, stopping func() bool, t *tally) bool {
	mb, err := s.Store.GetMailbox(ctx, userID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		mb = nil
	case err != nil:
		t.add(&Result{Kind: KindNone}, err)
		return ctx.Err() == nil
	case mb.PendingHistoryID == 0 && mb.HistoryID != 0 && mb.LastSyncAt.After(roundStart):
		// Already synced in this round (an earlier run, or a single-user sync).
		t.mu.Lock()
		t.s.Skipped++
		t.mu.Unlock()
		return true
	}
	res, err := s.safeSync(ctx, userID, stopping, mb)
	t.add(res, err)
	switch {
	case err == nil, IsRevoked(err), errors.Is(err, errDeferred):
	case errors.Is(err, errStopped):
		return false
	case isPanic(err):
		// safeSync logged it, with the stack.
	default:
		if ctx.Err() != nil {
			return false // cancelled, not failed: try again next run
		}
		level := slog.LevelWarn
		if s.Severity != nil {
			level = s.Severity(apperr.CodeOf(err))
		}
		s.log().Log(ctx, level, "user sync failed", slog.String("user_id", userID), slog.String("error", err.Error()))
	}
	return true
}

// tracker computes the sweep cursor: the largest dispatched id such that it
// and every id before it are done. It holds only ids in flight.
type tracker struct {
	mu      sync.Mutex
	prefixv string
	queue   []string // dispatched, in order, not yet popped
	state   map[string]int8
}

const (
	inFlight int8 = iota
	doneOK
	notDone
)

func newTracker(after string) *tracker { return &tracker{prefixv: after, state: map[string]int8{}} }

func (t *tracker) start(id string) {
	t.mu.Lock()
	t.queue = append(t.queue, id)
	t.state[id] = inFlight
	t.mu.Unlock()
}

func (t *tracker) finish(id string, done bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if done {
		t.state[id] = doneOK
	} else {
		t.state[id] = notDone
	}
	for len(t.queue) > 0 && t.state[t.queue[0]] == doneOK {
		t.prefixv = t.queue[0]
		delete(t.state, t.queue[0])
		t.queue = t.queue[1:]
	}
}

func (t *tracker) prefix() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.prefixv
}

func (t *tracker) allDone() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.queue) == 0
}
