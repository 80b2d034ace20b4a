package app

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"example.com/gmailoauth/internal/apperr"
	"example.com/gmailoauth/internal/events"
	"example.com/gmailoauth/internal/httpx"
	"example.com/gmailoauth/internal/logging"
	"example.com/gmailoauth/internal/push"
	"example.com/gmailoauth/internal/syncer"
)

// schedulerBody is the JSON body of POST /list-messages.
type schedulerBody struct {
	UserID string `json:"user_id"`
}

// schedulerSync authenticates Cloud Scheduler's Google-signed OIDC token
// (signature by the issuer's JWKS, aud = SCHEDULER_AUDIENCE, email =
// SCHEDULER_SERVICE_ACCOUNT, verified) and runs the sweep: every active
// user, or the one named.
func schedulerSync(ctx context.Context, d *Deps, w http.ResponseWriter, r *http.Request) error {
	if err := needsClientSecret(d); err != nil {
		return err
	}
	// The sweep watches SYNC_DEADLINE itself, but nobody is known to be
	// calling until the token verifies: authentication gets the frontend's
	// request deadline, so a slow JWKS cannot hold requests open.
	actx, cancel := context.WithTimeout(ctx, d.Config.RequestTimeout)
	authErr := authenticateScheduler(actx, d, r)
	cancel()
	if authErr != nil {
		return authErr
	}
	var body schedulerBody
	if err := httpx.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	if len(body.UserID) > 255 {
		return apperr.New(apperr.InvalidRequest, "user_id is too long")
	}
	if d.Push != nil {
		return pushSweep(ctx, d, w, body.UserID)
	}
	var (
		sum *syncer.Summary
		err error
	)
	if body.UserID == "" {
		sum, err = d.Syncer.Sweep(ctx)
		drainAll(ctx, d)
	} else {
		sum, err = d.Syncer.SyncOne(ctx, body.UserID)
		drainAll(ctx, d)
	}
	switch {
	case errors.Is(err, syncer.ErrUnknownUser):
		return apperr.New(apperr.UnknownUser, "no grant is stored for this user_id")
	case err != nil && apperr.As(err) == nil:
		return apperr.Wrap(apperr.Unavailable, "storage did not answer; try again shortly", err)
	case err != nil:
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, sum)
	return nil
}

// pushSweep is the sweep with push: it decides who is due and hands them
// to GmailPush through the notification topic (or hands on the one user
// named), answering a push.SweepSummary.
func pushSweep(ctx context.Context, d *Deps, w http.ResponseWriter, userID string) error {
	var (
		sum *push.SweepSummary
		err error
	)
	if userID == "" {
		sum, err = d.Push.Sweep(ctx, d.Config.SyncDeadline)
	} else {
		sum, err = d.Push.DispatchOne(ctx, userID)
	}
	switch {
	case errors.Is(err, push.ErrUnknownUser):
		return apperr.New(apperr.UnknownUser, "no grant is stored for this user_id")
	case err != nil && apperr.As(err) == nil:
		return apperr.Wrap(apperr.Unavailable, "storage or Pub/Sub did not answer; try again shortly", err)
	case err != nil:
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, sum)
	return nil
}

// drainAll publishes every user's waiting events after a sweep without
// push (with push, GmailPush publishes them). A failure leaves them for
// the next sweep.
func drainAll(ctx context.Context, d *Deps) {
	if d.Events == nil {
		return
	}
	if _, err := events.Drain(ctx, d.Store, d.Events, ""); err != nil {
		d.Log.WarnContext(ctx, "publishing events after the sweep failed; the next sweep retries", slog.String("error", logging.Scrub(err.Error())))
	}
}

// authenticateScheduler accepts only a valid Google-signed OIDC token of
// the configured scheduler service account.
func authenticateScheduler(ctx context.Context, d *Deps, r *http.Request) error {
	cfg := d.Config
	if cfg.SchedulerServiceAccount == "" {
		return apperr.New(apperr.SchedulerDisabled, "scheduled sync is not configured (SCHEDULER_SERVICE_ACCOUNT, SCHEDULER_AUDIENCE)")
	}
	raw := httpx.BearerToken(r)
	if raw == "" {
		return apperr.New(apperr.MissingToken, "the scheduler must send a Google-signed OIDC token as Authorization: Bearer")
	}
	idt, err := d.Flow.VerifyIDToken(ctx, raw, cfg.SchedulerAudience)
	if err != nil {
		if apperr.Temporary(err) {
			return err // Google's discovery document or keys could not be fetched
		}
		return apperr.New(apperr.InvalidToken, "the OIDC token is not a valid token for this function")
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
	}
	if err := idt.Claims(&claims); err != nil || !claims.EmailVerified ||
		!strings.EqualFold(claims.Email, cfg.SchedulerServiceAccount) {
		return apperr.New(apperr.Forbidden, "only the configured scheduler service account may run a sync")
	}
	return nil
}
