package oauthflow

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"example.com/gmailoauth/internal/httpx"
	"example.com/gmailoauth/internal/store"
)

// Input limits of the callback's query parameters.
const (
	MaxState = 128
	MaxCode  = 2048
)

// CallbackRequest is the query of the provider's redirect to the callback.
type CallbackRequest struct {
	State string
	Code  string
	Error string
}

// CallbackResult is a connected user with a fresh session. On failure after
// the state was consumed, Callback returns it too (with only ReturnTo and
// ClientState set) so the browser can be sent back to the frontend.
type CallbackResult struct {
	UserID           string    `json:"user_id"`
	Email            string    `json:"email"`
	Session          string    `json:"session"`
	SessionExpiresAt time.Time `json:"session_expires_at"`
	Scopes           []string  `json:"scopes"`

	ReturnTo    string `json:"-"`
	ClientState string `json:"-"`
}

var (
	stateRE     = regexp.MustCompile(`^[A-Za-z0-9_-]{16,128}$`)
	codeRE      = regexp.MustCompile(`^[\x21-\x7e]+$`)
	errorCodeRE = regexp.MustCompile(`^[a-z_]{1,64}$`)
)

var errNoRefreshToken = errors.New("no refresh token returned and none stored")

// Callback completes an authorization: it consumes the state, exchanges the
// code with the PKCE verifier, verifies the ID token, checks the granted
// scopes and stores the grant.
func (f *Flow) Callback(ctx context.Context, req CallbackRequest) (*CallbackResult, error) {
	if req.State == "" || len(req.State) > MaxState || !stateRE.MatchString(req.State) {
		return nil, &httpx.Error{Status: http.StatusBadRequest, Code: "invalid_state",
			Message: "state is missing or malformed; start again from Authorize"}
	}
	st, err := f.Store.ConsumeState(ctx, StateKey(req.State), f.Now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, &httpx.Error{Status: http.StatusBadRequest, Code: "invalid_state",
			Message: "state is unknown or was already used; start again from Authorize"}
	case errors.Is(err, store.ErrStateExpired):
		return nil, &httpx.Error{Status: http.StatusBadRequest, Code: "expired_state",
			Message: "the authorization took longer than 10 minutes; start again from Authorize"}
	case err != nil:
		return nil, storeError(err)
	}
	back := &CallbackResult{ReturnTo: st.ReturnTo, ClientState: st.ClientState}
	retryURL := func() string { return f.ReauthURL(ctx, st.LoginHint, st.ReturnTo) }

	if req.Error != "" {
		code := req.Error
		if !errorCodeRE.MatchString(code) {
			code = "authorization_error"
		}
		status := http.StatusBadRequest
		msg := "the provider answered " + code
		if code == "access_denied" {
			status = http.StatusForbidden
			msg = "the user declined access"
		}
		return back, &httpx.Error{Status: status, Code: code, Message: msg, AuthorizationURL: retryURL()}
	}
	if req.Code == "" || len(req.Code) > MaxCode || !codeRE.MatchString(req.Code) {
		return back, &httpx.Error{Status: http.StatusBadRequest, Code: "missing_code",
			Message: "the callback carries no valid authorization code", AuthorizationURL: retryURL()}
	}

	tok, err := f.OAuth.Exchange(f.clientCtx(ctx), req.Code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		if isInvalidGrant(err) {
			return back, &httpx.Error{Status: http.StatusBadRequest, Code: "invalid_grant",
				Message: "the authorization code is invalid, expired or already used; start again", AuthorizationURL: retryURL(),
				Cause: upstream("code exchange", err)}
		}
		return back, upstreamHTTP("code exchange", upstream("code exchange", err))
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return back, upstreamHTTP("code exchange", &UpstreamError{Op: "code exchange", Err: errors.New("no id_token in the token response (is the openid scope requested?)")})
	}
	idt, err := f.VerifyIDToken(ctx, rawID, f.OAuth.ClientID)
	if err != nil {
		return back, upstreamHTTP("ID token verification", &UpstreamError{Op: "ID token verification", Temporary: IsTemporary(err), Err: err})
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
		Nonce         string `json:"nonce"`
	}
	if err := idt.Claims(&claims); err != nil || claims.Nonce != st.Nonce {
		return back, &httpx.Error{Status: http.StatusBadGateway, Code: "invalid_id_token",
			Message: "the identity provider's ID token did not match this authorization"}
	}
	userID := idt.Subject
	granted := grantedScopes(tok, st.Scopes)
	if !HasGmailRead(granted) {
		return back, &httpx.Error{Status: http.StatusForbidden, Code: "insufficient_scope",
			Message:          "Gmail read access was not granted; tick the Gmail box on the consent screen",
			AuthorizationURL: f.ReauthURL(ctx, firstNonEmpty(claims.Email, userID), st.ReturnTo)}
	}

	now := f.Now()
	newRefresh, err := f.sealFor(userID, FieldRefreshToken, tok.RefreshToken)
	if err != nil {
		return back, err
	}
	access, err := f.sealFor(userID, FieldAccessToken, tok.AccessToken)
	if err != nil {
		return back, err
	}
	_, err = f.Store.UpdateCredential(ctx, userID, func(cur *store.Credential) (*store.Credential, error) {
		c := cur
		switch {
		case !newRefresh.IsZero():
			if c == nil {
				c = &store.Credential{CreatedAt: now}
			}
			c.RefreshToken = newRefresh
		case c != nil && c.Status == store.StatusActive && !c.RefreshToken.IsZero():
			// A repeat consent: keep the stored refresh token.
		default:
			return nil, errNoRefreshToken
		}
		c.Email = claims.Email
		c.AccessToken = access
		c.AccessTokenExpiry = f.expiryOf(tok)
		c.Scopes = granted
		c.Status = store.StatusActive
		c.RevokedAt, c.RevokedReason = time.Time{}, ""
		c.RefreshLeaseOwner, c.RefreshLeaseUntil = "", time.Time{}
		c.UpdatedAt = now
		c.LastRefreshAt = now
		return c, nil
	})
	if errors.Is(err, errNoRefreshToken) {
		return back, &httpx.Error{Status: http.StatusConflict, Code: "no_refresh_token",
			Message:          "Google returned no refresh token and none is stored; consent again to grant offline access",
			AuthorizationURL: f.ReauthURL(ctx, firstNonEmpty(claims.Email, userID), st.ReturnTo)}
	}
	if err != nil {
		return back, storeError(err)
	}
	sess, exp, err := f.Sessions.Issue(userID, claims.Email)
	if err != nil {
		return back, err
	}
	f.logger().InfoContext(ctx, "user connected", slog.String("user_id", userID),
		slog.Bool("new_refresh_token", tok.RefreshToken != ""), slog.Int("scopes", len(granted)))
	return &CallbackResult{
		UserID: userID, Email: claims.Email, Session: sess, SessionExpiresAt: exp, Scopes: granted,
		ReturnTo: st.ReturnTo, ClientState: st.ClientState,
	}, nil
}

// grantedScopes returns the scopes the token response says were granted
// (RFC 6749 §5.1: when absent, they are the requested ones).
func grantedScopes(tok *oauth2.Token, requested []string) []string {
	s, _ := tok.Extra("scope").(string)
	if strings.TrimSpace(s) == "" {
		return append([]string(nil), requested...)
	}
	return strings.Fields(s)
}

// upstreamHTTP maps a provider failure to 503 (temporary) or 502.
func upstreamHTTP(op string, err error) error {
	if IsTemporary(err) {
		return &httpx.Error{Status: http.StatusServiceUnavailable, Code: "upstream_unavailable",
			Message: "Google did not answer in time (" + op + "); try again shortly", RetryAfter: 5 * time.Second, Cause: err}
	}
	return &httpx.Error{Status: http.StatusBadGateway, Code: "upstream_error",
		Message: "Google refused the request (" + op + ")", Cause: err}
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
