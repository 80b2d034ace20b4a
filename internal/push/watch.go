package push

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"example.com/gmailoauth/internal/gmail"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/syncer"
)

// WatchDue reports whether mb's mailbox needs users.watch now. It must
// when it has none, or its watch lapsed or lapses within two days (Gmail's
// watches last 7). It should when the watch was made WatchRenewal ago
// (Gmail recommends daily), unless the project's Gmail usage for the day
// is near the billing threshold (gmail.Budget.AllowOptional): such a
// renewal waits for a quieter day, well before the watch lapses.
func (s *Service) WatchDue(ctx context.Context, mb *store.Mailbox, now time.Time) bool {
	switch {
	case mb == nil || mb.WatchExpiration.IsZero() || mb.WatchedAt.IsZero():
		return true
	case !now.Before(mb.WatchExpiration.Add(-urgentWatch)):
		return true
	case now.Sub(mb.WatchedAt) >= or(s.WatchRenewal, DefaultWatchRenewal):
		return s.Budget.AllowOptional(ctx)
	}
	return false
}

// watch calls users.watch for userID and keeps the answer with the mailbox
// (mb is updated). The caller holds the user's sync lease, so nothing else
// writes the checkpoint meanwhile.
func (s *Service) watch(ctx context.Context, userID string, mb *store.Mailbox) (*gmail.Watch, error) {
	var w *gmail.Watch
	err := s.Gmail.Do(ctx, userID, func(ctx context.Context, c *gmail.Client) error {
		var err error
		w, err = c.Watch(ctx, s.Topic)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.stats.watches.Add(1)
	cp := *mb
	cp.WatchedAt, cp.WatchExpiration, cp.WatchHistoryID = s.now(), w.Expiration, w.HistoryID
	if cp.Grant == "" {
		// The write holds to the grant, as the sync's do: a disconnect
		// meanwhile leaves no mailbox behind.
		c, err := s.Store.GetCredential(ctx, userID)
		if err != nil {
			return w, err
		}
		cp.Grant = c.Grant
	}
	if err := s.Store.SaveSync(ctx, userID, &cp, nil, nil); err != nil {
		return w, err
	}
	*mb = cp
	s.reindex(ctx, userID)
	return w, nil
}

// reindex makes sure Gmail's notifications for userID's address find the
// user (a grant stored before the email index existed), best effort.
func (s *Service) reindex(ctx context.Context, userID string) {
	c, err := s.Store.GetCredential(ctx, userID)
	if err != nil || c.Email == "" {
		return
	}
	if id, err := s.Store.UserIDByEmail(ctx, c.Email); err == nil && id == userID {
		return
	}
	_, err = s.Store.ChangeCredential(ctx, userID, func(cur *store.Credential) (*store.CredentialChange, error) {
		if cur == nil {
			return nil, nil
		}
		return &store.CredentialChange{Reindex: true}, nil
	})
	if err != nil {
		s.log().WarnContext(ctx, "push: indexing the address failed", slog.String("user_id", userID), slog.String("error", err.Error()))
	}
}

// StopWatch ends the notifications of userID's mailbox (users.stop), before
// a disconnect of grant revokes it. A mailbox with no watch, a grant that is
// already gone, or another grant than the one named (a stale session) needs
// nothing.
func (s *Service) StopWatch(ctx context.Context, userID, grant string) error {
	c, err := s.Store.GetCredential(ctx, userID)
	if errors.Is(err, store.ErrNotFound) || err == nil && c.Grant != grant {
		return nil
	}
	if err != nil {
		return err
	}
	mb, err := s.mailbox(ctx, userID)
	if err != nil {
		return err
	}
	if mb == nil || mb.WatchExpiration.IsZero() {
		return nil
	}
	err = s.Gmail.Do(ctx, userID, func(ctx context.Context, c *gmail.Client) error { return c.StopWatch(ctx) })
	if syncer.IsRevoked(err) {
		return nil
	}
	return err
}
