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
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"example.com/gmailoauth/internal/apperr"
	"example.com/gmailoauth/internal/keyset"
	"example.com/gmailoauth/internal/session"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/weburl"
)

// Field names bound into each ciphertext's associated data.
const (
	FieldRefreshToken = "refresh_token"
	FieldAccessToken  = "access_token"
)

// The flow's fixed lifetimes.
const (
	// stateTTL is how long an authorization may take, from Authorize to the
	// callback.
	stateTTL = 10 * time.Minute
	// expirySkew: an access token expiring sooner than this is refreshed.
	expirySkew = 2 * time.Minute
	// leaseTTL bounds a refresh lease held by an instance that died.
	leaseTTL = 20 * time.Second
	// refreshLimit bounds one refresh, which outlives the caller that started it.
	refreshLimit = 30 * time.Second
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
	// ReloadKeys, when set, asks for the keyset secret to be read again
	// because a ciphertext names key id kid, which the current keyset lacks
	// (a rotation made by another instance); it returns nil once the
	// keyset holds kid. The policy (how often, which ids) is the caller's.
	ReloadKeys func(ctx context.Context, kid string) error
	Sessions   *session.Manager
	// ReturnURLs are where return_to may point (ALLOWED_RETURN_URLS).
	ReturnURLs []weburl.ReturnURL
	// Pending bounds the authorizations Begin starts, per client address
	// and in all; nil means no bound.
	Pending *PendingStates
	Now     func() time.Time
	Log     *slog.Logger
	// InstanceID names this instance in refresh leases.
	InstanceID string
	// Events, when set, writes the events of grant changes (grant.connected,
	// grant.revoked, grant.disconnected) to the store's outbox in the same
	// transaction as the change.
	Events bool
	// AfterEvents, when set, is called after a revocation or a disconnect
	// wrote its event, so the event is published soon (the push path drains
	// the user's outbox). A connection's event is the callback's caller's to
	// hand on, with the user's first sync.
	AfterEvents func(ctx context.Context, userID string)

	provider  atomic.Pointer[discovered]
	discovery singleflight.Group
	refreshes singleflight.Group
}

// clientCtx returns ctx carrying the outbound HTTP client for oauth2 and oidc.
func (f *Flow) clientCtx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, f.HTTPClient)
}

// discovered is the provider's discovery document and its signing keys.
type discovered struct {
	provider *oidc.Provider
	keys     *signingKeys
	algs     []string // ID token signature algorithms, the provider's and go-oidc's
}

// Provider returns the OpenID Connect provider, discovering it on first use.
// Concurrent first calls share one discovery, which runs under a deadline of
// its own (not the caller's: a caller that gives up does not fail the others)
// and holds no lock while it waits for the network. A failed discovery is
// retried by the next call.
func (f *Flow) Provider(ctx context.Context) (*oidc.Provider, error) {
	d, err := f.discover(ctx)
	if err != nil {
		return nil, err
	}
	return d.provider, nil
}

func (f *Flow) discover(ctx context.Context) (*discovered, error) {
	if d := f.provider.Load(); d != nil {
		return d, nil
	}
	ch := f.discovery.DoChan("", func() (any, error) {
		if d := f.provider.Load(); d != nil {
			return d, nil
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshLimit)
		defer cancel()
		p, err := oidc.NewProvider(f.clientCtx(dctx), f.Issuer)
		if err != nil {
			return nil, upstreamErr("identity provider discovery", err)
		}
		var meta struct {
			JWKSURI string   `json:"jwks_uri"`
			Algs    []string `json:"id_token_signing_alg_values_supported"`
		}
		if err := p.Claims(&meta); err != nil || meta.JWKSURI == "" {
			return nil, apperr.Wrap(apperr.UpstreamError, "the identity provider's discovery document names no JWKS",
				errors.New("no jwks_uri in the discovery document"))
		}
		d := &discovered{provider: p}
		for _, a := range meta.Algs {
			if slices.Contains(signatureAlgs, a) {
				d.algs = append(d.algs, a)
			}
		}
		if len(d.algs) == 0 {
			d.algs = []string{oidc.RS256} // OpenID Connect Discovery's mandatory default
		}
		d.keys = &signingKeys{url: meta.JWKSURI, client: f.HTTPClient, now: f.Now}
		for _, a := range d.algs {
			d.keys.algs = append(d.keys.algs, jose.SignatureAlgorithm(a))
		}
		f.provider.Store(d)
		return d, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*discovered), nil
	case <-ctx.Done():
		return nil, upstreamErr("identity provider discovery", ctx.Err())
	}
}

// VerifyIDToken verifies a raw ID token's signature (issuer's JWKS), issuer,
// audience and expiry. The JWKS is fetched when the token names a key id
// the instance lacks, at most once a minute (see signingKeys), so forged
// tokens cost no fetches. An outage (discovery or keys unreachable, or ctx
// ending first) is an *apperr.Error for which apperr.Temporary holds; any
// other error means the token is not valid.
func (f *Flow) VerifyIDToken(ctx context.Context, raw, audience string) (*oidc.IDToken, error) {
	d, err := f.discover(ctx)
	if err != nil {
		return nil, err
	}
	if err := d.keys.prepare(ctx, raw); err != nil {
		return nil, apperr.Wrap(apperr.UpstreamUnavailable,
			"Google's signing keys could not be fetched; try again shortly", err)
	}
	v := oidc.NewVerifier(f.Issuer, d.keys, &oidc.Config{ClientID: audience, Now: f.Now, SupportedSigningAlgs: d.algs})
	return v.Verify(ctx, raw)
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

// reauth is the error of a user who must go through consent again: nothing
// is stored, or the grant is revoked. The HTTP layer adds the URL.
func reauth(reason string) *apperr.Error {
	return apperr.New(apperr.ReauthorizationRequired, "Gmail access for this user must be granted again: "+reason)
}

// UpstreamError is the cause of a failed call to the provider (down, slow,
// 5xx, an unexpected answer). Temporary ones are worth a retry. The flow
// returns it inside an *apperr.Error (see upstreamErr), never alone.
type UpstreamError struct {
	Op        string
	Temporary bool
	Err       error
}

func (e *UpstreamError) Error() string { return e.Op + ": " + describe(e.Err) }
func (e *UpstreamError) Unwrap() error { return e.Err }

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

// upstream classifies an error from a call to the provider: an answer 5xx
// or 429, or no answer at all, is temporary.
func upstream(op string, err error) *UpstreamError {
	var ue *UpstreamError
	if errors.As(err, &ue) {
		return ue
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		temp := re.Response == nil || re.Response.StatusCode >= 500 || re.Response.StatusCode == http.StatusTooManyRequests
		return &UpstreamError{Op: op, Temporary: temp, Err: err}
	}
	return &UpstreamError{Op: op, Temporary: true, Err: err}
}

// upstreamErr is the contract's error for a failed call to the provider:
// upstream_unavailable when worth a retry (saying whether Google was slow,
// unreachable or failing), upstream_error when Google refused.
func upstreamErr(op string, err error) *apperr.Error {
	ue := upstream(op, err)
	if !ue.Temporary {
		return apperr.Wrap(apperr.UpstreamError, "Google refused the request ("+op+")", ue)
	}
	var ne net.Error
	var re *oauth2.RetrieveError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return apperr.Wrap(apperr.UpstreamUnavailable, "Google did not answer in time ("+op+"); try again shortly", ue)
	case errors.As(err, &re) && re.Response != nil:
		return apperr.Wrap(apperr.UpstreamUnavailable, "Google answered with a temporary error ("+op+"); try again shortly", ue)
	}
	return apperr.Wrap(apperr.UpstreamUnavailable, "Google could not be reached ("+op+"); try again shortly", ue)
}

func (f *Flow) sealFor(userID, field, plaintext string) (store.Sealed, error) {
	if plaintext == "" {
		return store.Sealed{}, nil
	}
	s, err := f.Keys().Seal([]byte(plaintext), userID, field)
	return store.Sealed(s), err
}

func (f *Flow) open(ctx context.Context, userID, field string, s store.Sealed) (string, error) {
	pt, err := f.Keys().Open(keyset.Sealed(s), userID, field)
	if errors.Is(err, keyset.ErrUnknownKey) && f.ReloadKeys != nil {
		if rerr := f.ReloadKeys(ctx, s.KeyID); rerr == nil {
			pt, err = f.Keys().Open(keyset.Sealed(s), userID, field)
		}
	}
	if err != nil {
		return "", fmt.Errorf("open %s of user: %w", field, err)
	}
	return string(pt), nil
}

// needsReseal reports whether s was sealed with a key other than ks's primary.
func needsReseal(ks *keyset.Keyset, s store.Sealed) bool { return ks.NeedsReseal(keyset.Sealed(s)) }

// grantEvents returns evs when the flow writes events, else nil.
func (f *Flow) grantEvents(evs ...*store.OutboxEvent) []*store.OutboxEvent {
	if !f.Events {
		return nil
	}
	return evs
}

func (f *Flow) afterEvents(ctx context.Context, userID string) {
	if f.Events && f.AfterEvents != nil {
		f.AfterEvents(ctx, userID)
	}
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
