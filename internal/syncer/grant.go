package syncer

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"example.com/gmailoauth/internal/apperr"
	"example.com/gmailoauth/internal/store"
)

// A sync never outlives the grant it runs for: its checkpoint carries the
// credential's grant id (store.Mailbox.Grant) and every SaveSync is made
// only while that grant is stored (store.ErrGrantGone otherwise), checked
// by the store in the same transaction as the write. A disconnect deletes
// the credential, then the mailbox; a write is ordered either before the
// credential's deletion (and the mailbox's deletion removes it) or after it
// (and is refused).

// holdToGrant makes mb's writes conditional on userID's stored grant: the
// checkpoint's own when it has one, else the credential's.
func (s *Syncer) holdToGrant(ctx context.Context, userID string, mb *store.Mailbox) error {
	if mb.Grant != "" {
		return nil
	}
	c, err := s.Store.GetCredential(ctx, userID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errGrantGone
	case err != nil:
		return err
	}
	mb.Grant = c.Grant
	return nil
}

// errGrantGone is a sync stopped because the user disconnected: counted
// with the revoked grants, never as a failure.
var errGrantGone = apperr.Wrap(apperr.ReauthorizationRequired, "the user disconnected during the sync", store.ErrGrantGone)

// grantGone handles a write refused with store.ErrGrantGone. When the
// credential is stored with another grant, mb is an older grant's leftover
// (its deletion at disconnect failed): it is deleted, and the next sync
// starts afresh for the current grant.
func (s *Syncer) grantGone(ctx context.Context, userID string, mb *store.Mailbox) error {
	c, err := s.Store.GetCredential(ctx, userID)
	if err == nil && c.Grant != mb.Grant {
		if derr := s.Store.DeleteMailbox(ctx, userID); derr != nil {
			s.log().WarnContext(ctx, "deleting an earlier grant's mailbox failed", slog.String("user_id", userID), slog.String("error", derr.Error()))
		}
	}
	return errGrantGone
}

// orphanCheckEvery is how often, at most, a completed sweep round looks for
// mailboxes without a credential: each look reads every checkpoint.
const orphanCheckEvery = 24 * time.Hour

// removeOrphans deletes the mailboxes whose user has no credential (a
// disconnect whose mailbox deletion failed, an older version's leftovers),
// paging through the checkpoints. It reports how many it removed and
// whether it looked at every one before stopping said stop.
func (s *Syncer) removeOrphans(ctx context.Context, stopping func() bool) (removed int, done bool) {
	after := ""
	for !stopping() {
		ids, err := s.Store.ListMailboxIDs(ctx, after, DefaultUsersPageSize)
		if err != nil {
			s.log().WarnContext(ctx, "listing mailboxes for the orphan check failed", slog.String("error", err.Error()))
			return removed, false
		}
		for _, id := range ids {
			_, err := s.Store.GetCredential(ctx, id)
			if !errors.Is(err, store.ErrNotFound) {
				continue // connected (or unknown for now): kept
			}
			if err := s.Store.DeleteMailbox(ctx, id); err != nil {
				s.log().WarnContext(ctx, "removing a mailbox without a credential failed", slog.String("user_id", id), slog.String("error", err.Error()))
				continue
			}
			removed++
		}
		if len(ids) < DefaultUsersPageSize {
			return removed, true
		}
		after = ids[len(ids)-1]
	}
	return removed, false
}

// checkOrphans runs removeOrphans after a completed round when the last
// check is older than orphanCheckEvery, and returns when the check last
// ran to its end.
func (s *Syncer) checkOrphans(ctx context.Context, last time.Time, stopping func() bool) time.Time {
	now := s.now()
	if !last.IsZero() && now.Sub(last) < orphanCheckEvery {
		return last
	}
	removed, done := s.removeOrphans(ctx, stopping)
	if removed > 0 {
		s.log().InfoContext(ctx, "removed mailboxes without a credential", slog.Int("mailboxes", removed))
	}
	if done {
		return now
	}
	return last
}
