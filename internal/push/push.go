// Package push is the push path: Gmail tells the functions about changes
// to a watched mailbox (users.watch, a notification on a Pub/Sub topic),
// GmailPush brings the user's mirror up to date with the sweep's own
// incremental sync and publishes the events of the changes to the app.
//
// Everything that works on one user goes through the same topic and the same
// handler (Handle), whoever asks: Gmail's notifications, the callback's
// first sync (ReasonConnect), the sweep's renewals and catch-ups
// (ReasonRenew, ReasonResync) and leftover events (ReasonDrain). So Eventarc
// spreads the work over as many GmailPush instances as the load needs,
// while the quota transport keeps each instance within Gmail's limits.
//
// One sync at a time per user, across instances: a handler first takes the
// user's sync lease in the store. A notification that finds the lease taken
// records its history id in the lease and is acknowledged; the holder syncs
// once more before it lets go when a later history id was wanted. So a burst
// of notifications costs one history.list per round, not one each.
//
// A message is acknowledged (Handle returns nil) when it is done with or can
// never succeed: unknown or disconnected users, malformed data, messages
// older than MaxAge, failures a retry cannot fix (the sweep tries again
// later). It is retried (an error) when a retry can succeed: the store or
// Gmail did not answer, quota, events not yet published. Nothing orders the
// notification topic, so a message that keeps failing blocks no other.
package push

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"sync/atomic"
	"time"

	"example.com/gmailoauth/internal/apperr"
	"example.com/gmailoauth/internal/events"
	"example.com/gmailoauth/internal/gmail"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/syncer"
)

// Defaults of a Service's timings.
const (
	// DefaultLeaseTTL bounds one handler's hold on a user's sync lease; the
	// handler stops its own work a little earlier (leaseMargin).
	DefaultLeaseTTL = 5 * time.Minute
	// DefaultMaxAge: a message older than this is acknowledged unprocessed
	// (the sweep catches the mailbox up), so a message that cannot succeed
	// is not retried for the seven days Pub/Sub would keep it.
	DefaultMaxAge = 6 * time.Hour
	// DefaultWatchRenewal and DefaultResyncAfter are PUSH_WATCH_RENEWAL's
	// and PUSH_RESYNC_AFTER's defaults.
	DefaultWatchRenewal = 24 * time.Hour
	DefaultResyncAfter  = 6 * time.Hour

	leaseMargin = 15 * time.Second
	// maxRounds bounds the sync rounds of one handler; past them it hands
	// the user on (ReasonResync) instead of holding the lease.
	maxRounds = 3
	// failedRetryAfter: the sweep retries a mailbox whose last sync failed
	// once this long passed.
	failedRetryAfter = 5 * time.Minute
	// urgentWatch: a watch expiring this soon is renewed whatever the
	// renewal interval and the day's budget say.
	urgentWatch = 48 * time.Hour
)

// ErrBusy means another handler holds the user's sync lease: a task is
// retried later (a notification is not: the holder syncs again).
var ErrBusy = errors.New("push: another instance is syncing this user")

// Dispatcher publishes messages to the notification topic (the Pub/Sub
// adapter; an in-process stand-in for local runs). It returns how many of
// msgs were accepted.
type Dispatcher interface {
	Dispatch(ctx context.Context, msgs []Message) (int, error)
}

// Service is the push path of one instance. Set the fields, then use it;
// it is safe for concurrent use.
type Service struct {
	Store  store.Store
	Syncer *syncer.Syncer
	// Gmail makes the watch calls (a patient service: the sweep's).
	Gmail *gmail.Service
	// Budget is the project's daily Gmail budget: renewals not yet needed
	// wait while it says optional work should (nil allows everything).
	Budget *gmail.Budget
	// Events publishes the outbox; nil = no events.
	Events events.Publisher
	// Dispatch hands users to the push path (the notification topic).
	Dispatch Dispatcher
	// Topic is the notification topic users.watch names (PUSH_TOPIC).
	Topic string
	// WatchRenewal, ResyncAfter, LeaseTTL and MaxAge: 0 = the defaults.
	WatchRenewal time.Duration
	ResyncAfter  time.Duration
	LeaseTTL     time.Duration
	MaxAge       time.Duration
	// Owner names this instance in sync leases.
	Owner string
	Now   func() time.Time
	Log   *slog.Logger

	stats counters
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

func or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// counters are what the instance's push path did since it started.
type counters struct {
	messages, notifications, tasks, skipped, busy, rounds, syncs, watches, published, unknown, dropped, retried atomic.Int64
}

// Stats is a snapshot of the counters.
type Stats struct {
	Messages      int64 `json:"messages"`      // handled
	Notifications int64 `json:"notifications"` // Gmail's
	Tasks         int64 `json:"tasks"`         // the callback's and the sweep's
	Skipped       int64 `json:"skipped"`       // notifications the mirror already covered
	Busy          int64 `json:"busy"`          // found the user's lease taken
	Rounds        int64 `json:"rounds"`        // sync rounds under a lease
	Syncs         int64 `json:"syncs"`         // incremental or first syncs run
	Watches       int64 `json:"watches"`       // users.watch calls that succeeded
	Published     int64 `json:"published"`     // events published
	Unknown       int64 `json:"unknown"`       // for addresses or users with no active grant
	Dropped       int64 `json:"dropped"`       // malformed or too old: acknowledged unprocessed
	Retried       int64 `json:"retried"`       // answered with an error, for a retry
}

// Stats returns what the instance's push path did so far.
func (s *Service) Stats() Stats {
	c := &s.stats
	return Stats{c.messages.Load(), c.notifications.Load(), c.tasks.Load(), c.skipped.Load(), c.busy.Load(), c.rounds.Load(),
		c.syncs.Load(), c.watches.Load(), c.published.Load(), c.unknown.Load(), c.dropped.Load(), c.retried.Load()}
}

// Handle handles one message of the notification topic: a Gmail
// notification or a Task. nil means done with (acknowledge); an error
// means retry later.
func (s *Service) Handle(ctx context.Context, m Message) (err error) {
	s.stats.messages.Add(1)
	defer func() {
		if p := recover(); p != nil {
			s.log().ErrorContext(ctx, "push: handler panicked", slog.String("message_id", m.ID),
				slog.String("panic", fmt.Sprint(p)), slog.String("stack", string(debug.Stack())))
			err = fmt.Errorf("push: panic: %v", p)
		}
		if err != nil {
			s.stats.retried.Add(1)
		}
	}()
	if age := s.now().Sub(m.PublishTime); !m.PublishTime.IsZero() && age > or(s.MaxAge, DefaultMaxAge) {
		s.stats.dropped.Add(1)
		s.log().WarnContext(ctx, "push: message too old; dropped (the sweep catches the mailbox up)",
			slog.String("message_id", m.ID), slog.Duration("age", age))
		return nil
	}
	n, t, derr := decode(m)
	if derr != nil {
		s.stats.dropped.Add(1)
		s.log().WarnContext(ctx, "push: malformed message; dropped", slog.String("message_id", m.ID),
			slog.Int("bytes", len(m.Data)), slog.String("error", derr.Error()))
		return nil
	}
	// The work goes on if the deliverer hangs up (a push request's client
	// gone): it is bounded by the lease, and finishing it saves a redelivery
	// from paying the same Gmail calls again.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), or(s.LeaseTTL, DefaultLeaseTTL)-leaseMargin)
	defer cancel()
	if n != nil {
		s.stats.notifications.Add(1)
		return s.notification(ctx, n)
	}
	s.stats.tasks.Add(1)
	return s.task(ctx, *t)
}

// notification brings the mirror of the notified mailbox to its history id.
func (s *Service) notification(ctx context.Context, n *Notification) error {
	uid, err := s.Store.UserIDByEmail(ctx, n.EmailAddress)
	if errors.Is(err, store.ErrNotFound) {
		s.stats.unknown.Add(1)
		s.log().InfoContext(ctx, "push: notification for an address with no grant; acknowledged")
		return nil
	}
	if err != nil {
		return err
	}
	active, err := s.active(ctx, uid)
	if err != nil || !active {
		return err
	}
	mb, err := s.mailbox(ctx, uid)
	if err != nil {
		return err
	}
	hid := uint64(n.HistoryID)
	if mb != nil && complete(mb) && mb.HistoryID >= hid {
		pending, err := s.pendingEvents(ctx, uid)
		if err != nil {
			return err
		}
		if !pending {
			s.stats.skipped.Add(1)
			return nil
		}
	}
	return s.run(ctx, uid, hid, job{sync: true, ackIfBusy: true})
}

// task does what the callback or the sweep asked for one user.
func (s *Service) task(ctx context.Context, t Task) error {
	j := job{}
	if t.Reason != ReasonDrain {
		active, err := s.active(ctx, t.UserID)
		if err != nil {
			return err
		}
		if active {
			switch t.Reason {
			case ReasonConnect:
				j = job{watch: watchAlways, sync: true}
			case ReasonRenew:
				j = job{watch: watchIfDue, syncIfBehind: true}
			case ReasonResync:
				j = job{sync: true}
			}
		}
		// A user without an active grant: only its events go out.
	}
	return s.run(ctx, t.UserID, 0, j)
}

// active reports whether userID has an active grant.
func (s *Service) active(ctx context.Context, userID string) (bool, error) {
	c, err := s.Store.GetCredential(ctx, userID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return false, err
	case c.Status == store.StatusActive:
		return true, nil
	}
	s.stats.unknown.Add(1)
	return false, nil
}

func (s *Service) mailbox(ctx context.Context, userID string) (*store.Mailbox, error) {
	mb, err := s.Store.GetMailbox(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return mb, err
}

// complete reports whether mb's first sync is done.
func complete(mb *store.Mailbox) bool { return mb.HistoryID != 0 && mb.PendingHistoryID == 0 }

func (s *Service) pendingEvents(ctx context.Context, userID string) (bool, error) {
	if s.Events == nil {
		return false, nil
	}
	evs, err := s.Store.ListOutbox(ctx, userID, 1)
	return len(evs) > 0, err
}

type watchMode int

const (
	watchNever watchMode = iota
	watchIfDue
	watchAlways
)

// job is what a handler does under the lease.
type job struct {
	watch        watchMode
	sync         bool // sync in any case
	syncIfBehind bool // sync when the watch shows Gmail ahead of the mirror
	ackIfBusy    bool // a busy lease means done (the holder syncs again)
}

// run takes userID's sync lease and does j, then another round of syncing
// for as long as later history ids were wanted meanwhile, publishing the
// user's events after each round.
func (s *Service) run(ctx context.Context, userID string, historyID uint64, j job) error {
	ttl := or(s.LeaseTTL, DefaultLeaseTTL)
	owner := s.Owner + "/" + randomID()
	ok, err := s.Store.ClaimSync(ctx, userID, owner, historyID, s.now(), ttl)
	if err != nil {
		return err
	}
	if !ok {
		s.stats.busy.Add(1)
		if j.ackIfBusy {
			return nil
		}
		return ErrBusy
	}
	// The lease is let go even when ctx is over.
	release := func(synced uint64) bool {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		again, err := s.Store.FinishSync(rctx, userID, owner, synced, s.now(), ttl)
		if err != nil {
			s.log().WarnContext(ctx, "push: releasing the sync lease failed (it expires by itself)",
				slog.String("user_id", userID), slog.String("error", err.Error()))
			return false
		}
		return again
	}
	var workErr, drainErr error
	for round := 1; ; round++ {
		s.stats.rounds.Add(1)
		var synced uint64
		synced, workErr = s.work(ctx, userID, j)
		drainErr = s.drain(ctx, userID)
		if workErr != nil || drainErr != nil {
			release(math.MaxUint64)
			break
		}
		if round == maxRounds {
			// Changes keep coming: let another handler continue. If it
			// cannot be handed on, this message is redelivered instead.
			handErr := s.handOn(ctx, userID, ReasonResync)
			release(math.MaxUint64)
			if handErr != nil {
				return handErr
			}
			break
		}
		if !release(synced) {
			break
		}
		j = job{sync: true}
	}
	return s.outcome(ctx, userID, workErr, drainErr)
}

// work does one round of j: the watch, then the sync. It returns the
// mirror's history id afterwards.
func (s *Service) work(ctx context.Context, userID string, j job) (uint64, error) {
	mb, err := s.mailbox(ctx, userID)
	if err != nil {
		return 0, err
	}
	if mb == nil {
		mb = &store.Mailbox{UserID: userID}
	}
	synced, sync := mb.HistoryID, j.sync
	var watchErr error
	if j.watch == watchAlways || j.watch == watchIfDue && s.WatchDue(ctx, mb, s.now()) {
		before := *mb
		w, err := s.watch(ctx, userID, mb)
		switch {
		case err == nil:
			if j.syncIfBehind && (!complete(&before) || w.HistoryID > before.HistoryID) {
				sync = true // changes the mirror missed (lost notifications), or no first sync yet
			}
		case syncer.IsRevoked(err):
			return synced, err
		default:
			watchErr = err
			sync = sync || j.syncIfBehind // cannot tell: look
			s.log().WarnContext(ctx, "push: users.watch failed", slog.String("user_id", userID), slog.String("error", err.Error()))
		}
	}
	if sync {
		s.stats.syncs.Add(1)
		res, err := s.Syncer.SyncUserWithin(ctx, userID)
		if res != nil && res.HistoryID != 0 {
			synced = res.HistoryID
		}
		if err != nil {
			return synced, err
		}
	}
	return synced, watchErr
}

// drain publishes userID's events (the caller holds the lease).
func (s *Service) drain(ctx context.Context, userID string) error {
	if s.Events == nil {
		return nil
	}
	n, err := events.Drain(ctx, s.Store, s.Events, userID)
	s.stats.published.Add(int64(n))
	return err
}

// outcome turns a round's errors into the message's answer.
func (s *Service) outcome(ctx context.Context, userID string, workErr, drainErr error) error {
	if drainErr != nil {
		s.log().WarnContext(ctx, "push: publishing events failed; retried", slog.String("user_id", userID),
			slog.String("error", drainErr.Error()))
		return drainErr
	}
	switch {
	case workErr == nil:
		return nil
	case errors.Is(workErr, syncer.ErrStopped):
		// A long first sync stopped before the deadline with its progress
		// saved: another handler continues it.
		if err := s.handOn(ctx, userID, ReasonResync); err != nil {
			return workErr
		}
		return nil
	case errors.Is(workErr, syncer.ErrDeferred):
		// The first sync saved the newest mail and left the older for a
		// day with less Gmail usage; the sweep hands it on again.
		s.log().InfoContext(ctx, "push: the rest of a first sync waits for the next day", slog.String("user_id", userID))
		return nil
	case syncer.IsRevoked(workErr), errors.Is(workErr, syncer.ErrUnknownUser), errors.Is(workErr, store.ErrGrantGone):
		return nil // the grant is gone: nothing to do for it
	case retryable(workErr):
		return workErr
	}
	s.log().WarnContext(ctx, "push: sync failed; not retried (the sweep tries again later)",
		slog.String("user_id", userID), slog.String("error", workErr.Error()))
	return nil
}

// retryable reports whether a retry of the message can succeed.
func retryable(err error) bool {
	return apperr.Temporary(err) || apperr.As(err) == nil || errors.Is(err, context.DeadlineExceeded)
}

// handOn dispatches a task for userID (best effort, logged).
func (s *Service) handOn(ctx context.Context, userID string, r Reason) error {
	err := s.dispatch(ctx, Task{UserID: userID, Reason: r})
	if err != nil {
		s.log().WarnContext(ctx, "push: handing the user on failed", slog.String("user_id", userID),
			slog.String("reason", string(r)), slog.String("error", err.Error()))
	}
	return err
}

func (s *Service) dispatch(ctx context.Context, tasks ...Task) error {
	msgs := make([]Message, len(tasks))
	for i, t := range tasks {
		msgs[i] = EncodeTask(t)
	}
	n, err := s.Dispatch.Dispatch(ctx, msgs)
	if err == nil && n != len(msgs) {
		err = fmt.Errorf("push: %d of %d tasks dispatched", n, len(msgs))
	}
	return err
}

// Connected hands a new grant to the push path: its watch and its first
// sync start within seconds, on a GmailPush instance, not in the
// callback's request (the browser is waiting, and a function's CPU is
// throttled once it has answered).
func (s *Service) Connected(ctx context.Context, userID string) error {
	return s.dispatch(ctx, Task{UserID: userID, Reason: ReasonConnect})
}

// Kick hands userID's waiting events to the push path, to be published
// soon (best effort: the sweep publishes leftovers too).
func (s *Service) Kick(ctx context.Context, userID string) {
	_ = s.handOn(ctx, userID, ReasonDrain)
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
