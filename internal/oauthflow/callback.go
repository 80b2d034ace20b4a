package oauthflow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"example.com/gmailoauth/internal/apperr"
	"example.com/gmailoauth/internal/events"
	"example.com/gmailoauth/internal/gmail"
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
	// Issuer is the response's iss parameter (RFC 9207), "" when absent.
	Issuer string
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

var errNoRefreshToken = errors.New("no refresh token returned and none is stored")

// Callback completes an authorization: it consumes the state, exchanges the
// code with the PKCE verifier, verifies the ID token, checks the granted
// scopes and stores the grant. Every error is an *apperr.Error; once the
// state is consumed the result is returned too, with only ReturnTo and
// ClientState set, so the browser can be sent back to the frontend.
func (f *Flow) Callback(ctx context.Context, req CallbackRequest) (*CallbackResult, error) {
	st, err := f.consumeState(ctx, req.State)
	if err != nil {
		return nil, err
	}
	back := &CallbackResult{ReturnTo: st.ReturnTo, ClientState: st.ClientState}
	if err := f.checkRedirect(ctx, st, req); err != nil {
		return back, err
	}
	tok, id, err := f.exchange(ctx, st, req.Code)
	if err != nil {
		return back, err
	}
	granted := grantedScopes(tok, st.Scopes)
	if !gmail.CanList(granted) {
		return back, &apperr.Error{Code: apperr.InsufficientScope,
			Message:          "Gmail read access was not granted; tick the Gmail box on the consent screen",
			AuthorizationURL: f.ReauthURL(ctx, firstNonEmpty(id.email, id.userID), st.ReturnTo)}
	}
	grant, err := f.storeGrant(ctx, id, tok, granted)
	if err != nil {
		if errors.Is(err, errNoRefreshToken) {
			return back, &apperr.Error{Code: apperr.NoRefreshToken,
				Message:          "Google returned no refresh token and none is stored; consent again to grant offline access",
				AuthorizationURL: f.ReauthURL(ctx, firstNonEmpty(id.email, id.userID), st.ReturnTo)}
		}
		return back, err
	}
	sess, exp, err := f.Sessions.Issue(id.userID, id.email, grant)
	if err != nil {
		return back, err
	}
	f.logger().InfoContext(ctx, "user connected", slog.String("user_id", id.userID),
		slog.Bool("new_refresh_token", tok.RefreshToken != ""), slog.Int("scopes", len(granted)))
	return &CallbackResult{
		UserID: id.userID, Email: id.email, Session: sess, SessionExpiresAt: exp, Scopes: granted,
		ReturnTo: st.ReturnTo, ClientState: st.ClientState,
	}, nil
}

// consumeState checks the state's shape and consumes it: single use,
// whatever happens next.
func (f *Flow) consumeState(ctx context.Context, state string) (*store.AuthState, error) {
	if state == "" || len(state) > MaxState || !stateRE.MatchString(state) {
		return nil, apperr.New(apperr.InvalidState, "state is missing or malformed; start again from Authorize")
	}
	st, err := f.Store.ConsumeState(ctx, StateKey(state), f.Now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, apperr.New(apperr.InvalidState, "state is unknown or was already used; start again from Authorize")
	case errors.Is(err, store.ErrStateExpired):
		return nil, apperr.Errorf(apperr.ExpiredState, "the authorization took longer than %s; start again from Authorize", stateTTL)
	case err != nil:
		return nil, err
	}
	return st, nil
}

// checkRedirect refuses a redirect that carries the provider's error= or no
// usable code; the answer offers a fresh authorization URL.
func (f *Flow) checkRedirect(ctx context.Context, st *store.AuthState, req CallbackRequest) error {
	retryURL := func() string { return f.ReauthURL(ctx, st.LoginHint, st.ReturnTo) }
	if req.Issuer != "" && req.Issuer != f.Issuer {
		// RFC 9207: a response naming another issuer is a mix-up (an answer
		// of another provider, replayed here); nothing of it is used.
		return &apperr.Error{Code: apperr.InvalidRequest, RetryAfter: apperr.NoRetry,
			Message: "the authorization response names another issuer (iss); start again from Authorize", AuthorizationURL: retryURL()}
	}
	if req.Error != "" {
		code, msg := apperr.AuthorizationError, "the provider answered an error"
		switch {
		case req.Error == "access_denied":
			code, msg = apperr.AccessDenied, "the user declined access"
		case errorCodeRE.MatchString(req.Error):
			// The provider's own code (RFC 6749 §4.1.2.1) is passed through.
			code, msg = apperr.Code(req.Error), "the provider answered "+req.Error
		}
		return &apperr.Error{Code: code, Message: msg, AuthorizationURL: retryURL()}
	}
	if req.Code == "" || len(req.Code) > MaxCode || !codeRE.MatchString(req.Code) {
		return &apperr.Error{Code: apperr.MissingCode,
			Message: "the callback carries no valid authorization code", AuthorizationURL: retryURL()}
	}
	return nil
}

// identity is who the ID token says the user is.
type identity struct {
	userID string // the ID token's sub
	email  string
}

// exchange redeems the code with the PKCE verifier and verifies the ID token
// of the answer against the state's nonce. The state is spent by now, so a
// failure tells the user to start again rather than to retry.
func (f *Flow) exchange(ctx context.Context, st *store.AuthState, code string) (*oauth2.Token, identity, error) {
	startAgain := func(e *apperr.Error) *apperr.Error {
		// "Try again shortly" holds for the provider, not for this state.
		e.Message = strings.TrimSuffix(e.Message, "; try again shortly") + "; start again from Authorize"
		e.AuthorizationURL = f.ReauthURL(ctx, st.LoginHint, st.ReturnTo)
		e.RetryAfter = apperr.NoRetry
		return e
	}
	tok, err := f.OAuth.Exchange(f.clientCtx(ctx), code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		if isInvalidGrant(err) {
			return nil, identity{}, startAgain(apperr.Wrap(apperr.InvalidGrant,
				"the authorization code is invalid, expired or already used", upstream("code exchange", err)))
		}
		return nil, identity{}, startAgain(upstreamErr("code exchange", err))
	}
	if err := checkTokenType(tok); err != nil {
		return nil, identity{}, startAgain(err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return nil, identity{}, startAgain(apperr.Wrap(apperr.InvalidIDToken,
			"the token response carries no ID token", errors.New("no id_token in the token response (is the openid scope requested?)")))
	}
	idt, err := f.VerifyIDToken(ctx, rawID, f.OAuth.ClientID)
	if err != nil {
		if apperr.Temporary(err) {
			return nil, identity{}, startAgain(apperr.As(err))
		}
		return nil, identity{}, startAgain(apperr.Wrap(apperr.InvalidIDToken,
			"the identity provider's ID token does not verify", err))
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
		Nonce         string `json:"nonce"`
		AZP           string `json:"azp"`
	}
	if err := idt.Claims(&claims); err != nil || claims.Nonce != st.Nonce {
		return nil, identity{}, startAgain(apperr.New(apperr.InvalidIDToken,
			"the identity provider's ID token did not match this authorization"))
	}
	if reason := f.checkIDTokenClaims(idt.Subject, idt.IssuedAt, idt.Audience, claims.AZP); reason != "" {
		return nil, identity{}, startAgain(apperr.Wrap(apperr.InvalidIDToken,
			"the identity provider's ID token is not acceptable", errors.New(reason)))
	}
	email := claims.Email
	if !claims.EmailVerified {
		// An address the provider has not verified says nothing about who
		// the user is: it is neither stored nor put in the session.
		email = ""
	}
	return tok, identity{userID: idt.Subject, email: email}, nil
}

// subRE is what a user id (the ID token's sub) may be: 1 to 255 visible
// ASCII characters (OpenID Connect Core 2), without "/", which no store
// document id may hold.
var subRE = regexp.MustCompile(`^[\x21-\x2e\x30-\x7e]{1,255}$`)

// checkIDTokenClaims holds a verified ID token to the rest of OpenID
// Connect Core 3.1.3.7 (go-oidc checked the signature, iss, aud and exp): a
// user id (sub) and an issue time (iat) are required, and azp must be this
// client when it is present or when the token has several audiences. It
// returns why the token is refused, or "".
func (f *Flow) checkIDTokenClaims(sub string, iat time.Time, aud []string, azp string) string {
	switch {
	case !subRE.MatchString(sub):
		return "the ID token names no valid user (sub)"
	case iat.IsZero():
		return "the ID token has no issue time (iat)"
	case (azp != "" || len(aud) > 1) && azp != f.OAuth.ClientID:
		return "the ID token was issued to another party (azp)"
	}
	return ""
}

// checkTokenType refuses a token response whose token_type is not Bearer
// (RFC 6749 section 7.1: a client must not use a token whose type it does
// not understand; RFC 6750 is the only type this client speaks).
func checkTokenType(tok *oauth2.Token) *apperr.Error {
	if strings.EqualFold(tok.TokenType, "bearer") {
		return nil
	}
	tt := tok.TokenType
	if !errorCodeRE.MatchString(strings.ToLower(tt)) {
		tt = "(none or unreadable)"
	}
	return apperr.Wrap(apperr.UpstreamError, "the token endpoint answered a token that is not a Bearer token",
		fmt.Errorf("token_type %s", tt))
}

// storeGrant seals the tokens and stores the grant in one transaction, and
// returns the grant's id. A response without a refresh token keeps the
// stored one (a repeat consent); with none stored either it is
// errNoRefreshToken. A new connection, or one after the grant was revoked,
// gets a new grant id, which ends the sessions of the one before.
func (f *Flow) storeGrant(ctx context.Context, id identity, tok *oauth2.Token, granted []string) (string, error) {
	newRefresh, err := f.sealFor(id.userID, FieldRefreshToken, tok.RefreshToken)
	if err != nil {
		return "", err
	}
	access, err := f.sealFor(id.userID, FieldAccessToken, tok.AccessToken)
	if err != nil {
		return "", err
	}
	now := f.Now()
	stored, err := f.Store.ChangeCredential(ctx, id.userID, func(cur *store.Credential) (*store.CredentialChange, error) {
		c := cur
		newGrant := c == nil || c.Status != store.StatusActive || c.Grant == ""
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
		c.Email = id.email
		c.AccessToken = access
		c.AccessTokenExpiry = f.expiryOf(tok)
		c.Scopes = granted
		c.Status = store.StatusActive
		c.RevokedAt, c.RevokedReason = time.Time{}, ""
		c.RefreshLeaseOwner, c.RefreshLeaseUntil = "", time.Time{}
		c.UpdatedAt = now
		c.LastRefreshAt = now
		if newGrant {
			c.Grant = newGrantID()
		}
		// Reindex: a grant stored before the email index existed gets its
		// entry at the next consent.
		return &store.CredentialChange{Credential: c, Reindex: true,
			Events: f.grantEvents(events.Connected(events.User{ID: id.userID, Email: id.email}, now, granted))}, nil
	})
	if err != nil {
		return "", err
	}
	return stored.Grant, nil
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

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
