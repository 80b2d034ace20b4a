package oauthflow_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"example.com/gmailoauth/internal/app"
	"example.com/gmailoauth/internal/apperr"
	"example.com/gmailoauth/internal/keyset"
	"example.com/gmailoauth/internal/local/devtest"
	"example.com/gmailoauth/internal/local/testenv"
	"example.com/gmailoauth/internal/oauthflow"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/fsstore/fstest"
	"example.com/gmailoauth/internal/store/memstore"
)

// env is the functions' own wiring against the sandbox, on a clock the
// test advances.
type env struct {
	*testenv.Env
	clock *devtest.Clock
}

func newEnv(t testing.TB) *env {
	t.Helper()
	clock := &devtest.Clock{}
	return &env{Env: testenv.New(t, testenv.Options{Now: clock.Now}), clock: clock}
}

// instance returns another instance's dependencies (own singleflight, own
// keyset cache) over st.
func (e *env) instance(t testing.TB, st store.Store) *app.Deps { return e.Instance(t, st) }

// connect runs Begin → sandbox consent → Callback for email.
func (e *env) connect(t testing.TB, f *oauthflow.Flow, email string) string {
	t.Helper()
	ctx := context.Background()
	res, err := f.Begin(ctx, oauthflow.BeginRequest{LoginHint: email})
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(res.URL)
	if err != nil {
		t.Fatalf("consent: %v", err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("consent answered %d %q, want a redirect with a code", resp.StatusCode, resp.Header.Get("Location"))
	}
	cb, err := f.Callback(ctx, oauthflow.CallbackRequest{State: loc.Query().Get("state"), Code: loc.Query().Get("code")})
	if err != nil {
		t.Fatalf("callback: %v", err)
	}
	return cb.UserID
}

func TestSingleFlightAcrossInstancesMemory(t *testing.T) {
	st := memstore.New()
	testSingleFlightAcrossInstances(t, []store.Store{st, st, st})
}

func TestSingleFlightAcrossInstancesFirestore(t *testing.T) {
	stores := fstest.NewStores(t, 3)
	testSingleFlightAcrossInstances(t, []store.Store{stores[0], stores[1], stores[2]})
}

// testSingleFlightAcrossInstances: three instances (own singleflight, own
// store client) ask for one user's expired token at once; exactly one
// refresh reaches the token endpoint and everyone gets its token.
func testSingleFlightAcrossInstances(t *testing.T, stores []store.Store) {
	e := newEnv(t)
	flows := make([]*oauthflow.Flow, len(stores))
	for i, st := range stores {
		flows[i] = e.instance(t, st).Flow
	}
	userID := e.connect(t, flows[0], "erin@example.com")
	e.clock.Advance(59 * time.Minute)
	e.Sandbox.ResetStats()

	const perInstance = 20
	tokens := make([]string, len(flows)*perInstance)
	errs := make([]error, len(tokens))
	var wg sync.WaitGroup
	for i := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tokens[i], errs[i] = flows[i%len(flows)].AccessToken(context.Background(), userID)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if tokens[i] != tokens[0] {
			t.Errorf("call %d got a different access token than call 0", i)
		}
	}
	if got := e.Sandbox.Stats().TokenCalls["refresh_token"]; got != 1 {
		t.Errorf("refresh calls at the token endpoint = %d, want 1", got)
	}
	c, err := stores[0].GetCredential(context.Background(), userID)
	if err != nil || c.RefreshLeaseOwner != "" {
		t.Errorf("after the refresh: lease owner %q (err %v), want the lease released", c.RefreshLeaseOwner, err)
	}
}

// TestCiphertextMovedToAnotherUser: a refresh token copied into another
// user's document does not open, so it is never sent to the token endpoint.
func TestCiphertextMovedToAnotherUser(t *testing.T) {
	e := newEnv(t)
	st := memstore.New()
	f := e.instance(t, st).Flow
	ctx := context.Background()
	alice := e.connect(t, f, "alice@example.com")
	bob := e.connect(t, f, "bob@example.com")
	ac, _ := st.GetCredential(ctx, alice)
	if _, err := st.UpdateCredential(ctx, bob, func(c *store.Credential) (*store.Credential, error) {
		c.RefreshToken = ac.RefreshToken
		c.AccessToken = ac.AccessToken
		c.AccessTokenExpiry = time.Time{}
		return c, nil
	}); err != nil {
		t.Fatal(err)
	}
	e.Sandbox.ResetStats()
	_, err := f.AccessToken(ctx, bob)
	if !errors.Is(err, keyset.ErrOpen) {
		t.Errorf("AccessToken with a moved ciphertext: err %v, want keyset.ErrOpen", err)
	}
	if n := e.Sandbox.Stats().TokenCalls["refresh_token"]; n != 0 {
		t.Errorf("token endpoint called %d times with another user's token, want 0", n)
	}
}

// TestKeyRotation: after a rotation old ciphertexts still open, new writes
// use the new primary key, and Reseal upgrades old documents.
func TestKeyRotation(t *testing.T) {
	e := newEnv(t)
	st := memstore.New()
	d := e.instance(t, st)
	f := d.Flow
	ctx := context.Background()
	user := e.connect(t, f, "frank@example.com")
	before, _ := st.GetCredential(ctx, user)

	rotated := rotate(t, e, d)
	if before.RefreshToken.KeyID == rotated {
		t.Fatalf("test setup: the rotation did not change the primary key")
	}
	if _, err := f.AccessToken(ctx, user); err != nil {
		t.Fatalf("AccessToken after rotation (old ciphertext): %v", err)
	}
	wrote, err := f.Reseal(ctx, user)
	if err != nil || !wrote {
		t.Fatalf("Reseal: wrote=%v err=%v, want an upgrade", wrote, err)
	}
	after, _ := st.GetCredential(ctx, user)
	if after.RefreshToken.KeyID != rotated || after.AccessToken.KeyID != rotated {
		t.Errorf("after Reseal key ids = %q/%q, want %q", after.RefreshToken.KeyID, after.AccessToken.KeyID, rotated)
	}
	if wrote, _ := f.Reseal(ctx, user); wrote {
		t.Errorf("second Reseal wrote again, want nothing to do")
	}
	// The refresh token itself survived: a refresh still works.
	e.clock.Advance(59 * time.Minute)
	if _, err := f.AccessToken(ctx, user); err != nil {
		t.Errorf("refresh with the resealed refresh token: %v", err)
	}
}

// rotate rotates the env's keyset secret (old keys kept, new primaries),
// makes the instance d read it again, and returns the new primary
// encryption key id.
func rotate(t testing.TB, e *env, d *app.Deps) string {
	t.Helper()
	e.RotateKeys(t, "v2")
	if err := d.ReloadKeys(context.Background()); err != nil {
		t.Fatalf("reload the rotated keyset: %v", err)
	}
	return "enc-v2"
}

// TestVerifyIDTokenKeysUnreachable: when the issuer's JWKS cannot be fetched
// (after discovery worked), verification fails as a temporary upstream
// outage — a 503 for callers — not as a bad token.
func TestVerifyIDTokenKeysUnreachable(t *testing.T) {
	e := newEnv(t)
	f := e.instance(t, memstore.New()).Flow
	ctx := context.Background()
	if _, err := f.Provider(ctx); err != nil {
		t.Fatalf("discovery: %v", err)
	}
	tok, err := e.Sandbox.MintIDToken("https://fn.example.com/list-messages", "scheduler@example.iam.gserviceaccount.com", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.Server.Close()
	_, err = f.VerifyIDToken(ctx, tok, "https://fn.example.com/list-messages")
	if !apperr.Temporary(err) {
		t.Errorf("VerifyIDToken with the JWKS unreachable: err %v, want a temporary upstream error", err)
	}
}
