package app_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/golang-jwt/jwt/v5"

	"example.com/gmailoauth/internal/app"
	"example.com/gmailoauth/internal/local/devtest"
	"example.com/gmailoauth/internal/local/sandbox"
	"example.com/gmailoauth/internal/local/testenv"
	"example.com/gmailoauth/internal/logging"
	"example.com/gmailoauth/internal/secrets"
	"example.com/gmailoauth/internal/store"
)

func quiet() *slog.Logger { return logging.New(io.Discard, "", slog.LevelError) }

// countingSource counts the reads of each secret.
type countingSource struct {
	secrets.Source
	mu    sync.Mutex
	reads map[string]int
}

func (c *countingSource) Secret(ctx context.Context, ref string) ([]byte, error) {
	c.mu.Lock()
	c.reads[ref]++
	c.mu.Unlock()
	return c.Source.Secret(ctx, ref)
}

func (c *countingSource) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.reads {
		n += v
	}
	return n
}

// sessionWithKid is a session-shaped JWT naming key id kid, signed with a
// key the app does not hold.
func sessionWithKid(t *testing.T, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "gmailoauth", "aud": "gmailoauth-session",
		"sub": "1", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = kid
	s, err := tok.SignedString([]byte("attacker-key-attacker-key-attack"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestUnknownKeyIDReloadsAreCoalesced is issue 15 item 11: bearer tokens
// naming unknown key ids make an instance re-read the keyset at most once
// per interval, whatever their number, and a key id that is not of the
// keyset's id format never does; a ciphertext naming an unknown key goes
// through the same policy.
func TestUnknownKeyIDReloadsAreCoalesced(t *testing.T) {
	clock := &devtest.Clock{}
	env := testenv.New(t, testenv.Options{Now: clock.Now, Logger: quiet()})
	opts := env.AppOptions()
	src := &countingSource{Source: opts.Secrets, reads: map[string]int{}}
	opts.Secrets = src
	a := app.New(opts)
	list := func(tok string) int {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/list-messages", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		a.ListMessages(rec, req)
		return rec.Code
	}
	if code := list("warm-up"); code != http.StatusUnauthorized {
		t.Fatalf("warm-up: %d, want 401", code)
	}
	setup := src.total()

	var wg sync.WaitGroup
	var ok atomic.Int32
	for i := range 50 {
		wg.Go(func() {
			if list(sessionWithKid(t, "sess-unknown-"+string(rune('a'+i%26)))) == http.StatusUnauthorized {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 50 {
		t.Errorf("%d of 50 forged sessions answered 401, want all", ok.Load())
	}
	if n := src.total() - setup; n > 1 {
		t.Errorf("50 sessions with unknown key ids made %d keyset reads, want at most 1", n)
	}
	before := src.total()
	for _, kid := range []string{"../../etc/passwd", strings.Repeat("k", 300), "", "sess id with spaces"} {
		list(sessionWithKid(t, kid))
	}
	clock.Advance(time.Hour) // any interval has passed
	list(sessionWithKid(t, "bad/kid"))
	if n := src.total() - before; n != 0 {
		t.Errorf("key ids not of the keyset's format made %d keyset reads, want 0", n)
	}
	// After the interval one more unknown key id may reload, once.
	for range 10 {
		list(sessionWithKid(t, "sess-later"))
	}
	if n := src.total() - before; n != 1 {
		t.Errorf("after the interval: %d keyset reads, want 1", n)
	}

	// Ciphertexts: a stored token sealed under an unknown key.
	d, err := a.Deps(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	user, _ := env.Connect(t, "cipher@example.com")
	if _, err := env.Store.UpdateCredential(context.Background(), user, func(c *store.Credential) (*store.Credential, error) {
		c.AccessToken.KeyID, c.RefreshToken.KeyID = "enc-rotated-elsewhere", "enc-rotated-elsewhere"
		return c, nil
	}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	before = src.total()
	for range 20 {
		if _, err := d.Flow.AccessToken(context.Background(), user); err == nil {
			t.Fatalf("AccessToken with an unknown key opened")
		}
	}
	if n := src.total() - before; n != 1 {
		t.Errorf("20 ciphertexts under an unknown key made %d keyset reads, want 1", n)
	}
}

// forgedSchedulerToken is a scheduler-shaped ID token signed by a key the
// issuer does not hold, under kid.
func forgedSchedulerToken(t *testing.T, key *rsa.PrivateKey, issuer, kid string) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256,
		Key: jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: string(jose.RS256)}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	raw, err := josejwt.Signed(signer).Claims(map[string]any{"iss": issuer, "aud": schedAudience, "sub": "1", "azp": "1",
		"email": schedSA, "email_verified": true, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestForgedIDTokensDoNotRefetchKeys is item 12: forged scheduler tokens,
// with unknown key ids or the issuer's key id and a bad signature, are
// refused without a JWKS fetch each; at most one refetch per interval.
func TestForgedIDTokensDoNotRefetchKeys(t *testing.T) {
	env := testenv.New(t, testenv.Options{Logger: quiet()})
	a := env.NewApp()
	post := func(tok string) int {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/list-messages", strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		a.ListMessages(rec, req)
		return rec.Code
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	genuineKid := forgedKidOfSandbox(t, env)
	post(forgedSchedulerToken(t, key, env.Sandbox.Issuer(), genuineKid)) // discovery and the first key fetch
	env.Sandbox.ResetStats()
	for i := range 50 {
		kid := genuineKid
		if i%2 == 0 {
			kid = "forged-" + string(rune('a'+i%26))
		}
		if code := post(forgedSchedulerToken(t, key, env.Sandbox.Issuer(), kid)); code != http.StatusUnauthorized {
			t.Fatalf("forged token %d: %d, want 401", i, code)
		}
	}
	if n := env.Sandbox.Stats().JWKSCalls; n > 1 {
		t.Errorf("50 forged ID tokens made %d JWKS fetches, want at most 1", n)
	}
}

// forgedKidOfSandbox returns the key id the sandbox signs with.
func forgedKidOfSandbox(t *testing.T, env *testenv.Env) string {
	t.Helper()
	tok, err := env.Sandbox.MintIDToken(schedAudience, schedSA, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Header.KeyID
}

// TestSchedulerAuthenticationHasADeadline is item 12's second half: the
// scheduler's authentication runs under the request deadline, so a JWKS
// that does not answer ends in 503, not in a request held open.
func TestSchedulerAuthenticationHasADeadline(t *testing.T) {
	env := testenv.New(t, testenv.Options{Logger: quiet(), Env: map[string]string{"REQUEST_TIMEOUT": "200ms", "OUTBOUND_TIMEOUT": "1m"}})
	env.Sandbox.SetJWKSFaults(sandbox.JWKSFaults{Latency: 2 * time.Second})
	a := env.NewApp()
	tok, err := env.Sandbox.MintIDToken(schedAudience, schedSA, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/list-messages", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	a.ListMessages(rec, req)
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "upstream_unavailable") {
		t.Errorf("scheduler sync with a JWKS that hangs: %d %s, want 503 upstream_unavailable", rec.Code, rec.Body)
	}
}
