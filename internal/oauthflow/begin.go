package oauthflow

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

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
	// UserID, UserEmail and Grant are the signed-in user's, when the
	// request carried a valid session: only then may consent be skipped.
	UserID    string
	UserEmail string
	Grant     string
	// ForceConsent sends the user through the consent screen even when an
	// active grant is stored.
	ForceConsent bool
	// ClientAddr is the address the request came from, for the bound on
	// pending authorizations ("" counts against the total only).
	ClientAddr string
}

// BeginResult is an authorization URL and when its state expires.
type BeginResult struct {
	URL       string    `json:"authorization_url"`
	ExpiresAt time.Time `json:"expires_at"`
}

var (
	loginHintRE   = regexp.MustCompile(`^[A-Za-z0-9.!#$%&'*+/=?^_{|}~@-]+$`)
	clientStateRE = regexp.MustCompile(`^[\x21-\x7e]+$`)
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

// CheckReturnTo accepts only a return_to the allow-list names: an exact
// return URL, or a URL under a listed path prefix (weburl.MatchReturnURL),
// at most MaxReturnTo bytes.
func (f *Flow) CheckReturnTo(raw string) error {
	if len(raw) <= MaxReturnTo && weburl.MatchReturnURL(f.ReturnURLs, raw) {
		return nil
	}
	const msg = "return_to must be one of the allowed return URLs (ALLOWED_RETURN_URLS)"
	u, err := url.Parse(raw)
	if err != nil || len(raw) > MaxReturnTo || u.Host == "" || u.User != nil || (u.Scheme != "https" && u.Scheme != "http") ||
		strings.ContainsFunc(u.Host, func(r rune) bool { return r < '!' || r > '~' }) {
		return apperr.New(apperr.InvalidReturnTo, msg)
	}
	// Only the origin is repeated (in the message and, as the cause, in the
	// logs): the rest of the URL may carry the frontend's own data.
	origin := weburl.Origin(u)
	return apperr.Wrap(apperr.InvalidReturnTo, msg+"; this one, on "+origin+", is not",
		fmt.Errorf("return_to on origin %q is not in ALLOWED_RETURN_URLS", origin))
}

// ReturnURLFor returns the first allowed return URL on origin (an exact
// URL, or a prefix itself), or "" when none is. Answers that offer a
// consent URL send the browser back there.
func (f *Flow) ReturnURLFor(origin string) string {
	for _, r := range f.ReturnURLs {
		if r.Origin == origin {
			return r.URL()
		}
	}
	return ""
}

// Begin stores a fresh single-use state with a PKCE verifier and nonce, and
// returns the provider's authorization URL with offline access.
func (f *Flow) Begin(ctx context.Context, req BeginRequest) (*BeginResult, error) {
	if err := f.ValidateBegin(req); err != nil {
		return nil, err
	}
	now := f.Now()
	if err := f.Pending.admit(req.ClientAddr, now); err != nil {
		return nil, err
	}
	force := req.ForceConsent || !f.hasActiveGrant(ctx, req)
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
	hint := req.LoginHint
	if hint == "" && !force {
		hint = req.UserID // the session's user, so the provider picks that account
	}
	if hint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", hint))
	}
	if force {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "consent"))
	}
	return &BeginResult{URL: f.OAuth.AuthCodeURL(state, opts...), ExpiresAt: st.ExpiresAt}, nil
}

// hasActiveGrant reports whether consent may be skipped: the request
// carries a valid session, any login_hint names that same user (their id
// or email), and the session's grant is the stored one, active and
// covering the scopes. Google returns a refresh token only when the user
// consents, so a returning user keeps the stored one. A login_hint alone
// never skips consent: anyone could start a silent flow for someone else,
// and the answer would tell whether that account is connected.
func (f *Flow) hasActiveGrant(ctx context.Context, req BeginRequest) bool {
	if req.UserID == "" {
		return false
	}
	if req.LoginHint != "" && req.LoginHint != req.UserID && (req.UserEmail == "" || !strings.EqualFold(req.LoginHint, req.UserEmail)) {
		return false
	}
	c, err := f.Store.GetCredential(ctx, req.UserID)
	if err != nil {
		return false
	}
	return c.Grant == req.Grant && c.Status == store.StatusActive && !c.RefreshToken.IsZero() && coversScopes(c.Scopes, f.OAuth.Scopes)
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
