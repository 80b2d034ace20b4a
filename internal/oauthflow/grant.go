package oauthflow

import (
	"context"
	"errors"

	"example.com/gmailoauth/internal/store"
)

// CheckGrant reports whether userID's grant is stored and active, without
// calling the provider, and returns its id: the reauthorization_required
// error the functions answer for a missing or revoked grant, and, when ctx
// carries a session's grant (WithSessionGrant) that is no longer the stored
// one, invalid_session, as AccessToken does. Reads that need no Gmail call
// (the mirror) check it so that a user who disconnected, or whose grant was
// found revoked, is refused as Gmail would refuse them.
func (f *Flow) CheckGrant(ctx context.Context, userID string) (string, error) {
	c, err := f.Store.GetCredential(ctx, userID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", errNoGrant()
	case err != nil:
		return "", err
	}
	if grant, ok := ctx.Value(sessionGrantKey{}).(string); ok && c.Grant != grant {
		return "", errStaleSession()
	}
	if c.Status != store.StatusActive {
		return "", errRevoked(c)
	}
	return c.Grant, nil
}
