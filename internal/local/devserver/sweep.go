package devserver

import (
	"context"
	"log/slog"
	"time"

	"example.com/gmailoauth/internal/syncer"
)

// Sweep syncs every connected mailbox once, in process, as the deployed
// Cloud Scheduler job does through POST /list-messages.
func (s *Server) Sweep(ctx context.Context) (*syncer.Summary, error) {
	d, err := s.App.Deps(ctx)
	if err != nil {
		return nil, err
	}
	return d.Syncer.Sweep(ctx)
}

// SweepEvery runs Sweep every interval until ctx ends: the local stand-in
// for the scheduler, so that listings come from the mirror once a user's
// first sync is done. Each sweep that did something is logged.
func (s *Server) SweepEvery(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sum, err := s.Sweep(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.WarnContext(ctx, "local sweep failed", slog.String("error", err.Error()))
		case sum != nil && (sum.MessagesAdded > 0 || sum.MessagesRemoved > 0 || sum.Failed > 0 || sum.Revoked > 0):
			log.InfoContext(ctx, "local sweep", slog.Int("users", sum.Users), slog.Int64("messages_added", sum.MessagesAdded),
				slog.Int64("messages_removed", sum.MessagesRemoved), slog.Int("revoked", sum.Revoked), slog.Int("failed", sum.Failed))
		}
	}
}
