package app

import (
	"context"
	"errors"
	"net/http"
	"time"

	"example.com/gmailoauth/internal/httpx"
	"example.com/gmailoauth/internal/syncer"
)

// syncSweeper runs the scheduler's sync with the syncer package.
type syncSweeper struct {
	s *syncer.Syncer
}

// newSyncSweeper builds the instance's Syncer: Gmail calls go through a
// quota-aware transport whose project bucket is shared by every request of
// the instance; tokens come from the OAuth flow (single-flight refresh,
// revocation marking).
func newSyncSweeper(d *Deps) Sweeper {
	cfg := d.Config
	return &syncSweeper{s: &syncer.Syncer{
		Store:    d.Store,
		Tokens:   d.Flow,
		GmailURL: cfg.GmailAPIURL,
		// The timeout covers a call's retries and quota waits; each attempt
		// is bounded by the base transport's header timeout.
		Client:              &http.Client{Timeout: 3 * time.Minute, Transport: d.GmailQuota},
		Cursor:              &syncer.StoreCursor{Store: d.Store, Now: d.Now},
		Log:                 d.Log,
		Now:                 d.Now,
		Query:               cfg.SyncQuery,
		UserConcurrency:     cfg.SyncConcurrency,
		MetadataConcurrency: syncer.DefaultMetadataConcurrency,
		Deadline:            cfg.SyncDeadline,
	}}
}

// gmailBaseTransport gives the sync's many concurrent calls enough idle
// connections and a per-attempt header timeout when base is an *http.Transport.
func gmailBaseTransport(base http.RoundTripper, conns int) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	t, ok := base.(*http.Transport)
	if !ok {
		return base
	}
	t = t.Clone()
	t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, conns)
	if t.ResponseHeaderTimeout == 0 {
		t.ResponseHeaderTimeout = 30 * time.Second
	}
	return t
}

// Sweep implements Sweeper: every active user, or one.
func (w *syncSweeper) Sweep(ctx context.Context, userID string) (any, error) {
	if userID == "" {
		sum, err := w.s.Sweep(ctx)
		if err != nil {
			return nil, &httpx.Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
				Message: "the sweep could not read the users; try again shortly", RetryAfter: 30 * time.Second, Cause: err}
		}
		return sum, nil
	}
	sum, err := w.s.SyncOne(ctx, userID)
	switch {
	case errors.Is(err, syncer.ErrUnknownUser):
		return nil, &httpx.Error{Status: http.StatusNotFound, Code: "unknown_user", Message: "no grant is stored for this user_id"}
	case err != nil:
		return nil, &httpx.Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
			Message: "storage did not answer; try again shortly", RetryAfter: 30 * time.Second, Cause: err}
	}
	return sum, nil
}
