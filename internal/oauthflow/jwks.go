package oauthflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// Timings of the issuer's signing keys.
const (
	// jwksRefetchInterval is how often, at most, the keys are fetched again
	// for a key id they lack. Providers publish a new key before they sign
	// with it, so a genuine new key id is found by the first refetch.
	jwksRefetchInterval = time.Minute
	// jwksRetryAfterFailure spaces out fetches while the JWKS is unreachable.
	jwksRetryAfterFailure = 5 * time.Second
	// maxJWKSBytes bounds a key set document.
	maxJWKSBytes = 1 << 20
)

// signatureAlgs are the ID token signature algorithms go-oidc verifies.
var signatureAlgs = []string{oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA}

// errKeysUnavailable means the issuer's JWKS could not be fetched.
var errKeysUnavailable = errors.New("oauthflow: the issuer's signing keys could not be fetched")

// signingKeys is the issuer's JWKS as an oidc.KeySet that anyone's token
// cannot make fetch at will. go-oidc's RemoteKeySet fetches the JWKS again
// for every token whose key id it lacks, and for every bad signature: one
// fetch per forged token. Here a token is checked against the cached keys
// only; the keys are fetched on first use and again for an unknown key id
// at most once per jwksRefetchInterval per instance (prepare), whatever
// arrives. A fetch runs under a deadline of its own and concurrent ones are
// one; no lock is held across it.
type signingKeys struct {
	url    string
	client *http.Client
	now    func() time.Time
	algs   []jose.SignatureAlgorithm

	group singleflight.Group

	mu        sync.Mutex // guards the fields below
	keys      []jose.JSONWebKey
	fetchedAt time.Time // last fetch attempt
	failed    bool      // the last attempt failed
	inflight  bool      // a fetch is running: callers join it
}

// prepare makes sure the cached keys are as current as the policy allows
// for raw's key id: it fetches them the first time, and again when raw
// names a key id they lack and the last fetch is older than the interval.
// It returns errKeysUnavailable when the keys are needed and the JWKS does
// not answer; any other problem with raw is left to the verification.
func (k *signingKeys) prepare(ctx context.Context, raw string) error {
	kid, ok := keyIDOf(raw, k.algs)
	if !ok {
		return nil // malformed: the verifier says so
	}
	k.mu.Lock()
	known := slices.ContainsFunc(k.keys, func(j jose.JSONWebKey) bool { return kid == "" || j.KeyID == kid })
	wait := jwksRefetchInterval
	if k.failed {
		wait = jwksRetryAfterFailure
	}
	due := k.inflight || k.fetchedAt.IsZero() || k.now().Sub(k.fetchedAt) >= wait
	failed := k.failed
	k.mu.Unlock()
	switch {
	case known:
		return nil
	case !due && failed:
		return errKeysUnavailable
	case !due:
		return nil // an unknown key id, refetched recently: the verification fails
	}
	ch := k.group.DoChan("", func() (any, error) {
		k.mu.Lock()
		recent := !k.fetchedAt.IsZero() && !k.failed && k.now().Sub(k.fetchedAt) < jwksRefetchInterval
		k.mu.Unlock()
		if recent {
			return nil, nil // a fetch that ended just now is this one
		}
		return nil, k.fetch(context.WithoutCancel(ctx))
	})
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return errKeysUnavailable
	}
}

// keyIDOf returns the key id of a compact JWS with one signature of algs.
func keyIDOf(raw string, algs []jose.SignatureAlgorithm) (string, bool) {
	jws, err := jose.ParseSignedCompact(raw, algs)
	if err != nil || len(jws.Signatures) != 1 {
		return "", false
	}
	return jws.Signatures[0].Header.KeyID, true
}

// fetch reads the JWKS and replaces the cached keys.
func (k *signingKeys) fetch(ctx context.Context) error {
	k.mu.Lock()
	k.fetchedAt, k.inflight = k.now(), true
	k.mu.Unlock()
	keys, err := k.get(ctx)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.failed, k.inflight = err != nil, false
	if err != nil {
		return fmt.Errorf("%w: %w", errKeysUnavailable, err)
	}
	k.keys = keys
	return nil
}

func (k *signingKeys) get(ctx context.Context) ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(ctx, refreshLimit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("JWKS answered %d", resp.StatusCode)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJWKSBytes)).Decode(&set); err != nil {
		return nil, errors.New("JWKS is not a key set")
	}
	keys := make([]jose.JSONWebKey, 0, len(set.Keys))
	for _, raw := range set.Keys {
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(raw); err != nil {
			continue // a key type or algorithm this client does not use (RFC 7517 section 5)
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// VerifySignature implements oidc.KeySet against the cached keys only.
func (k *signingKeys) VerifySignature(_ context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(raw, k.algs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, errors.New("malformed JWS")
	}
	kid := jws.Signatures[0].Header.KeyID
	k.mu.Lock()
	keys := k.keys
	k.mu.Unlock()
	for i := range keys {
		if kid == "" || keys[i].KeyID == kid {
			if payload, err := jws.Verify(&keys[i]); err == nil {
				return payload, nil
			}
		}
	}
	return nil, errors.New("no signing key of the issuer verifies the token")
}
