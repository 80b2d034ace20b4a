package gmail

import (
	"context"
	"errors"
	"net/http"
	"sync"
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
	Retry Retry
	// Patience is the longest a call waits for the budget (the user's,
	// the project's, a slot among the user's concurrent calls, or a pause
	// Gmail asked for) before Do answers rate_limited with the wait as its
	// Retry-After; 0 means as long as the context allows. A person waits
	// on the frontend's calls: DefaultPatience.
	Patience time.Duration
	// MaxConcurrentPerUser bounds the calls of one user in flight at once
	// through this Service (0 = no bound), so one user cannot hold the
	// instance's capacity.
	MaxConcurrentPerUser int
	Tokens               Tokens
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	slotsMu sync.Mutex
	slots   map[string]*userSlots
}

type userSlots struct {
	ch   chan struct{}
	refs int
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
	return s.DoCost(ctx, userID, 0, fn)
}

// DoCost is Do for a call whose cost is known before it starts: units are
// taken from the user's and the project's budgets at once, before anything
// else happens, and fn's requests draw on them (what they leave is given
// back). When the budgets cannot hold units within s.Patience, DoCost
// answers rate_limited with the wait as Retry-After, having sent nothing.
// units must not exceed the Transport's UserBurst.
func (s *Service) DoCost(ctx context.Context, userID string, units int, fn func(ctx context.Context, c *Client) error) error {
	start := s.now()
	release, err := s.slot(ctx, userID, units)
	if err != nil {
		return AppError(err)
	}
	defer release()
	ctx = WithRetry(WithUser(ctx, userID), s.Retry)
	if s.Patience > 0 {
		ctx = WithPatience(ctx, max(time.Millisecond, s.Patience-s.now().Sub(start)))
	}
	if q := s.quota(); q != nil && units > 0 {
		pctx, done, err := q.prepay(ctx, userID, units)
		if err != nil {
			return AppError(err)
		}
		defer done()
		ctx = pctx
	}
	if s.Patience > 0 {
		ctx = WithPatience(ctx, s.Patience)
	}
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

// UserBurst returns how many units one user may spend at once (0: no
// bound): no single DoCost may ask for more.
func (s *Service) UserBurst() int {
	if q := s.quota(); q != nil {
		return q.UserBurst()
	}
	return 0
}

func (s *Service) quota() *Transport {
	if s.HTTP == nil {
		return nil
	}
	t, _ := s.HTTP.Transport.(*Transport)
	return t
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// slot waits (within s.Patience) until fewer than MaxConcurrentPerUser
// calls of userID are in flight, and takes a place among them. When none
// frees in time it fails with a *BudgetError whose wait is the user's
// budget's for units (at least a second).
func (s *Service) slot(ctx context.Context, userID string, units int) (release func(), err error) {
	if s.MaxConcurrentPerUser <= 0 {
		return func() {}, nil
	}
	s.slotsMu.Lock()
	if s.slots == nil {
		s.slots = map[string]*userSlots{}
	}
	us := s.slots[userID]
	if us == nil {
		us = &userSlots{ch: make(chan struct{}, s.MaxConcurrentPerUser)}
		s.slots[userID] = us
	}
	us.refs++
	s.slotsMu.Unlock()
	drop := func() {
		s.slotsMu.Lock()
		if us.refs--; us.refs == 0 {
			delete(s.slots, userID)
		}
		s.slotsMu.Unlock()
	}
	var timeout <-chan time.Time
	if s.Patience > 0 {
		tm := time.NewTimer(s.Patience)
		defer tm.Stop()
		timeout = tm.C
	}
	select {
	case us.ch <- struct{}{}:
		return func() { <-us.ch; drop() }, nil
	case <-ctx.Done():
		drop()
		return nil, ctx.Err()
	case <-timeout:
		drop()
		wait := time.Second
		if q := s.quota(); q != nil {
			wait = max(wait, q.readyIn(userID, float64(units)))
		}
		return nil, &BudgetError{Limit: LimitConcurrency, Wait: wait}
	}
}

// AppError returns err as the contract sees a Gmail failure: a missing
// scope is insufficient_scope; a spent quota rate_limited, with the wait
// as Retry-After (the budget's own, or Gmail's), and a message that says
// whose limit it was; a refused query or page token invalid_request;
// anything else upstream_unavailable. An error that already carries a
// code, or nil, is returned as is.
func AppError(err error) error {
	if err == nil || apperr.As(err) != nil {
		return err
	}
	e := &apperr.Error{Cause: err}
	var be *BudgetError
	switch {
	case errors.As(err, &be):
		e.Code, e.RetryAfter = apperr.RateLimited, max(time.Second, be.Wait)
		switch be.Limit {
		case LimitConcurrency:
			e.Message = "too many requests for this user at once; retry after Retry-After seconds"
		case LimitProject:
			e.Message = "the app's Gmail quota for this minute is spent; retry after Retry-After seconds"
		case LimitGmail:
			e.Message = "Gmail's quota for this user is exhausted; retry after Retry-After seconds"
		default:
			e.Message = "this user's Gmail quota for this minute is spent; retry after Retry-After seconds"
		}
		return e
	}
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
