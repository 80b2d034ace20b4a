// Package oauthflow holds the decisions of the OAuth 2.0 authorization-code
// flow with offline access: building the consent URL (state, PKCE, nonce),
// completing the callback (code exchange, ID token verification, granted
// scope check, encrypted storage of the refresh token), handing out access
// tokens with a single-flight refresh, and revoking grants. It knows nothing
// about HTTP requests; the app package adapts it.
package oauthflow

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"example.com/gmailoauth/internal/config"
	"example.com/gmailoauth/internal/keyset"
	"example.com/gmailoauth/internal/session"
	"example.com/gmailoauth/internal/store"
)

// Field names bound into each ciphertext's associated data.
const (
	FieldRefreshToken = "refresh_token"
	FieldAccessToken  = "access_token"
)

// Defaults of Flow's tunables.
const (
	DefaultStateTTL     = 10 * time.Minute
	DefaultExpirySkew   = 2 * time.Minute
	DefaultLeaseTTL     = 20 * time.Second
	defaultRefreshLimit = 30 * time.Second
)

// Flow is the OAuth flow of one instance. Fields are set once at start-up.
type Flow struct {
	Store store.Store
	// OAuth holds the client id and secret, the registered redirect URL, the
	// scopes and the authorization and token endpoints.
	OAuth *oauth2.Config
	// RevokeURL is the token revocation endpoint.
	RevokeURL string
	// Issuer is the OpenID Connect issuer whose discovery document and JWKS
	// verify ID tokens.
	Issuer string
	// HTTPClient makes every outbound call to the provider; it must have a timeout.
	HTTPClient *http.Client
	// Keys returns the current app keyset.
	Keys func() *keyset.Keyset
	// ReloadKeys, when set, reads the keyset secret again; it is called once
	// when a ciphertext names a key id the current keyset lacks (a rotation
	// made by another instance).
	ReloadKeys func(ctx context.Context) error
	Sessions   *session.Manager
	// AllowedOrigins are the normalised origins return_to may point at.
	AllowedOrigins []string
	Now            func() time.Time
	Log            *slog.Logger
	// InstanceID names this instance in refresh leases.
	InstanceID string

	StateTTL   time.Duration
	ExpirySkew time.Duration
	LeaseTTL   time.Duration

	providerMu sync.Mutex
	provider   *oidc.Provider
	refreshes  singleflight.Group
}

func (f *Flow) stateTTL() time.Duration   { return orDefault(f.StateTTL, DefaultStateTTL) }
func (f *Flow) expirySkew() time.Duration { return orDefault(f.ExpirySkew, DefaultExpirySkew) }
func (f *Flow) leaseTTL() time.Duration   { return orDefault(f.LeaseTTL, DefaultLeaseTTL) }

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// clientCtx returns ctx carrying the outbound HTTP client for oauth2 and oidc.
func (f *Flow) clientCtx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, f.HTTPClient)
}

// Provider returns the OpenID Connect provider, discovering it on first use.
// A failed discovery is retried by the next call.
func (f *Flow) Provider(ctx context.Context) (*oidc.Provider, error) {
	f.providerMu.Lock()
	defer f.providerMu.Unlock()
	if f.provider != nil {
		return f.provider, nil
	}
	p, err := oidc.NewProvider(f.clientCtx(ctx), f.Issuer)
	if err != nil {
		return nil, unavailable("identity provider discovery failed", err)
	}
	f.provider = p
	return p, nil
}

// VerifyIDToken verifies a raw ID token's signature (issuer's JWKS), issuer,
// audience and expiry.
func (f *Flow) VerifyIDToken(ctx context.Context, raw, audience string) (*oidc.IDToken, error) {
	p, err := f.Provider(ctx)
	if err != nil {
		return nil, err
	}
	v := p.Verifier(&oidc.Config{ClientID: audience, Now: f.Now})
	idt, err := v.Verify(f.clientCtx(ctx), raw)
	if err != nil && strings.Contains(err.Error(), "fetching keys") {
		// go-oidc reports an unreachable JWKS only in its message ("failed
		// to verify signature: fetching keys …"): that is an outage, not a
		// bad token.
		return nil, unavailable("fetching the issuer's signing keys", errors.New("JWKS unreachable"))
	}
	return idt, err
}

// randomToken returns n random bytes, base64url without padding.
func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("oauthflow: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// StateKey is the document id of a state: its SHA-256, so the store never
// holds a usable state value.
func StateKey(state string) string {
	sum := sha256.Sum256([]byte(state))
	return hex.EncodeToString(sum[:])
}

// HasGmailRead reports whether granted includes a scope that can list mail.
func HasGmailRead(granted []string) bool {
	for _, s := range granted {
		switch s {
		case config.GmailReadonlyScope, "https://www.googleapis.com/auth/gmail.modify", "https://mail.google.com/":
			return true
		}
	}
	return false
}

func coversScopes(granted, wanted []string) bool {
	have := map[string]bool{}
	for _, s := range granted {
		have[s] = true
	}
	for _, s := range wanted {
		switch s {
		case "openid":
			continue // never echoed back as a granted scope by Google
		case "email":
			if have["email"] || have["https://www.googleapis.com/auth/userinfo.email"] {
				continue
			}
			return false
		}
		if !have[s] {
			return false
		}
	}
	return true
}

// ReauthError means the user must go through consent again: no credential
// is stored, or it is revoked. Reason is for logs and the error message.
type ReauthError struct {
	UserID string
	Email  string
	Reason string
}

func (e *ReauthError) Error() string { return "reauthorization required: " + e.Reason }

// UpstreamError means the provider failed (down, slow, 5xx, unexpected
// answer). Temporary ones are worth a retry.
type UpstreamError struct {
	Op        string
	Temporary bool
	Err       error
}

func (e *UpstreamError) Error() string { return e.Op + ": " + describe(e.Err) }
func (e *UpstreamError) Unwrap() error { return e.Err }

func unavailable(op string, err error) error {
	return &UpstreamError{Op: op, Temporary: true, Err: err}
}

// describe summarises an error from the provider without its response body,
// which may echo tokens.
func describe(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		if re.ErrorCode != "" {
			return fmt.Sprintf("token endpoint answered %d %s", status, re.ErrorCode)
		}
		return fmt.Sprintf("token endpoint answered %d", status)
	}
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// isInvalidGrant reports whether err is the token endpoint's invalid_grant.
func isInvalidGrant(err error) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == "invalid_grant"
}

// IsTemporary reports whether err is worth retrying later (503).
func IsTemporary(err error) bool {
	var ue *UpstreamError
	if errors.As(err, &ue) {
		return ue.Temporary
	}
	return errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// upstream classifies an error from a call to the provider.
func upstream(op string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		temp := re.Response == nil || re.Response.StatusCode >= 500 || re.Response.StatusCode == http.StatusTooManyRequests
		return &UpstreamError{Op: op, Temporary: temp, Err: err}
	}
	return &UpstreamError{Op: op, Temporary: true, Err: err}
}

func (f *Flow) sealFor(userID, field, plaintext string) (store.Sealed, error) {
	if plaintext == "" {
		return store.Sealed{}, nil
	}
	return f.Keys().Seal([]byte(plaintext), userID, field)
}

func (f *Flow) open(ctx context.Context, userID, field string, s store.Sealed) (string, error) {
	pt, err := f.Keys().Open(s, userID, field)
	if errors.Is(err, keyset.ErrUnknownKey) && f.ReloadKeys != nil {
		if rerr := f.ReloadKeys(ctx); rerr == nil {
			pt, err = f.Keys().Open(s, userID, field)
		}
	}
	if err != nil {
		return "", fmt.Errorf("open %s of user: %w", field, err)
	}
	return string(pt), nil
}

func (f *Flow) logger() *slog.Logger {
	if f.Log != nil {
		return f.Log
	}
	return slog.Default()
}

// expiryOf returns when tok expires on the flow's clock: oauth2 computes
// Token.Expiry with the wall clock, so it is recomputed from expires_in.
func (f *Flow) expiryOf(tok *oauth2.Token) time.Time {
	if tok.ExpiresIn > 0 {
		return f.Now().Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	return tok.Expiry
}
