package app

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"example.com/gmailoauth/internal/httpx"
	"example.com/gmailoauth/internal/oauthflow"
)

// Sweeper runs the scheduler's offline sync: every active user when userID
// is empty, else that one user. The summary is answered as JSON.
type Sweeper interface {
	Sweep(ctx context.Context, userID string) (any, error)
}

// schedulerBody is the JSON body of POST /list-messages.
type schedulerBody struct {
	UserID string `json:"user_id"`
}

// schedulerSync authenticates Cloud Scheduler's Google-signed OIDC token
// (signature by the issuer's JWKS, aud = SCHEDULER_AUDIENCE, email =
// SCHEDULER_SERVICE_ACCOUNT, verified) and runs the sweep.
func (d *Deps) schedulerSync(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	cfg := d.Config
	if cfg.SchedulerServiceAccount == "" {
		return &httpx.Error{Status: http.StatusForbidden, Code: "scheduler_disabled",
			Message: "scheduled sync is not configured (SCHEDULER_SERVICE_ACCOUNT, SCHEDULER_AUDIENCE)"}
	}
	raw := httpx.BearerToken(r)
	if raw == "" {
		return &httpx.Error{Status: http.StatusUnauthorized, Code: "missing_token",
			Message: "the scheduler must send a Google-signed OIDC token as Authorization: Bearer"}
	}
	idt, err := d.Flow.VerifyIDToken(ctx, raw, cfg.SchedulerAudience)
	if err != nil {
		var ue *oauthflow.UpstreamError
		if errors.As(err, &ue) && ue.Temporary {
			// Google's discovery document or keys could not be fetched.
			return &httpx.Error{Status: http.StatusServiceUnavailable, Code: "upstream_unavailable",
				Message: "Google's signing keys could not be fetched; try again shortly", RetryAfter: 5 * time.Second, Cause: err}
		}
		return &httpx.Error{Status: http.StatusUnauthorized, Code: "invalid_token",
			Message: "the OIDC token is not a valid token for this function"}
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
	}
	if err := idt.Claims(&claims); err != nil || !claims.EmailVerified ||
		!strings.EqualFold(claims.Email, cfg.SchedulerServiceAccount) {
		return &httpx.Error{Status: http.StatusForbidden, Code: "forbidden",
			Message: "only the configured scheduler service account may run a sync"}
	}
	var body schedulerBody
	if err := httpx.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	if len(body.UserID) > 255 {
		return httpx.Errorf(http.StatusBadRequest, "invalid_request", "user_id is too long")
	}
	sum, err := d.Sweeper.Sweep(ctx, body.UserID)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, sum)
	return nil
}
