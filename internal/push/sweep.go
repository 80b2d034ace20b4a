package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"example.com/gmailoauth/internal/store"
)

// Sweep settings.
const (
	sweepPageSize = 100
	// sweepReads bounds the mailbox reads of a sweep at once.
	sweepReads = 16
	// drainAfter: events older than this in the outbox are leftovers (a
	// handler that published them would have done so by now).
	drainAfter = time.Minute
	// drainScan bounds the outbox entries one sweep looks at.
	drainScan = 1000
)

// SweepSummary is the answer of a push-mode sweep: who was due and was
// handed to GmailPush.
type SweepSummary struct {
	Users      int   `json:"users"`      // active users looked at
	Dispatched int   `json:"dispatched"` // handed to GmailPush (the counts below)
	Renew      int   `json:"renew"`      // the watch was due, lapsed or missing
	Resync     int   `json:"resync"`     // no sync for PUSH_RESYNC_AFTER, a failed or unfinished sync
	Drain      int   `json:"drain"`      // events waited in the outbox
	Current    int   `json:"current"`    // nothing was due
	Failed     int   `json:"failed"`     // could not be read or handed over; the next sweep retries
	DurationMS int64 `json:"duration_ms"`
	// Complete is true when every user was looked at; false when the
	// deadline stopped the sweep, which then continues after Cursor.
	Complete bool   `json:"complete"`
	Cursor   string `json:"cursor,omitempty"`
}

// Due says what userID's mailbox needs from the push path, if anything
// (""): its watch renewed (Renew, which also syncs when Gmail is ahead of
// the mirror), or a sync (Resync) because its first sync is not done, its
// last sync failed a while ago, or it had no sync for ResyncAfter (a lost
// notification).
func (s *Service) Due(ctx context.Context, mb *store.Mailbox, now time.Time) Reason {
	switch {
	case s.WatchDue(ctx, mb, now):
		return ReasonRenew
	case !complete(mb):
		return ReasonResync
	case mb.LastError != "" && now.Sub(mb.LastErrorAt) >= failedRetryAfter:
		return ReasonResync
	case now.Sub(mb.LastSyncAt) >= or(s.ResyncAfter, DefaultResyncAfter):
		return ReasonResync
	}
	return ""
}

// Sweep decides who is due (Due) and hands each to GmailPush through the
// notification topic, then hands on the users whose events wait in the
// outbox. It does no Gmail call itself: the handlers do the work, spread
// over instances. It stops before ctx's deadline (and SyncDeadline when
// set), saving where it stopped, so the next run continues.
func (s *Service) Sweep(ctx context.Context, deadline time.Duration) (*SweepSummary, error) {
	start := s.now()
	stopping := stopAt(ctx, s.now, start, deadline)
	st, err := s.Store.GetSweepState(ctx)
	if err != nil {
		return nil, fmt.Errorf("read sweep cursor: %w", err)
	}
	if st.After == "" || st.RoundStart.IsZero() {
		st = store.SweepState{RoundStart: start}
	}
	sum := &SweepSummary{}
	seen := map[string]bool{}
	after := st.After
	exhausted := false
	for !stopping() {
		creds, err := s.Store.ListCredentials(ctx, store.StatusActive, after, sweepPageSize)
		if err != nil {
			if sum.Users == 0 {
				return sum, fmt.Errorf("list users: %w", err)
			}
			break
		}
		tasks := s.duePage(ctx, creds, sum)
		if err := s.dispatch(ctx, tasks...); err != nil {
			s.log().WarnContext(ctx, "push: handing users on failed", slog.Int("users", len(tasks)), slog.String("error", err.Error()))
			sum.Failed += len(tasks)
		} else {
			sum.Dispatched += len(tasks)
		}
		for _, t := range tasks {
			seen[t.UserID] = true
		}
		if len(creds) > 0 {
			after = creds[len(creds)-1].UserID
		}
		if len(creds) < sweepPageSize {
			exhausted = true
			break
		}
		s.saveCursor(ctx, store.SweepState{After: after, RoundStart: st.RoundStart})
	}
	if !stopping() {
		s.leftovers(ctx, seen, sum)
	}
	next := store.SweepState{After: after, RoundStart: st.RoundStart}
	if exhausted {
		next, sum.Complete = store.SweepState{}, true
	}
	sum.Cursor = next.After
	s.saveCursor(context.WithoutCancel(ctx), next)
	sum.DurationMS = s.now().Sub(start).Milliseconds()
	s.log().InfoContext(ctx, "push sweep done", slog.Int("users", sum.Users), slog.Int("dispatched", sum.Dispatched),
		slog.Int("renew", sum.Renew), slog.Int("resync", sum.Resync), slog.Int("drain", sum.Drain), slog.Int("failed", sum.Failed),
		slog.Bool("complete", sum.Complete))
	return sum, nil
}

// duePage reads the mailboxes of creds and returns the tasks of those due.
func (s *Service) duePage(ctx context.Context, creds []*store.Credential, sum *SweepSummary) []Task {
	reasons := make([]Reason, len(creds))
	failed := make([]bool, len(creds))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(sweepReads)
	now := s.now()
	for i, c := range creds {
		g.Go(func() error {
			// A mailbox that cannot be read is counted failed, and the
			// others go on: the group never stops early.
			if mb, err := s.mailbox(gctx, c.UserID); err == nil {
				reasons[i] = s.Due(gctx, mb, now)
			} else {
				failed[i] = true
			}
			return nil
		})
	}
	_ = g.Wait()
	var tasks []Task
	for i, c := range creds {
		sum.Users++
		switch {
		case failed[i]:
			sum.Failed++
			continue
		case reasons[i] == ReasonRenew:
			sum.Renew++
		case reasons[i] == ReasonResync:
			sum.Resync++
		default:
			sum.Current++
			continue
		}
		tasks = append(tasks, Task{UserID: c.UserID, Reason: reasons[i]})
	}
	return tasks
}

// leftovers hands on the users whose events have waited in the outbox
// for a while (their handler could not publish them), unless the sweep
// handed them on already.
func (s *Service) leftovers(ctx context.Context, seen map[string]bool, sum *SweepSummary) {
	if s.Events == nil {
		return
	}
	pending, err := s.Store.ListOutbox(ctx, "", drainScan)
	if err != nil {
		s.log().WarnContext(ctx, "push: reading the outbox failed", slog.String("error", err.Error()))
		return
	}
	cutoff := s.now().Add(-drainAfter)
	var tasks []Task
	for _, e := range pending {
		if e.CreatedAt.After(cutoff) || seen[e.UserID] {
			continue
		}
		seen[e.UserID] = true
		tasks = append(tasks, Task{UserID: e.UserID, Reason: ReasonDrain})
	}
	if len(tasks) == 0 {
		return
	}
	if err := s.dispatch(ctx, tasks...); err != nil {
		s.log().WarnContext(ctx, "push: handing users on failed", slog.Int("users", len(tasks)), slog.String("error", err.Error()))
		sum.Failed += len(tasks)
		return
	}
	sum.Drain += len(tasks)
	sum.Dispatched += len(tasks)
}

func (s *Service) saveCursor(ctx context.Context, st store.SweepState) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st.UpdatedAt = s.now()
	if err := s.Store.PutSweepState(ctx, st); err != nil {
		s.log().WarnContext(ctx, "push: saving the sweep cursor failed", slog.String("error", err.Error()))
	}
}

// stopAt is the sweep's soft deadline: deadline after start on the
// service's clock, and a tenth of ctx's remaining time (at least a second)
// before its deadline, which is on the wall clock.
func stopAt(ctx context.Context, now func() time.Time, start time.Time, deadline time.Duration) func() bool {
	var soft, hard time.Time
	if deadline > 0 {
		soft = start.Add(deadline)
	}
	if dl, ok := ctx.Deadline(); ok {
		hard = dl.Add(-max(time.Second, time.Until(dl)/10))
	}
	return func() bool {
		return ctx.Err() != nil || !soft.IsZero() && !now().Before(soft) || !hard.IsZero() && !time.Now().Before(hard)
	}
}

// DispatchOne hands one user to the push path for a sync (the scheduler's
// {"user_id"}).
func (s *Service) DispatchOne(ctx context.Context, userID string) (*SweepSummary, error) {
	c, err := s.Store.GetCredential(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnknownUser
	}
	if err != nil {
		return nil, err
	}
	sum := &SweepSummary{Users: 1, Complete: true}
	if c.Status != store.StatusActive {
		sum.Current = 1
		return sum, nil
	}
	if err := s.dispatch(ctx, Task{UserID: userID, Reason: ReasonResync}); err != nil {
		return nil, err
	}
	sum.Dispatched, sum.Resync = 1, 1
	return sum, nil
}

// ErrUnknownUser means no grant is stored for the user.
var ErrUnknownUser = errors.New("push: unknown user")
