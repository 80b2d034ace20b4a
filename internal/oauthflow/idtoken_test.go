package oauthflow_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"example.com/gmailoauth/internal/apperr"
	"example.com/gmailoauth/internal/local/sandbox"
	"example.com/gmailoauth/internal/local/testenv"
	"example.com/gmailoauth/internal/oauthflow"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/memstore"
)

// consent runs Begin and the sandbox's consent for email and returns the
// callback request the browser would bring back.
func consent(t *testing.T, f *oauthflow.Flow, email string) oauthflow.CallbackRequest {
	t.Helper()
	res, err := f.Begin(context.Background(), oauthflow.BeginRequest{LoginHint: email, ForceConsent: true})
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
	q := loc.Query()
	return oauthflow.CallbackRequest{State: q.Get("state"), Code: q.Get("code"), Issuer: q.Get("iss")}
}

// TestCallbackRefusesSpoiledIDTokens holds the callback to OpenID Connect
// Core 3.1.3.7 and RFC 6749 section 7.1 (issue 15 items 1 to 5): an ID
// token without sub or iat, with several audiences and no or another azp,
// with a forged signature, or a token that is not a bearer token is refused
// with the right code, and nothing is stored.
func TestCallbackRefusesSpoiledIDTokens(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name  string
		knobs sandbox.Knobs
		code  apperr.Code
	}{
		{"item 1: no sub", sandbox.Knobs{IDToken: sandbox.IDTokenFaults{OmitClaims: []string{"sub"}}}, apperr.InvalidIDToken},
		{"item 2: no iat", sandbox.Knobs{IDToken: sandbox.IDTokenFaults{OmitClaims: []string{"iat"}}}, apperr.InvalidIDToken},
		{"item 3: two audiences, no azp", sandbox.Knobs{IDToken: sandbox.IDTokenFaults{ExtraAudience: "other.apps.example", OmitClaims: []string{"azp"}}}, apperr.InvalidIDToken},
		{"item 3: two audiences, another azp", sandbox.Knobs{IDToken: sandbox.IDTokenFaults{ExtraAudience: "other.apps.example", AZP: "other.apps.example"}}, apperr.InvalidIDToken},
		{"item 3: one audience, another azp", sandbox.Knobs{IDToken: sandbox.IDTokenFaults{AZP: "other.apps.example"}}, apperr.InvalidIDToken},
		{"item 4: token_type mac", sandbox.Knobs{TokenType: "mac"}, apperr.UpstreamError},
		{"item 5: forged signature", sandbox.Knobs{IDToken: sandbox.IDTokenFaults{Forge: true}}, apperr.InvalidIDToken},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := memstore.New()
			f := e.instance(t, st).Flow
			email := "spoiled" + string(rune('a'+i)) + "@example.com"
			e.Sandbox.SetUserKnobs(email, tt.knobs)
			_, err := f.Callback(context.Background(), consent(t, f, email))
			if got := apperr.CodeOf(err); got != tt.code {
				t.Fatalf("Callback: got %v (%s), want %s", err, got, tt.code)
			}
			all, lerr := st.ListCredentials(context.Background(), "", "", 0)
			if lerr != nil || len(all) != 0 {
				t.Errorf("after a refused callback the store holds %d credentials (err %v), want none", len(all), lerr)
			}
		})
	}
	t.Run("item 3: two audiences with azp = client id is accepted", func(t *testing.T) {
		f := e.instance(t, memstore.New()).Flow
		e.Sandbox.SetUserKnobs("twoaud@example.com", sandbox.Knobs{IDToken: sandbox.IDTokenFaults{ExtraAudience: "other.apps.example"}})
		if _, err := f.Callback(context.Background(), consent(t, f, "twoaud@example.com")); err != nil {
			t.Errorf("Callback: %v, want accepted", err)
		}
	})
}

// TestSublessLoginsDoNotShareAGrant is item 1's reproduction: two different
// users whose ID tokens carry no sub, the second without a refresh token,
// must not end up sharing the first one's grant.
func TestSublessLoginsDoNotShareAGrant(t *testing.T) {
	e := newEnv(t)
	st := memstore.New()
	f := e.instance(t, st).Flow
	e.Sandbox.SetUserKnobs("first@example.com", sandbox.Knobs{IDToken: sandbox.IDTokenFaults{OmitClaims: []string{"sub"}}})
	e.Sandbox.SetUserKnobs("second@example.com", sandbox.Knobs{WithholdRefreshToken: true, IDToken: sandbox.IDTokenFaults{OmitClaims: []string{"sub"}}})
	ctx := context.Background()
	if _, err := f.Callback(ctx, consent(t, f, "first@example.com")); err == nil {
		t.Errorf("first sub-less login accepted")
	}
	res, err := f.Callback(ctx, consent(t, f, "second@example.com"))
	if err == nil || res != nil && res.Session != "" {
		t.Errorf("second sub-less login: got a session (err %v), want a refusal", err)
	}
	if _, err := st.GetCredential(ctx, ""); err == nil {
		t.Errorf("a credential is stored under the empty user id")
	}
}

// TestCallbackIssuerParameter is item 6 (RFC 9207): an authorization
// response that names another issuer is refused; one naming the configured
// issuer, or none, is accepted.
func TestCallbackIssuerParameter(t *testing.T) {
	e := newEnv(t)
	f := e.instance(t, memstore.New()).Flow
	ctx := context.Background()
	req := consent(t, f, "mixup@example.com")
	req.Issuer = "https://idp.attacker.example"
	if _, err := f.Callback(ctx, req); apperr.CodeOf(err) != apperr.InvalidRequest {
		t.Errorf("callback with another issuer: got %v, want invalid_request", err)
	}
	req = consent(t, f, "mixup@example.com")
	req.Issuer = e.Sandbox.Issuer()
	if _, err := f.Callback(ctx, req); err != nil {
		t.Errorf("callback naming the configured issuer: %v", err)
	}
	if _, err := f.Callback(ctx, consent(t, f, "noiss@example.com")); err != nil {
		t.Errorf("callback without iss: %v", err)
	}
}

// TestCallbackDropsUnverifiedEmail is item 20's first part: an email the
// provider has not verified is neither stored nor put in the session.
func TestCallbackDropsUnverifiedEmail(t *testing.T) {
	e := newEnv(t)
	st := memstore.New()
	d := e.instance(t, st)
	e.Sandbox.SetUserKnobs("claimed@example.com", sandbox.Knobs{IDToken: sandbox.IDTokenFaults{EmailUnverified: true}})
	ctx := context.Background()
	res, err := d.Flow.Callback(ctx, consent(t, d.Flow, "claimed@example.com"))
	if err != nil {
		t.Fatalf("Callback: %v", err)
	}
	c, err := st.GetCredential(ctx, res.UserID)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := d.Flow.Sessions.Verify(res.Session)
	if err != nil {
		t.Fatal(err)
	}
	if res.Email != "" || c.Email != "" || claims.Email != "" {
		t.Errorf("unverified email kept: result %q, stored %q, session %q; want none", res.Email, c.Email, claims.Email)
	}
}

// TestRefreshRefusesNonBearerToken is item 4 on the refresh path: a
// refreshed token of another type is not used, and the grant is not marked
// revoked for it.
func TestRefreshRefusesNonBearerToken(t *testing.T) {
	e := newEnv(t)
	st := memstore.New()
	f := e.instance(t, st).Flow
	ctx := context.Background()
	user := e.connect(t, f, "macrefresh@example.com")
	e.Sandbox.SetUserKnobs("macrefresh@example.com", sandbox.Knobs{TokenType: "mac"})
	e.clock.Advance(59 * time.Minute)
	if _, err := f.AccessToken(ctx, user); apperr.CodeOf(err) != apperr.UpstreamError {
		t.Errorf("AccessToken with a mac token: got %v, want upstream_error", err)
	}
	c, err := st.GetCredential(ctx, user)
	if err != nil || c.Status != store.StatusActive {
		t.Errorf("after a refused refresh the grant is %v (err %v), want active", c, err)
	}
}

var _ = testenv.ClientID
