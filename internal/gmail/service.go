package gmail

import (
	"context"
	"errors"
	"net/http"
	"time"

	"example.com/gmailoauth/internal/apperr"
)

// Tokens hands out users' access tokens and records what Gmail says about
// them; *oauthflow.Flow implements it (single-flight refresh, grants marked
// revoked with a reason).
type Tokens interface {
	// AccessToken returns a valid access token for userID, or an
	// *apperr.Error (reauthorization_required when there is no usable grant).
	AccessToken(ctx context.Context, userID string) (string, error)
	// ExpireAccessToken makes the next AccessToken refresh.
	ExpireAccessToken(ctx context.Context, userID string) error
	// MarkRevoked marks the grant revoked, keeping why.
	MarkRevoked(ctx context.Context, userID, reason string) error
}

// Service makes Gmail calls on behalf of any connected user. Set the fields,
// then use it; it is safe for concurrent use.
type Service struct {
	// BaseURL is the Gmail API base URL, ending with "/".
	BaseURL string
	// HTTP sends the calls; its transport is the instance's *Transport and
	// its timeout bounds one call, retries and quota waits included.
	HTTP *http.Client
	// Retry is how patient the calls are (zero fields: the transport's).
	Retry  Retry
	Tokens Tokens
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// revokedReason is kept on a grant that Gmail refused after a refresh.
const revokedReason = "gmail answered 401 to a freshly refreshed token"

// Do runs fn with a Client for userID, its requests charged to the user's
// quota and retried as s.Retry says. When Gmail refuses the access token
// (401), the token is expired, refreshed once and fn runs again; a second
// refusal marks the grant revoked. Every error Do returns is an
// *apperr.Error (see AppError); a *Error from fn stays reachable with
// errors.As.
func (s *Service) Do(ctx context.Context, userID string, fn func(ctx context.Context, c *Client) error) error {
	ctx = WithRetry(WithUser(ctx, userID), s.Retry)
	for attempt := 0; ; attempt++ {
		at, err := s.Tokens.AccessToken(ctx, userID)
		if err != nil {
			return err
		}
		c, err := NewClient(ctx, s.BaseURL, s.HTTP, at, s.Now)
		if err != nil {
			return apperr.Wrap(apperr.Internal, "internal error", err)
		}
		err = fn(ctx, c)
		if KindOf(err) != KindUnauthorized || ctx.Err() != nil || err == nil {
			return AppError(err)
		}
		if attempt == 0 {
			// The token may have died early (revoked, password change):
			// refresh once.
			if err := s.Tokens.ExpireAccessToken(ctx, userID); err != nil {
				return err
			}
			continue
		}
		if err := s.Tokens.MarkRevoked(ctx, userID, revokedReason); err != nil {
			return err
		}
		return apperr.Wrap(apperr.ReauthorizationRequired,
			"Gmail access for this user must be granted again: Gmail no longer accepts this grant", err)
	}
}

// AppError returns err as the contract sees a Gmail failure: a missing
// scope is insufficient_scope, a spent quota rate_limited (with Gmail's
// Retry-After), a refused query or page token invalid_request, anything
// else upstream_unavailable. An error that already carries a code, or nil,
// is returned as is.
func AppError(err error) error {
	if err == nil || apperr.As(err) != nil {
		return err
	}
	e := &apperr.Error{Cause: err}
	switch KindOf(err) {
	case KindUnauthorized:
		e.Code, e.Message = apperr.ReauthorizationRequired, "Gmail access for this user must be granted again: Gmail refused the access token"
	case KindForbidden:
		e.Code, e.Message = apperr.InsufficientScope, "the grant does not include Gmail read access"
	case KindRateLimited:
		e.Code, e.Message = apperr.RateLimited, "Gmail's quota for this user is exhausted; retry later"
		var ge *Error
		if errors.As(err, &ge) {
			e.RetryAfter = ge.RetryAfter
		}
	case KindBadRequest:
		e.Code, e.Message = apperr.InvalidRequest, "Gmail refused the query or page token"
	default:
		e.Code, e.Message = apperr.UpstreamUnavailable, "Gmail did not answer; try again shortly"
	}
	return e
}
