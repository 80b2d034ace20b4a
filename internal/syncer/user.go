package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"example.com/gmailoauth/internal/apperr"
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
}

var (
	// ErrUnknownUser means no credential is stored for the user.
	ErrUnknownUser = errors.New("syncer: unknown user")
	// errStopped means the sweep's deadline stopped a sync between pages.
	errStopped = errors.New("syncer: stopped before the deadline")
	// errDeferred means a first sync saved its newest mail and left the
	// older for the next day: the day's Gmail usage is near the threshold.
	errDeferred = errors.New("syncer: older mail deferred to the next day (Gmail usage near the daily threshold)")
)

// IsRevoked reports whether err means the user's grant is gone or revoked
// (the user must consent again).
func IsRevoked(err error) bool { return apperr.Is(err, apperr.ReauthorizationRequired) }

// SyncUser syncs one user's mailbox: a full sync the first time (or after
// the history checkpoint expired, or to continue an interrupted one), else an
// incremental sync from the checkpoint.
func (s *Syncer) SyncUser(ctx context.Context, userID string) (*Result, error) {
	if _, err := s.Store.GetCredential(ctx, userID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return &Result{Kind: KindNone}, ErrUnknownUser
		}
		return &Result{Kind: KindNone}, err
	}
	return s.syncUser(ctx, userID, func() bool { return false }, nil)
}

// syncUser is SyncUser without the credential check; stopping reports the
// sweep's soft deadline. mb is the already read checkpoint, or nil.
func (s *Syncer) syncUser(ctx context.Context, userID string, stopping func() bool, mb *store.Mailbox) (*Result, error) {
	res := &Result{Kind: KindNone}
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
		s.recordError(ctx, userID, mb, err)
	}
	return res, err
}

// recordError keeps the failure on the checkpoint (best effort) so support
// can see it; the checkpoint itself is unchanged, so the next sync retries.
func (s *Syncer) recordError(ctx context.Context, userID string, mb *store.Mailbox, err error) {
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
	if serr := s.Store.SaveSync(ctx, userID, &cp, nil, nil); serr == nil {
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
	}
	for {
		stop := errStopped
		if !stopping() {
			stop = nil
			if !newest && !s.Budget.AllowOptional(ctx) {
				stop = errDeferred
			}
		}
		if stop != nil {
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
		if err := s.Store.SaveSync(ctx, userID, &cp, metas, deletes); err != nil {
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
		if page.Changed() || page.HistoryID != mb.HistoryID || mb.LastError != "" {
			upserts, err := s.fetch(ctx, c, page.Added)
			if err != nil {
				return err
			}
			relabeled, err := s.relabel(ctx, userID, page)
			if err != nil {
				return err
			}
			cp := *mb
			cp.HistoryID = page.HistoryID
			cp.LastSyncAt = s.now()
			cp.LastError = ""
			cp.MessageCount = max(0, cp.MessageCount+len(upserts)-len(page.Deleted))
			if err := s.Store.SaveSync(ctx, userID, &cp, append(upserts, relabeled...), page.Deleted); err != nil {
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
