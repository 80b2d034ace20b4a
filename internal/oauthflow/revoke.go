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

	"example.com/gmailoauth/internal/store"
)

// Revoke revokes userID's grant at the provider's revocation endpoint, then
// deletes the stored credential and synced mailbox, for the holder of a
// session of grant (another stored grant is invalid_session: an old session
// cannot disconnect a newer connection). It is idempotent: a user with
// nothing stored, or whose token the provider no longer knows, is fine.
// When the provider cannot be reached the credential is kept, so the call
// can be retried.
func (f *Flow) Revoke(ctx context.Context, userID, grant string) error {
	c, err := f.Store.GetCredential(ctx, userID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return f.Store.DeleteMailbox(ctx, userID)
	case err != nil:
		return err
	}
	if c.Grant != grant {
		return errStaleSession()
	}
	if c.Status == store.StatusActive && !c.RefreshToken.IsZero() {
		rt, err := f.open(ctx, userID, FieldRefreshToken, c.RefreshToken)
		if err != nil {
			return err
		}
		if err := f.revokeAtProvider(ctx, rt); err != nil {
			return upstreamErr("token revocation", err)
		}
	}
	if err := f.Store.DeleteCredential(ctx, userID); err != nil {
		return err
	}
	if err := f.Store.DeleteMailbox(ctx, userID); err != nil {
		return err
	}
	f.logger().InfoContext(ctx, "user disconnected", slog.String("user_id", userID))
	return nil
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
	return &UpstreamError{Op: "token revocation", Temporary: resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests,
		Err: fmt.Errorf("revocation endpoint answered %d %s", resp.StatusCode, e.Error)}
}
