package oauthflow

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/oauth2"

	"example.com/gmailoauth/internal/apperr"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/weburl"
)

// Input limits for values that come from browsers.
const (
	MaxLoginHint   = 320
	MaxReturnTo    = 2048
	MaxClientState = 512
)

// BeginRequest asks for an authorization URL.
type BeginRequest struct {
	// LoginHint is an email address or a user id ("sub"), passed to the
	// consent screen as login_hint.
	LoginHint string
	// ReturnTo is where the browser goes after the callback; it must be on an
	// allow-listed origin. Empty means the callback answers JSON.
	ReturnTo string
	// ClientState is the frontend's own state, echoed back untouched.
	ClientState string
	// UserID is the signed-in user, when the request carried a valid session.
	UserID string
	// ForceConsent sends the user through the consent screen even when an
	// active grant is stored.
	ForceConsent bool
}

// BeginResult is an authorization URL and when its state expires.
type BeginResult struct {
	URL       string    `json:"authorization_url"`
	ExpiresAt time.Time `json:"expires_at"`
}

var (
	loginHintRE   = regexp.MustCompile(`^[A-Za-z0-9.!#$%&'*+/=?^_{|}~@-]+$`)
	clientStateRE = regexp.MustCompile(`^[\x21-\x7e]+$`)
	subHintRE     = regexp.MustCompile(`^[0-9]{1,255}$`)
)

// ValidateBegin checks the browser-supplied fields of req, listing every
// problem in one 400 invalid_request.
func (f *Flow) ValidateBegin(req BeginRequest) error {
	var p []string
	if req.LoginHint != "" && (len(req.LoginHint) > MaxLoginHint || !loginHintRE.MatchString(req.LoginHint)) {
		p = append(p, "login_hint must be an email address or user id (at most 320 characters)")
	}
	if req.ClientState != "" && (len(req.ClientState) > MaxClientState || !clientStateRE.MatchString(req.ClientState)) {
		p = append(p, "state must be 1 to 512 visible ASCII characters")
	}
	if len(p) > 0 {
		return apperr.New(apperr.InvalidRequest, strings.Join(p, "; "))
	}
	if req.ReturnTo != "" {
		if err := f.CheckReturnTo(req.ReturnTo); err != nil {
			return err
		}
	}
	return nil
}

// CheckReturnTo accepts only absolute http(s) URLs whose exact origin
// (scheme, host, port) is allow-listed, without credentials or fragments.
func (f *Flow) CheckReturnTo(raw string) error {
	bad := apperr.New(apperr.InvalidReturnTo, "return_to must be an absolute URL on an allowed origin")
	if len(raw) > MaxReturnTo || !utf8.ValidString(raw) || strings.ContainsAny(raw, "\\\x00\r\n\t ") {
		return bad
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Opaque != "" || u.User != nil || u.Fragment != "" || u.Host == "" {
		return bad
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return bad
	}
	for i := 0; i < len(u.Host); i++ {
		if u.Host[i] >= utf8.RuneSelf {
			return bad // non-ASCII hosts fold (K/\u212a) and IDNA-map unlike the allow list
		}
	}
	origin := weburl.Origin(u)
	for _, a := range f.AllowedOrigins {
		if origin == a {
			return nil
		}
	}
	// Only the origin is repeated (in the message and, as the cause, in the
	// logs): the rest of the URL may carry the frontend's own data.
	return apperr.Wrap(apperr.InvalidReturnTo, "return_to must be on an allowed origin; "+origin+" is not one",
		fmt.Errorf("return_to origin %q is not in ALLOWED_RETURN_ORIGINS", origin))
}

// Begin stores a fresh single-use state with a PKCE verifier and nonce, and
// returns the provider's authorization URL with offline access.
func (f *Flow) Begin(ctx context.Context, req BeginRequest) (*BeginResult, error) {
	if err := f.ValidateBegin(req); err != nil {
		return nil, err
	}
	force := req.ForceConsent || !f.hasActiveGrant(ctx, req)
	now := f.Now()
	state := randomToken(32) // 256 bits
	st := &store.AuthState{
		Verifier:    oauth2.GenerateVerifier(),
		Nonce:       randomToken(16),
		ReturnTo:    req.ReturnTo,
		ClientState: req.ClientState,
		LoginHint:   req.LoginHint,
		Scopes:      append([]string(nil), f.OAuth.Scopes...),
		CreatedAt:   now,
		ExpiresAt:   now.Add(stateTTL),
	}
	if err := f.Store.PutState(ctx, StateKey(state), st); err != nil {
		return nil, err
	}
	opts := []oauth2.AuthCodeOption{
		oauth2.AccessTypeOffline,
		oauth2.S256ChallengeOption(st.Verifier),
		oauth2.SetAuthURLParam("include_granted_scopes", "true"),
		oauth2.SetAuthURLParam("nonce", st.Nonce),
	}
	if req.LoginHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", req.LoginHint))
	}
	if force {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "consent"))
	}
	return &BeginResult{URL: f.OAuth.AuthCodeURL(state, opts...), ExpiresAt: st.ExpiresAt}, nil
}

// hasActiveGrant reports whether the user named by the session, or by a
// login_hint that is a user id, has an active grant covering the scopes.
// Only then may consent be skipped: Google returns a refresh token only when
// the user consents.
func (f *Flow) hasActiveGrant(ctx context.Context, req BeginRequest) bool {
	id := req.UserID
	if id == "" && subHintRE.MatchString(req.LoginHint) {
		id = req.LoginHint
	}
	if id == "" {
		return false
	}
	c, err := f.Store.GetCredential(ctx, id)
	if err != nil {
		return false
	}
	return c.Status == store.StatusActive && !c.RefreshToken.IsZero() && coversScopes(c.Scopes, f.OAuth.Scopes)
}

// ReauthURL returns a consent URL that forces consent for the user, for
// answers that tell a frontend to send the user through consent again. It
// returns "" when no URL can be made (the store is down); the error answer
// then goes without one.
func (f *Flow) ReauthURL(ctx context.Context, loginHint, returnTo string) string {
	if returnTo != "" && f.CheckReturnTo(returnTo) != nil {
		returnTo = ""
	}
	if loginHint != "" && (len(loginHint) > MaxLoginHint || !loginHintRE.MatchString(loginHint)) {
		loginHint = ""
	}
	res, err := f.Begin(ctx, BeginRequest{LoginHint: loginHint, ReturnTo: returnTo, ForceConsent: true})
	if err != nil {
		return ""
	}
	return res.URL
}
