package oauthflow

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"golang.org/x/oauth2"

	"example.com/gmailoauth/internal/apperr"
	"example.com/gmailoauth/internal/events"
	"example.com/gmailoauth/internal/keyset"
	"example.com/gmailoauth/internal/store"
)

// AccessToken returns a valid access token for userID, refreshing it when it
// expires within the skew. Refreshes are single-flight: within an instance
// through a singleflight group, across instances through a short lease taken
// in a store transaction (the lease holder alone calls the token endpoint;
// the others wait and re-read its result). Errors are *apperr.Error values:
// reauthorization_required means the user must consent again; one for
// which apperr.Temporary holds is worth a retry.
//
// When ctx carries a session's grant (WithSessionGrant) and the user's
// stored grant is another one (they disconnected, and perhaps connected
// again, since the session was issued), it is invalid_session.
func (f *Flow) AccessToken(ctx context.Context, userID string) (string, error) {
	grant, ok := ctx.Value(sessionGrantKey{}).(string)
	if !ok {
		return f.accessToken(ctx, userID, nil)
	}
	return f.accessToken(ctx, userID, &grant)
}

// sessionGrantKey carries a session's grant in a context.
type sessionGrantKey struct{}

// WithSessionGrant returns ctx carrying the grant of the session a request
// came with: AccessToken, reached through gmail.Service, then serves only
// that grant, so a session issued before a disconnect is dead even once the
// user connects again.
func WithSessionGrant(ctx context.Context, grant string) context.Context {
	return context.WithValue(ctx, sessionGrantKey{}, grant)
}

// errStaleSession is the error of a session whose grant is no longer the
// stored one.
func errStaleSession() *apperr.Error {
	return apperr.New(apperr.InvalidSession, "the session belongs to an earlier connection of this account; connect again")
}

// newGrantID returns a fresh grant id (128 random bits).
func newGrantID() string { return randomToken(16) }

func (f *Flow) accessToken(ctx context.Context, userID string, grant *string) (string, error) {
	c, err := f.Store.GetCredential(ctx, userID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", errNoGrant()
		}
		return "", err
	}
	if grant != nil && c.Grant != *grant {
		return "", errStaleSession()
	}
	if c.Status != store.StatusActive {
		return "", errRevoked(c)
	}
	if f.fresh(c) {
		return f.open(ctx, userID, FieldAccessToken, c.AccessToken)
	}
	// One refresh per user per instance; it outlives a caller that gives up.
	ch := f.refreshes.DoChan(userID, func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshLimit)
		defer cancel()
		return f.refresh(rctx, userID)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// fresh reports whether c's access token is valid beyond the skew.
func (f *Flow) fresh(c *store.Credential) bool {
	return !c.AccessToken.IsZero() && f.Now().Add(expirySkew).Before(c.AccessTokenExpiry)
}

func (f *Flow) refresh(ctx context.Context, userID string) (string, error) {
	owner := f.InstanceID + "/" + randomToken(8)
	wait := 25 * time.Millisecond
	for {
		var acquired bool
		c, err := f.Store.UpdateCredential(ctx, userID, func(cur *store.Credential) (*store.Credential, error) {
			acquired = false
			now := f.Now()
			switch {
			case cur == nil:
				return nil, store.ErrNotFound
			case cur.Status != store.StatusActive, f.fresh(cur):
				return nil, nil
			case cur.RefreshLeaseOwner != "" && now.Before(cur.RefreshLeaseUntil):
				return nil, nil // someone else is refreshing
			}
			cur.RefreshLeaseOwner = owner
			cur.RefreshLeaseUntil = now.Add(leaseTTL)
			acquired = true
			return cur, nil
		})
		switch {
		case errors.Is(err, store.ErrNotFound):
			return "", errNoGrant()
		case err != nil:
			return "", err
		case c.Status != store.StatusActive:
			return "", errRevoked(c)
		case f.fresh(c):
			return f.open(ctx, userID, FieldAccessToken, c.AccessToken)
		case acquired:
			return f.refreshAsOwner(ctx, c, owner)
		}
		// Another instance holds the lease: wait for its result.
		t := time.NewTimer(wait + time.Duration(rand.Int64N(int64(wait))))
		select {
		case <-ctx.Done():
			t.Stop()
			return "", upstreamErr("waiting for another instance's token refresh", ctx.Err())
		case <-t.C:
		}
		wait = min(wait*2, 400*time.Millisecond)
	}
}

// refreshAsOwner calls the token endpoint while holding the lease and writes
// the result back. A refresh response without a refresh token keeps the
// stored one; invalid_grant marks the grant revoked.
func (f *Flow) refreshAsOwner(ctx context.Context, c *store.Credential, owner string) (string, error) {
	userID := c.UserID
	rt, err := f.open(ctx, userID, FieldRefreshToken, c.RefreshToken)
	if err != nil {
		f.releaseLease(ctx, userID, owner)
		return "", err
	}
	src := f.OAuth.TokenSource(f.clientCtx(ctx), &oauth2.Token{RefreshToken: rt})
	tok, err := src.Token()
	if err != nil {
		if isInvalidGrant(err) {
			if merr := f.MarkRevoked(ctx, userID, "invalid_grant: the refresh token was revoked or expired"); merr != nil {
				return "", merr
			}
			return "", reauth("the refresh token was revoked or expired")
		}
		f.releaseLease(ctx, userID, owner)
		// Not logged here: whoever asked for the token logs the failure once
		// (the request line, or the sweep's line for the user).
		return "", upstreamErr("token refresh", err)
	}
	if terr := checkTokenType(tok); terr != nil {
		f.releaseLease(ctx, userID, owner)
		f.logger().WarnContext(ctx, "token refresh refused", slog.String("user_id", userID), slog.String("error", describe(terr.Cause)))
		return "", terr
	}
	access, err := f.sealFor(userID, FieldAccessToken, tok.AccessToken)
	if err != nil {
		return "", err
	}
	var newRefresh store.Sealed
	if tok.RefreshToken != "" && (tok.RefreshToken != rt || needsReseal(f.Keys(), c.RefreshToken)) {
		if newRefresh, err = f.sealFor(userID, FieldRefreshToken, tok.RefreshToken); err != nil {
			return "", err
		}
	}
	now := f.Now()
	stored, err := f.Store.UpdateCredential(ctx, userID, func(cur *store.Credential) (*store.Credential, error) {
		if cur == nil {
			return nil, store.ErrNotFound // disconnected meanwhile: write nothing back
		}
		if cur.Status != store.StatusActive {
			return nil, nil // revoked meanwhile: keep it revoked
		}
		cur.AccessToken = access
		cur.AccessTokenExpiry = f.expiryOf(tok)
		if !newRefresh.IsZero() {
			cur.RefreshToken = newRefresh
		}
		if cur.Grant == "" {
			// Stored before grants had ids: give it one, so the sync's
			// writes are held to it from now on.
			cur.Grant = newGrantID()
		}
		cur.LastRefreshAt = now
		cur.UpdatedAt = now
		if cur.RefreshLeaseOwner == owner {
			cur.RefreshLeaseOwner, cur.RefreshLeaseUntil = "", time.Time{}
		}
		return cur, nil
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", reauth("the user disconnected")
	case err != nil:
		return "", err
	case stored.Status != store.StatusActive:
		return "", errRevoked(stored)
	}
	return tok.AccessToken, nil
}

func (f *Flow) releaseLease(ctx context.Context, userID, owner string) {
	_, _ = f.Store.UpdateCredential(ctx, userID, func(cur *store.Credential) (*store.Credential, error) {
		if cur == nil || cur.RefreshLeaseOwner != owner {
			return nil, nil
		}
		cur.RefreshLeaseOwner, cur.RefreshLeaseUntil = "", time.Time{}
		return cur, nil
	})
}

// MarkRevoked marks userID's grant revoked with a reason, keeping the
// document (and dropping the access token), so support can see what
// happened and when. Marking a missing or already revoked grant is a no-op.
func (f *Flow) MarkRevoked(ctx context.Context, userID, reason string) error {
	now := f.Now()
	changed := false
	_, err := f.Store.ChangeCredential(ctx, userID, func(cur *store.Credential) (*store.CredentialChange, error) {
		changed = false
		if cur == nil || cur.Status == store.StatusRevoked {
			return nil, nil
		}
		cur.Status = store.StatusRevoked
		cur.RevokedAt = now
		cur.RevokedReason = reason
		cur.UpdatedAt = now
		cur.AccessToken = store.Sealed{}
		cur.AccessTokenExpiry = time.Time{}
		cur.RefreshLeaseOwner, cur.RefreshLeaseUntil = "", time.Time{}
		changed = true
		return &store.CredentialChange{Credential: cur,
			Events: f.grantEvents(events.Revoked(events.User{ID: userID, Email: cur.Email}, now, reason))}, nil
	})
	if err == nil && changed {
		f.logger().WarnContext(ctx, "grant marked revoked", slog.String("user_id", userID), slog.String("reason", reason))
		f.afterEvents(ctx, userID)
	}
	return err
}

// ExpireAccessToken forgets the stored access token's validity so the next
// AccessToken refreshes it (used when Gmail answers 401 to a token that
// should still be valid).
func (f *Flow) ExpireAccessToken(ctx context.Context, userID string) error {
	_, err := f.Store.UpdateCredential(ctx, userID, func(cur *store.Credential) (*store.Credential, error) {
		if cur == nil || cur.AccessTokenExpiry.IsZero() {
			return nil, nil
		}
		cur.AccessTokenExpiry = time.Time{}
		return cur, nil
	})
	return err
}

// Reseal re-encrypts userID's tokens with the primary key when they were
// sealed with an older one (after a key rotation). It reports whether it
// wrote anything.
func (f *Flow) Reseal(ctx context.Context, userID string) (bool, error) {
	ks := f.Keys()
	wrote := false
	_, err := f.Store.UpdateCredential(ctx, userID, func(cur *store.Credential) (*store.Credential, error) {
		wrote = false
		if cur == nil || (!needsReseal(ks, cur.RefreshToken) && !needsReseal(ks, cur.AccessToken)) {
			return nil, nil
		}
		for _, fld := range []struct {
			name string
			s    *store.Sealed
		}{{FieldRefreshToken, &cur.RefreshToken}, {FieldAccessToken, &cur.AccessToken}} {
			if !needsReseal(ks, *fld.s) {
				continue
			}
			pt, err := ks.Open(keyset.Sealed(*fld.s), userID, fld.name)
			if err != nil {
				return nil, err
			}
			sealed, err := ks.Seal(pt, userID, fld.name)
			if err != nil {
				return nil, err
			}
			*fld.s = store.Sealed(sealed)
		}
		cur.UpdatedAt = f.Now()
		wrote = true
		return cur, nil
	})
	return wrote, err
}

// errNoGrant is the error for a user with nothing stored.
func errNoGrant() *apperr.Error { return reauth("no grant is stored for this user") }

// errRevoked is the error for a credential marked revoked.
func errRevoked(c *store.Credential) *apperr.Error {
	return reauth("the grant was revoked (" + c.RevokedReason + ")")
}
