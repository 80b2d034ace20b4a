package oauthflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"example.com/gmailoauth/internal/events"
	"example.com/gmailoauth/internal/keyset"
	"example.com/gmailoauth/internal/store"
)

// RevokeResult says what a disconnect could do at the provider.
type RevokeResult struct {
	// Unrevoked is set when a refresh token was stored but could not be
	// read (its key was retired, or the document is damaged), so the
	// provider was not asked to revoke it: the stored grant is deleted all
	// the same, and the user should remove the app in their account.
	Unrevoked bool
}

// Revoke revokes userID's grant at the provider's revocation endpoint, then
// deletes the stored credential and synced mailbox, for the holder of a
// session of grant (another stored grant is invalid_session: an old session
// cannot disconnect a newer connection). Whatever the stored status, a
// stored refresh token is revoked: a grant marked revoked because Gmail
// refused a token may still be valid at the provider. It is idempotent: a
// user with nothing stored, or whose token the provider no longer knows, is
// fine. When the provider cannot be reached, or refuses, the credential is
// kept, so the call can be retried; when the token cannot be decrypted, it
// is deleted anyway and the result says so.
func (f *Flow) Revoke(ctx context.Context, userID, grant string) (RevokeResult, error) {
	var res RevokeResult
	c, err := f.Store.GetCredential(ctx, userID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return res, f.Store.DeleteMailbox(ctx, userID)
	case err != nil:
		return res, err
	}
	if c.Grant != grant {
		return res, errStaleSession()
	}
	if !c.RefreshToken.IsZero() {
		rt, err := f.open(ctx, userID, FieldRefreshToken, c.RefreshToken)
		switch {
		case errors.Is(err, keyset.ErrUnknownKey) || errors.Is(err, keyset.ErrOpen):
			res.Unrevoked = true
			f.logger().WarnContext(ctx, "the stored refresh token cannot be decrypted; deleting the grant without revoking it at the provider",
				slog.String("user_id", userID), slog.String("error", err.Error()))
		case err != nil:
			return res, err
		default:
			if err := f.revokeAtProvider(ctx, rt); err != nil {
				return res, upstreamErr("token revocation", err)
			}
		}
	}
	now := f.Now()
	if _, err := f.Store.ChangeCredential(ctx, userID, func(cur *store.Credential) (*store.CredentialChange, error) {
		if cur == nil {
			return nil, nil
		}
		return &store.CredentialChange{Delete: true,
			Events: f.grantEvents(events.Disconnected(events.User{ID: userID, Email: cur.Email}, now))}, nil
	}); err != nil {
		return res, err
	}
	if err := f.Store.DeleteMailbox(ctx, userID); err != nil {
		return res, err
	}
	f.logger().InfoContext(ctx, "user disconnected", slog.String("user_id", userID), slog.Bool("revoked_at_provider", !res.Unrevoked))
	f.afterEvents(ctx, userID)
	return res, nil
}

// revokeAtProvider posts the token to the revocation endpoint (RFC 7009).
// 200 and invalid_token (already revoked or expired) both mean done.
func (f *Flow) revokeAtProvider(ctx context.Context, token string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.RevokeURL, strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		return &UpstreamError{Op: "token revocation", Err: errors.New("bad revocation URL")}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := f.HTTPClient.Do(req)
	if err != nil {
		return &UpstreamError{Op: "token revocation", Temporary: true, Err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	if resp.StatusCode == http.StatusBadRequest && (e.Error == "invalid_token" || e.Error == "invalid_grant") {
		return nil
	}
	// The answer is summarised, never echoed: its status, and its error
	// code only when it has the shape of one (RFC 6749 section 5.2).
	summary := fmt.Sprintf("revocation endpoint answered %d", resp.StatusCode)
	if errorCodeRE.MatchString(e.Error) {
		summary += " " + e.Error
	}
	return &UpstreamError{Op: "token revocation", Temporary: resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests,
		Err: errors.New(summary)}
}
