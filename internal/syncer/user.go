package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"example.com/gmailoauth/internal/apperr"
	"example.com/gmailoauth/internal/events"
	"example.com/gmailoauth/internal/gmail"
	"example.com/gmailoauth/internal/store"
)

// Sync kinds of a Result.
const (
	KindNone        = "none"        // nothing was done (skipped, or failed before Gmail)
	KindFull        = "full"        // messages.list from the query
	KindIncremental = "incremental" // history.list from the checkpoint
)

// Result is what one user's sync did.
type Result struct {
	Kind string
	// Fallback is set when a full sync ran in place of an incremental one:
	// history.list answered 404, or the checkpoint predates the mirror's
	// horizon.
	Fallback bool
	Added    int
	Removed  int
	// Complete is false when the sync stopped part-way (deadline); its
	// progress is saved and the next sync continues it.
	Complete bool
	// Wrote reports whether anything was written to the store.
	Wrote bool
	// Events is the number of events to the app the sync wrote.
	Events int
	// HistoryID is the mirror's checkpoint after the sync (0 while a first
	// sync is not complete).
	HistoryID uint64

	user *events.User // whom the events are about, read once (Syncer.who)
}

var (
	// ErrUnknownUser means no credential is stored for the user.
	ErrUnknownUser = errors.New("syncer: unknown user")
	// ErrStopped means a deadline stopped a sync between pages; its progress
	// is saved and the next sync continues it.
	ErrStopped = errors.New("syncer: stopped before the deadline")
	errStopped = ErrStopped
	// ErrDeferred means a first sync saved its newest mail and left the
	// older for the next day: the day's Gmail usage is near the threshold.
	ErrDeferred = errors.New("syncer: older mail deferred to the next day (Gmail usage near the daily threshold)")
	errDeferred = ErrDeferred
)

// IsRevoked reports whether err means the user's grant is gone or revoked
// (the user must consent again).
func IsRevoked(err error) bool { return apperr.Is(err, apperr.ReauthorizationRequired) }

// SyncUser syncs one user's mailbox: a full sync the first time (or after
// the history checkpoint expired, or to continue an interrupted one), else an
// incremental sync from the checkpoint.
func (s *Syncer) SyncUser(ctx context.Context, userID string) (*Result, error) {
	c, err := s.Store.GetCredential(ctx, userID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return &Result{Kind: KindNone}, ErrUnknownUser
		}
		return &Result{Kind: KindNone}, err
	}
	return s.syncUserAs(ctx, userID, &events.User{ID: userID, Email: c.Email}, func() bool { return false }, nil)
}

// SyncUserWithin is SyncUser that stops between pages before ctx's deadline
// (a tenth of the time left, at least a second, before it) or SYNC_DEADLINE,
// saving its progress: it then returns ErrStopped, and the next sync
// continues where it stopped.
func (s *Syncer) SyncUserWithin(ctx context.Context, userID string) (*Result, error) {
	c, err := s.Store.GetCredential(ctx, userID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return &Result{Kind: KindNone}, ErrUnknownUser
		}
		return &Result{Kind: KindNone}, err
	}
	return s.syncUserAs(ctx, userID, &events.User{ID: userID, Email: c.Email}, s.stopAt(ctx, s.now()), nil)
}

// syncUser is SyncUser without the credential check; stopping reports the
// sweep's soft deadline. mb is the already read checkpoint, or nil.
func (s *Syncer) syncUser(ctx context.Context, userID string, stopping func() bool, mb *store.Mailbox) (*Result, error) {
	return s.syncUserAs(ctx, userID, nil, stopping, mb)
}

// syncUserAs is syncUser for a user already read (nil: read it when an
// event needs it).
func (s *Syncer) syncUserAs(ctx context.Context, userID string, user *events.User, stopping func() bool, mb *store.Mailbox) (*Result, error) {
	res := &Result{Kind: KindNone, user: user}
	if mb == nil {
		var err error
		if mb, err = s.Store.GetMailbox(ctx, userID); errors.Is(err, store.ErrNotFound) {
			mb, err = &store.Mailbox{UserID: userID}, nil
		}
		if err != nil {
			return res, fmt.Errorf("read checkpoint: %w", err)
		}
	}
	if err := s.holdToGrant(ctx, userID, mb); err != nil {
		return res, err
	}
	err := s.Gmail.Do(ctx, userID, func(ctx context.Context, c *gmail.Client) error {
		return s.run(ctx, c, userID, mb, res, stopping)
	})
	if errors.Is(err, store.ErrGrantGone) {
		return res, s.grantGone(ctx, userID, mb)
	}
	if be := (*gmail.BudgetError)(nil); errors.As(err, &be) {
		// The budget would not let the next call go before the deadline:
		// stopped like a sync at its deadline (every saved page stays).
		err = fmt.Errorf("%w: %w", errStopped, err)
	}
	if err != nil && !errors.Is(err, errStopped) && !errors.Is(err, errDeferred) && !IsRevoked(err) {
		s.recordError(ctx, userID, mb, res, err)
	}
	if mb.PendingHistoryID == 0 {
		res.HistoryID = mb.HistoryID
	}
	return res, err
}

// who returns whom userID's events are about, reading the credential once
// per sync (a user disconnected meanwhile has no email).
func (s *Syncer) who(ctx context.Context, userID string, res *Result) (events.User, error) {
	if res.user != nil {
		return *res.user, nil
	}
	u := events.User{ID: userID}
	c, err := s.Store.GetCredential(ctx, userID)
	switch {
	case err == nil:
		u.Email = c.Email
	case !errors.Is(err, store.ErrNotFound):
		return u, fmt.Errorf("read the user for events: %w", err)
	}
	res.user = &u
	return u, nil
}

// save writes one step of a sync: messages, then the checkpoint cp, with the
// events evs makes of them when the Syncer emits events.
func (s *Syncer) save(ctx context.Context, userID string, res *Result, cp *store.Mailbox, upserts []*store.MessageMeta, deletes []string,
	evs func(u events.User, at time.Time) []*store.OutboxEvent) error {
	if !s.Events || evs == nil {
		return s.Store.SaveSync(ctx, userID, cp, upserts, deletes)
	}
	u, err := s.who(ctx, userID, res)
	if err != nil {
		return err
	}
	out := evs(u, s.now())
	if err := s.Store.SaveSyncEvents(ctx, userID, cp, upserts, deletes, out); err != nil {
		return err
	}
	res.Events += len(out)
	return nil
}

// recordError keeps the failure on the checkpoint (best effort) so support
// can see it; the checkpoint itself is unchanged, so the next sync retries.
// The first failure after a success is told to the app (sync.failed).
func (s *Syncer) recordError(ctx context.Context, userID string, mb *store.Mailbox, res *Result, err error) {
	if ctx.Err() != nil {
		return
	}
	var ge *gmail.Error
	msg := err.Error()
	if errors.As(err, &ge) {
		msg = ge.Error()
	} else if len(msg) > 200 {
		msg = strings.ToValidUTF8(msg[:200], "")
	}
	cp := *mb
	cp.LastError, cp.LastErrorAt = msg, s.now()
	var evs func(events.User, time.Time) []*store.OutboxEvent
	if mb.LastError == "" {
		evs = func(u events.User, at time.Time) []*store.OutboxEvent {
			code, text := string(apperr.Internal), "the sync failed; it is retried"
			if e := apperr.As(gmail.AppError(err)); e != nil {
				code, text = string(e.Code), e.Message
			}
			return []*store.OutboxEvent{events.Failed(u, at, mb.HistoryID, code, text)}
		}
	}
	if serr := s.save(ctx, userID, res, &cp, nil, nil, evs); serr == nil {
		*mb = cp
	}
}

// run picks the kind of sync. mb is updated as checkpoints are saved.
func (s *Syncer) run(ctx context.Context, c *gmail.Client, userID string, mb *store.Mailbox, res *Result, stopping func() bool) error {
	if mb.HistoryID != 0 && mb.PendingHistoryID == 0 {
		if mb.MirrorHorizon == 0 {
			// Synced before the mirror kept its horizon (and spam and
			// trash): list again, dropping what Gmail no longer has.
			s.log().InfoContext(ctx, "mirror without a horizon; full sync", slog.String("user_id", userID))
			res.Kind, res.Fallback = KindFull, true
			return s.full(ctx, c, userID, mb, res, stopping)
		}
		res.Kind = KindIncremental
		err := s.incremental(ctx, c, userID, mb, res, stopping)
		if !errors.Is(err, gmail.ErrHistoryGone) {
			return err
		}
		s.log().InfoContext(ctx, "history checkpoint expired; full sync", slog.String("user_id", userID))
		res.Fallback = true
	}
	res.Kind = KindFull
	return s.full(ctx, c, userID, mb, res, stopping)
}

// full lists the messages matching the query, spam and trash included,
// newest first, SyncPageSize
// ids a page, fetches their metadata and saves each page with the page
// token of the next one, so a stopped sync continues where it was. The
// first page of a sync that starts now is the user's newest mail: it goes
// at once. The pages after it are backfill: they yield part of the user's
// budget to a person (gmail.Backfill) and wait for the next day while the
// project's usage is near the daily threshold (errDeferred). The mailbox
// historyId is read before the listing: changes made during it are
// replayed by the next incremental sync (applying them twice is harmless).
// The mirror's horizon starts at the listing's start and goes down to the
// oldest message listed: the mirror then holds every message from it on
// (the query selects by date only; see config's SYNC_QUERY).
func (s *Syncer) full(ctx context.Context, c *gmail.Client, userID string, mb *store.Mailbox, res *Result, stopping func() bool) error {
	resumed := mb.PendingHistoryID != 0
	newest := !resumed           // the next page is the newest mail
	var seen map[string]struct{} // listed ids, to drop stale messages after a fallback
	if res.Fallback {
		seen = map[string]struct{}{}
	}
	if !resumed {
		if err := s.beginFull(ctx, c, mb); err != nil {
			return err
		}
	}
	for {
		if stop := s.stopBefore(ctx, newest, stopping); stop != nil {
			if res.Wrote || !resumed {
				// Keep the started sync's pending historyId.
				if err := s.Store.SaveSync(ctx, userID, mb, nil, nil); err != nil {
					return err
				}
				res.Wrote = true
			}
			return stop
		}
		pctx := ctx
		if !newest {
			pctx = gmail.Backfill(ctx)
		}
		newest = false
		page, err := c.ListMessages(pctx, gmail.ListQuery{Q: s.Query, MaxResults: gmail.SyncPageSize, PageToken: mb.FullSyncPageToken,
			IncludeSpamTrash: true})
		if err != nil {
			if gmail.KindOf(err) == gmail.KindBadRequest && mb.FullSyncPageToken != "" {
				// A page token from an interrupted sync is no longer valid:
				// start the listing again.
				mb.PendingHistoryID, mb.FullSyncPageToken = 0, ""
				return s.full(ctx, c, userID, mb, res, stopping)
			}
			return err
		}
		ids := make([]string, 0, len(page.Messages))
		for _, m := range page.Messages {
			ids = append(ids, m.ID)
			if seen != nil {
				seen[m.ID] = struct{}{}
			}
		}
		metas, err := s.fetch(pctx, c, ids)
		if err != nil {
			return err
		}
		cp := *mb
		cp.FullSyncPageToken = page.NextPageToken
		cp.MessageCount += len(metas)
		for _, m := range metas {
			if cp.MirrorHorizon != store.HorizonAll && m.InternalDate < cp.MirrorHorizon {
				cp.MirrorHorizon = m.InternalDate
			}
		}
		var deletes []string
		if page.NextPageToken == "" {
			if seen != nil && !resumed {
				if deletes, err = s.stale(ctx, userID, seen); err != nil {
					return err
				}
				cp.MessageCount = len(seen)
			}
			cp.HistoryID, cp.PendingHistoryID = cp.PendingHistoryID, 0
			cp.LastSyncAt = s.now()
			cp.LastError = ""
		}
		if err := s.save(ctx, userID, res, &cp, metas, deletes, pageEvents(metas, deletes)); err != nil {
			return err
		}
		*mb = cp
		res.Wrote = true
		res.Added += len(metas)
		res.Removed += len(deletes)
		if page.NextPageToken == "" {
			res.Complete = true
			return nil
		}
	}
}

// beginFull starts a full sync of mb: the history id it will continue
// from, and a mirror horizon of now (the query's limit) or everything.
func (s *Syncer) beginFull(ctx context.Context, c *gmail.Client, mb *store.Mailbox) error {
	hid, err := c.HistoryID(ctx)
	if err != nil {
		return err
	}
	mb.PendingHistoryID, mb.FullSyncPageToken = hid, ""
	mb.MessageCount = 0
	mb.MirrorHorizon = s.now().UnixMilli()
	if s.Query == "" {
		mb.MirrorHorizon = store.HorizonAll
	}
	return nil
}

// stopBefore says why a full sync stops before its next page, or nil:
// errStopped near the deadline, errDeferred for older mail when the day's
// budget leaves nothing for what can wait.
func (s *Syncer) stopBefore(ctx context.Context, newest bool, stopping func() bool) error {
	switch {
	case stopping():
		return errStopped
	case !newest && !s.Budget.AllowOptional(ctx):
		return errDeferred
	}
	return nil
}

// pageEvents returns the events of a full sync's page: one added per
// message, one deleted per stale id.
func pageEvents(metas []*store.MessageMeta, deletes []string) func(events.User, time.Time) []*store.OutboxEvent {
	return func(u events.User, at time.Time) []*store.OutboxEvent {
		out := make([]*store.OutboxEvent, 0, len(metas)+len(deletes))
		for _, m := range metas {
			out = append(out, events.Added(u, at, m))
		}
		for _, id := range deletes {
			out = append(out, events.Deleted(u, at, id))
		}
		return out
	}
}

// stale returns the stored messages that the fallback listing did not see
// (deleted while the history checkpoint was too old to tell).
func (s *Syncer) stale(ctx context.Context, userID string, seen map[string]struct{}) ([]string, error) {
	var out []string
	after := ""
	for {
		page, err := s.Store.ListMailboxMessages(ctx, userID, after, 500)
		if err != nil {
			return nil, err
		}
		for _, m := range page {
			if _, ok := seen[m.ID]; !ok {
				out = append(out, m.ID)
			}
		}
		if len(page) < 500 {
			return out, nil
		}
		after = page[len(page)-1].ID
	}
}

// incremental applies history.list from the checkpoint, one page (up to
// SyncPageSize records) at a time, saving the checkpoint after each page. With no change
// it makes one call and writes nothing.
func (s *Syncer) incremental(ctx context.Context, c *gmail.Client, userID string, mb *store.Mailbox, res *Result, stopping func() bool) error {
	pageToken := ""
	start := mb.HistoryID
	for {
		page, err := c.History(ctx, start, pageToken)
		if err != nil {
			return err
		}
		touch := s.Touch > 0 && s.now().Sub(mb.LastSyncAt) >= s.Touch
		if page.Changed() || page.HistoryID != mb.HistoryID || mb.LastError != "" || touch {
			upserts, err := s.fetch(ctx, c, page.Added)
			if err != nil {
				return err
			}
			relabeled, err := s.relabel(ctx, userID, page)
			if err != nil {
				return err
			}
			gone, err := s.storedOf(ctx, userID, page.Deleted)
			if err != nil {
				return err
			}
			cp := *mb
			cp.HistoryID = page.HistoryID
			cp.LastSyncAt = s.now()
			cp.LastError = ""
			cp.MessageCount = max(0, cp.MessageCount+len(upserts)-len(page.Deleted))
			if err := s.save(ctx, userID, res, &cp, append(upserts, relabeled...), page.Deleted, func(u events.User, at time.Time) []*store.OutboxEvent {
				out := make([]*store.OutboxEvent, 0, len(upserts)+len(relabeled)+len(gone))
				for _, m := range upserts {
					out = append(out, events.Added(u, at, m))
				}
				for _, m := range relabeled {
					out = append(out, events.LabelsChanged(u, at, m.ID, m.LabelIDs, page.LabelRecords[m.ID]))
				}
				for _, id := range gone {
					out = append(out, events.Deleted(u, at, id))
				}
				return out
			}); err != nil {
				return err
			}
			*mb = cp
			res.Wrote = true
			res.Added += len(upserts)
			res.Removed += len(page.Deleted)
		}
		if page.NextPageToken == "" {
			res.Complete = true
			return nil
		}
		if stopping() {
			return errStopped
		}
		pageToken = page.NextPageToken
	}
}

// relabel applies label changes to stored messages without a Gmail call:
// history records carry the message's labels after the change. The stored
// messages are read in one store call, in the order the history first
// mentioned them; messages not stored (outside the synced window) are left
// alone.
func (s *Syncer) relabel(ctx context.Context, userID string, page *gmail.HistoryPage) ([]*store.MessageMeta, error) {
	if len(page.Relabeled) == 0 {
		return nil, nil
	}
	msgs, err := s.Store.GetMailboxMessages(ctx, userID, page.Relabeled)
	if err != nil {
		return nil, fmt.Errorf("read relabeled messages: %w", err)
	}
	for _, m := range msgs {
		m.LabelIDs = page.Labels[m.ID]
	}
	return msgs, nil
}

// storedOf returns which of ids the mirror holds (for message.deleted
// events: deleting a message the mirror never had changes nothing). It
// reads only when the Syncer emits events.
func (s *Syncer) storedOf(ctx context.Context, userID string, ids []string) ([]string, error) {
	if !s.Events || len(ids) == 0 {
		return nil, nil
	}
	msgs, err := s.Store.GetMailboxMessages(ctx, userID, ids)
	if err != nil {
		return nil, fmt.Errorf("read deleted messages: %w", err)
	}
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out, nil
}

// fetch reads the metadata of ids (a message gone meanwhile is left out: its
// deletion shows in the history) as the store keeps it.
func (s *Syncer) fetch(ctx context.Context, c *gmail.Client, ids []string) ([]*store.MessageMeta, error) {
	msgs, err := c.MetadataOf(ctx, ids, s.MetadataConcurrency)
	if err != nil {
		return nil, err
	}
	out := make([]*store.MessageMeta, len(msgs))
	for i, m := range msgs {
		out[i] = &store.MessageMeta{ID: m.ID, ThreadID: m.ThreadID, Subject: m.Subject, From: m.From, Date: m.Date,
			Snippet: m.Snippet, LabelIDs: m.LabelIDs, InternalDate: m.InternalDate, HistoryID: m.HistoryID}
	}
	return out, nil
}
