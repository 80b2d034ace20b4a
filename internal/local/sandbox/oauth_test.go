package sandbox

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"
)

func TestCodeFlowWithPKCEAndOIDC(t *testing.T) {
	h := newHarness(t)
	v := oauth2.GenerateVerifier()
	q := h.code(t, connectOpts{email: "Jane.Doe@Example.com", prompt: "consent", offline: true, verifier: v,
		extraOpts: []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("nonce", "n-0S6_WzA2Mj"), oauth2.SetAuthURLParam("include_granted_scopes", "true")}})

	wantScope := "email openid https://www.googleapis.com/auth/gmail.readonly https://www.googleapis.com/auth/userinfo.email"
	gotParams := map[string]string{"state": q.Get("state"), "scope": q.Get("scope"), "authuser": q.Get("authuser"), "prompt": q.Get("prompt")}
	wantParams := map[string]string{"state": "st-123", "scope": wantScope, "authuser": "0", "prompt": "consent"}
	if diff := cmp.Diff(wantParams, gotParams); diff != "" {
		t.Errorf("redirect params (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(q.Get("code"), CodePrefix) {
		t.Errorf("code = %q, want prefix %s", q.Get("code"), CodePrefix)
	}

	tok, err := h.oauth.Exchange(h.ctx, q.Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if !strings.HasPrefix(tok.AccessToken, AccessTokenPrefix) || !strings.HasPrefix(tok.RefreshToken, RefreshTokenPrefix) {
		t.Errorf("tokens = %q / %q, want %s / %s prefixes", tok.AccessToken, tok.RefreshToken, AccessTokenPrefix, RefreshTokenPrefix)
	}
	if tok.TokenType != "Bearer" {
		t.Errorf("token_type = %q, want Bearer", tok.TokenType)
	}
	if got := tok.Extra("scope"); got != wantScope {
		t.Errorf("scope = %q, want %q", got, wantScope)
	}
	if got, want := tok.ExpiresIn, int64(3599); got != want {
		t.Errorf("expires_in = %d, want %d", got, want)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := h.verifier(t, testClientID).Verify(h.ctx, raw)
	if err != nil {
		t.Fatalf("Verify ID token: %v", err)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
		AZP           string `json:"azp"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	got := map[string]any{"iss": idt.Issuer, "sub": idt.Subject, "nonce": idt.Nonce, "aud": idt.Audience,
		"email": claims.Email, "verified": claims.EmailVerified, "azp": claims.AZP, "ttl": idt.Expiry.Sub(idt.IssuedAt)}
	want := map[string]any{"iss": h.srv.URL, "sub": SubFor("jane.doe@example.com"), "nonce": "n-0S6_WzA2Mj",
		"aud": []string{testClientID}, "email": "jane.doe@example.com", "verified": true, "azp": testClientID, "ttl": time.Hour}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ID token (-want +got):\n%s", diff)
	}
	if sub := SubFor("jane.doe@example.com"); len(sub) != 21 || strings.Trim(sub, "0123456789") != "" {
		t.Errorf("SubFor = %q, want 21 digits", sub)
	}
}

func TestRefreshThroughTokenSource(t *testing.T) {
	h := newHarness(t)
	tok := h.connect(t, "ref@example.com")
	first := tok.AccessToken
	tok.Expiry = time.Now().Add(-time.Minute) // force a refresh
	ts := h.oauth.TokenSource(h.ctx, tok)
	nt, err := ts.Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if nt.AccessToken == first || nt.AccessToken == "" {
		t.Errorf("refreshed access token = %q, want a new one", nt.AccessToken)
	}
	if nt.RefreshToken != tok.RefreshToken {
		t.Errorf("refresh token changed across refresh")
	}
	if nt.Extra("id_token") == nil {
		t.Errorf("refresh response has no id_token although openid was granted")
	}
	// The raw refresh response carries no refresh_token, like Google's.
	code, body := postForm(t, h.sb.TokenURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken},
		"client_id": {testClientID}, "client_secret": {testClientSecret}})
	if code != 200 {
		t.Fatalf("refresh status = %d: %v", code, body)
	}
	var keys []string
	for k := range body {
		keys = append(keys, k)
	}
	if diff := cmp.Diff([]string{"access_token", "expires_in", "id_token", "scope", "token_type"}, keys, sortStrings); diff != "" {
		t.Errorf("refresh response keys (-want +got):\n%s", diff)
	}
	st := h.sb.Stats()
	if got := st.RefreshCalls["ref@example.com"]; got != 2 {
		t.Errorf("RefreshCalls = %d, want 2", got)
	}
	if diff := cmp.Diff(map[string]int{"authorization_code": 1, "refresh_token": 2}, st.TokenCalls); diff != "" {
		t.Errorf("TokenCalls (-want +got):\n%s", diff)
	}
}

var sortStrings = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})

func TestExchangeErrors(t *testing.T) {
	tests := []struct {
		name     string
		run      func(t *testing.T, h *harness) error
		wantCode string
		wantDesc string
		status   int
	}{
		{"code replay", func(t *testing.T, h *harness) error {
			v := oauth2.GenerateVerifier()
			q := h.code(t, connectOpts{offline: true, verifier: v})
			if _, err := h.oauth.Exchange(h.ctx, q.Get("code"), oauth2.VerifierOption(v)); err != nil {
				t.Fatalf("first exchange: %v", err)
			}
			_, err := h.oauth.Exchange(h.ctx, q.Get("code"), oauth2.VerifierOption(v))
			return err
		}, "invalid_grant", "Bad Request", 400},
		{"unknown code", func(t *testing.T, h *harness) error {
			_, err := h.oauth.Exchange(h.ctx, CodePrefix+"nope")
			return err
		}, "invalid_grant", "Bad Request", 400},
		{"expired code", func(t *testing.T, h *harness) error {
			q := h.code(t, connectOpts{})
			h.clk.Advance(10*time.Minute + time.Second)
			_, err := h.oauth.Exchange(h.ctx, q.Get("code"))
			return err
		}, "invalid_grant", "Bad Request", 400},
		{"PKCE mismatch", func(t *testing.T, h *harness) error {
			q := h.code(t, connectOpts{verifier: oauth2.GenerateVerifier()})
			_, err := h.oauth.Exchange(h.ctx, q.Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier()))
			return err
		}, "invalid_grant", "Invalid code verifier.", 400},
		{"PKCE verifier missing", func(t *testing.T, h *harness) error {
			q := h.code(t, connectOpts{verifier: oauth2.GenerateVerifier()})
			_, err := h.oauth.Exchange(h.ctx, q.Get("code"))
			return err
		}, "invalid_grant", "Missing code verifier.", 400},
		{"redirect_uri differs", func(t *testing.T, h *harness) error {
			q := h.code(t, connectOpts{})
			cfg := *h.oauth
			cfg.RedirectURL = "http://localhost:8080/callback"
			_, err := cfg.Exchange(h.ctx, q.Get("code"))
			return err
		}, "redirect_uri_mismatch", "Bad Request", 400},
		{"wrong client secret", func(t *testing.T, h *harness) error {
			q := h.code(t, connectOpts{})
			cfg := *h.oauth
			cfg.ClientSecret = "wrong"
			_, err := cfg.Exchange(h.ctx, q.Get("code"))
			return err
		}, "invalid_client", "Unauthorized", 401},
		{"refresh after revoke", func(t *testing.T, h *harness) error {
			tok := h.connect(t, "gone@example.com")
			h.sb.Revoke("gone@example.com")
			tok.Expiry = time.Now().Add(-time.Hour)
			_, err := h.oauth.TokenSource(h.ctx, tok).Token()
			return err
		}, "invalid_grant", "Token has been expired or revoked.", 400},
		{"token endpoint fault", func(t *testing.T, h *harness) error {
			// AuthStyleAutoDetect would retry once with the other style.
			h.sb.SetTokenFaults(TokenFaults{FailNext: 2})
			_, err := h.oauth.Exchange(h.ctx, h.code(t, connectOpts{}).Get("code"))
			return err
		}, "temporarily_unavailable", "The service is currently unavailable.", 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			err := tc.run(t, h)
			if err == nil {
				t.Fatal("got no error")
			}
			re := retrieveErr(t, err)
			got := [3]any{re.ErrorCode, re.ErrorDescription, re.Response.StatusCode}
			if want := [3]any{tc.wantCode, tc.wantDesc, tc.status}; got != want {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

func TestClientAuthStyles(t *testing.T) {
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		h := newHarness(t)
		h.oauth.Endpoint.AuthStyle = style
		if _, err := h.oauth.Exchange(h.ctx, h.code(t, connectOpts{}).Get("code")); err != nil {
			t.Errorf("auth style %v: %v", style, err)
		}
	}
}

func TestTokenEndpointRequestErrors(t *testing.T) {
	h := newHarness(t)
	base := url.Values{"client_id": {testClientID}, "client_secret": {testClientSecret}}
	with := func(kv ...string) url.Values {
		v := url.Values{}
		for k, vs := range base {
			v[k] = vs
		}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	tests := []struct {
		name   string
		form   url.Values
		status int
		err    string
	}{
		{"unsupported grant", with("grant_type", "password"), 400, "unsupported_grant_type"},
		{"missing code", with("grant_type", "authorization_code"), 400, "invalid_request"},
		{"missing refresh token", with("grant_type", "refresh_token"), 400, "invalid_request"},
		{"unknown refresh token", with("grant_type", "refresh_token", "refresh_token", RefreshTokenPrefix+"x"), 400, "invalid_grant"},
		{"unknown client", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "client_id": {"other"}, "client_secret": {"s"}}, 401, "invalid_client"},
		{"no client", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, 400, "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := postForm(t, h.sb.TokenURL(), tc.form)
			if code != tc.status || body["error"] != tc.err {
				t.Errorf("got %d %v, want %d error=%s", code, body, tc.status, tc.err)
			}
		})
	}
}

func TestAuthorizeErrorPages(t *testing.T) {
	h := newHarness(t)
	good := url.Values{"client_id": {testClientID}, "redirect_uri": {testRedirect}, "response_type": {"code"},
		"scope": {defaultScopes}, "state": {"s"}}
	mod := func(k, v string) url.Values {
		out := url.Values{}
		for kk, vv := range good {
			out[kk] = vv
		}
		if v == "" {
			out.Del(k)
		} else {
			out.Set(k, v)
		}
		return out
	}
	tests := []struct {
		name   string
		params url.Values
		status int
		text   string
	}{
		{"redirect_uri not registered", mod("redirect_uri", "https://evil.example/cb"), 400, "Error 400: redirect_uri_mismatch"},
		{"redirect_uri missing", mod("redirect_uri", ""), 400, "Error 400: redirect_uri_mismatch"},
		{"unknown client", mod("client_id", "nope"), 401, "Error 401: invalid_client"},
		{"missing scope", mod("scope", ""), 400, "Error 400: invalid_request"},
		{"bad scope", mod("scope", "openid gmail.readonly"), 400, "Error 400: invalid_scope"},
		{"missing state", mod("state", ""), 400, "Error 400: invalid_request"},
		{"response_type token", mod("response_type", "token"), 400, "Error 400: invalid_request"},
		{"bad challenge method", mod("code_challenge_method", "S512"), 400, "Error 400: invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := noFollow.Get(h.sb.AuthURL() + "?" + tc.params.Encode())
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.text) {
				t.Errorf("got %d %q, want %d containing %q", resp.StatusCode, body, tc.status, tc.text)
			}
			if loc := resp.Header.Get("Location"); loc != "" {
				t.Errorf("redirected to %q; errors before a valid redirect_uri must not redirect", loc)
			}
		})
	}
}

func TestConsentKnobs(t *testing.T) {
	t.Run("deny", func(t *testing.T) {
		h := newHarness(t)
		h.sb.SetUserKnobs("no@example.com", Knobs{DenyConsent: true})
		q := h.code(t, connectOpts{email: "no@example.com"})
		got := map[string]string{"error": q.Get("error"), "state": q.Get("state"), "code": q.Get("code")}
		if diff := cmp.Diff(map[string]string{"error": "access_denied", "state": "st-123", "code": ""}, got); diff != "" {
			t.Errorf("deny redirect (-want +got):\n%s", diff)
		}
	})
	t.Run("drop gmail scope", func(t *testing.T) {
		h := newHarness(t)
		h.sb.SetUserKnobs("picky@example.com", Knobs{DropScopes: []string{"gmail.readonly"}})
		q := h.code(t, connectOpts{email: "picky@example.com", offline: true, prompt: "consent"})
		want := "email openid https://www.googleapis.com/auth/userinfo.email"
		if got := q.Get("scope"); got != want {
			t.Errorf("redirect scope = %q, want %q", got, want)
		}
		tok, err := h.oauth.Exchange(h.ctx, q.Get("code"))
		if err != nil {
			t.Fatal(err)
		}
		if got := tok.Extra("scope"); got != want {
			t.Errorf("token scope = %q, want %q", got, want)
		}
		_, err = h.gmail(t, tok).Users.Messages.List("me").Do()
		ge := googleErr(t, err)
		if ge.Code != 403 || len(ge.Errors) != 1 || ge.Errors[0].Reason != "insufficientPermissions" {
			t.Errorf("Gmail without scope: %+v, want 403 insufficientPermissions", ge)
		}
	})
	t.Run("access token ttl", func(t *testing.T) {
		h := newHarness(t)
		h.sb.SetUserKnobs("short@example.com", Knobs{AccessTokenTTL: 30 * time.Second})
		tok := h.connect(t, "short@example.com")
		if tok.ExpiresIn != 30 {
			t.Errorf("expires_in = %d, want 30", tok.ExpiresIn)
		}
		svc := h.gmail(t, tok)
		if _, err := svc.Users.GetProfile("me").Do(); err != nil {
			t.Fatalf("fresh token: %v", err)
		}
		h.clk.Advance(31 * time.Second)
		_, err := svc.Users.GetProfile("me").Do()
		if ge := googleErr(t, err); ge.Code != 401 {
			t.Errorf("expired token: code %d, want 401", ge.Code)
		}
	})
}

func TestRefreshTokenRule(t *testing.T) {
	h := newHarness(t)
	h.sb.SetUserKnobs("held@example.com", Knobs{WithholdRefreshToken: true})
	steps := []struct {
		name        string
		o           connectOpts
		wantRefresh bool
		wantPrompt  string
	}{
		{"first consent, no prompt", connectOpts{email: "rule@example.com", offline: true}, true, "consent"},
		{"returning user, no prompt", connectOpts{email: "rule@example.com", offline: true}, false, "none"},
		{"returning user, prompt=consent", connectOpts{email: "rule@example.com", offline: true, prompt: "consent"}, true, "consent"},
		{"new scope without prompt", connectOpts{email: "rule@example.com", offline: true, scopes: "openid email https://www.googleapis.com/auth/gmail.metadata"}, false, "consent"},
		{"online access", connectOpts{email: "online@example.com", prompt: "consent"}, false, "consent"},
		{"online then offline", connectOpts{email: "online@example.com", offline: true}, true, "none"},
		{"withheld by knob", connectOpts{email: "held@example.com", offline: true, prompt: "consent"}, false, "consent"},
	}
	for _, st := range steps {
		q := h.code(t, st.o)
		tok, err := h.oauth.Exchange(h.ctx, q.Get("code"))
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := tok.RefreshToken != ""; got != st.wantRefresh || q.Get("prompt") != st.wantPrompt {
			t.Errorf("%s: refresh token %v prompt %q, want %v %q", st.name, got, q.Get("prompt"), st.wantRefresh, st.wantPrompt)
		}
	}
	h.sb.Revoke("rule@example.com")
	q := h.code(t, connectOpts{email: "rule@example.com", offline: true})
	if tok, err := h.oauth.Exchange(h.ctx, q.Get("code")); err != nil || tok.RefreshToken == "" {
		t.Errorf("after revoke: err %v, refresh token %q; want a new refresh token", err, tok.RefreshToken)
	}
}

func TestIncludeGrantedScopesAndPromptNone(t *testing.T) {
	h := newHarness(t)
	h.code(t, connectOpts{email: "inc@example.com", offline: true})
	q := h.code(t, connectOpts{email: "inc@example.com", scopes: "openid email",
		extraOpts: []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("include_granted_scopes", "true")}})
	if got, want := q.Get("scope"), "email openid https://www.googleapis.com/auth/gmail.readonly https://www.googleapis.com/auth/userinfo.email"; got != want {
		t.Errorf("include_granted_scopes: scope %q, want %q", got, want)
	}
	q = h.code(t, connectOpts{email: "inc@example.com", scopes: "openid email"})
	if got, want := q.Get("scope"), "email openid https://www.googleapis.com/auth/userinfo.email"; got != want {
		t.Errorf("without include_granted_scopes: scope %q, want %q", got, want)
	}
	q = h.code(t, connectOpts{email: "new@example.com", prompt: "none"})
	if q.Get("error") != "consent_required" {
		t.Errorf("prompt=none for a new user: %v, want error=consent_required", q)
	}
}

func TestRevocation(t *testing.T) {
	tests := []struct {
		name   string
		revoke func(t *testing.T, h *harness, tok *oauth2.Token)
	}{
		{"access token in body", func(t *testing.T, h *harness, tok *oauth2.Token) {
			if code, body := postForm(t, h.sb.RevokeURL(), url.Values{"token": {tok.AccessToken}}); code != 200 {
				t.Fatalf("revoke: %d %v", code, body)
			}
		}},
		{"refresh token in query", func(t *testing.T, h *harness, tok *oauth2.Token) {
			resp, err := http.Post(h.sb.RevokeURL()+"?token="+url.QueryEscape(tok.RefreshToken), "application/x-www-form-urlencoded", nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("revoke: %v %v", err, resp.Status)
			}
			resp.Body.Close()
		}},
		{"admin Revoke", func(t *testing.T, h *harness, tok *oauth2.Token) {
			if !h.sb.Revoke("rev@example.com") {
				t.Errorf("Revoke reported no active grant")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			tok := h.connect(t, "rev@example.com")
			svc := h.gmail(t, tok)
			if _, err := svc.Users.GetProfile("me").Do(); err != nil {
				t.Fatalf("before revoke: %v", err)
			}
			tc.revoke(t, h, tok)
			_, err := svc.Users.GetProfile("me").Do()
			ge := googleErr(t, err)
			if ge.Code != 401 || len(ge.Errors) != 1 || ge.Errors[0].Reason != "authError" ||
				!strings.HasPrefix(ge.Message, "Request had invalid authentication credentials.") {
				t.Errorf("Gmail after revoke: %+v, want 401 authError", ge)
			}
			if !strings.Contains(ge.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("WWW-Authenticate = %q", ge.Header.Get("WWW-Authenticate"))
			}
			tok.Expiry = time.Now().Add(-time.Hour)
			_, err = h.oauth.TokenSource(h.ctx, tok).Token()
			if re := retrieveErr(t, err); re.ErrorCode != "invalid_grant" {
				t.Errorf("refresh after revoke: %q, want invalid_grant", re.ErrorCode)
			}
			code, body := postForm(t, h.sb.RevokeURL(), url.Values{"token": {tok.RefreshToken}})
			want := map[string]any{"error": "invalid_token", "error_description": "Token expired or revoked"}
			if code != 400 || !cmp.Equal(body, want) {
				t.Errorf("second revoke: %d %v, want 400 %v", code, body, want)
			}
		})
	}
}

func TestDiscoveryAndJWKS(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.SigningKey = nil }) // also covers key generation
	resp, err := http.Get(h.srv.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	decodeJSON(t, resp, &doc)
	want := map[string]any{
		"issuer":                                h.srv.URL,
		"authorization_endpoint":                h.srv.URL + "/o/oauth2/v2/auth",
		"token_endpoint":                        h.srv.URL + "/token",
		"revocation_endpoint":                   h.srv.URL + "/revoke",
		"jwks_uri":                              h.srv.URL + "/oauth2/v3/certs",
		"userinfo_endpoint":                     h.srv.URL + "/oauth2/v3/userinfo",
		"id_token_signing_alg_values_supported": []any{"RS256"},
		"code_challenge_methods_supported":      []any{"plain", "S256"},
	}
	for k, v := range want {
		if !cmp.Equal(doc[k], v) {
			t.Errorf("discovery %s = %v, want %v", k, doc[k], v)
		}
	}
	resp, err = http.Get(h.srv.URL + "/oauth2/v3/certs")
	if err != nil {
		t.Fatal(err)
	}
	var jwks struct {
		Keys []map[string]any `json:"keys"`
	}
	decodeJSON(t, resp, &jwks)
	if len(jwks.Keys) != 1 || jwks.Keys[0]["kty"] != "RSA" || jwks.Keys[0]["alg"] != "RS256" || jwks.Keys[0]["kid"] == "" || jwks.Keys[0]["use"] != "sig" {
		t.Errorf("JWKS = %v", jwks)
	}
	if _, ok := jwks.Keys[0]["d"]; ok {
		t.Errorf("JWKS leaks the private exponent")
	}
	// An ID token from this key verifies through discovery.
	tok := h.connect(t, "k@example.com")
	if _, err := h.verifier(t, testClientID).Verify(h.ctx, tok.Extra("id_token").(string)); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestMintIDToken(t *testing.T) {
	h := newHarness(t)
	const aud = "https://example.com/list-messages"
	raw, err := h.sb.MintIDToken(aud, "scheduler@proj.iam.gserviceaccount.com", 0)
	if err != nil {
		t.Fatal(err)
	}
	idt, err := h.verifier(t, aud).Verify(h.ctx, raw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	var c struct {
		Email    string `json:"email"`
		Verified bool   `json:"email_verified"`
	}
	_ = idt.Claims(&c)
	if c.Email != "scheduler@proj.iam.gserviceaccount.com" || !c.Verified || idt.Subject != SubFor(c.Email) {
		t.Errorf("claims = %+v sub %q", c, idt.Subject)
	}
	if _, err := h.verifier(t, "https://other.example/").Verify(h.ctx, raw); err == nil {
		t.Errorf("token verified with the wrong audience")
	}
	h.clk.Advance(2 * time.Hour)
	if _, err := h.verifier(t, aud).Verify(h.ctx, raw); err == nil {
		t.Errorf("expired token verified")
	}
}

func TestUserinfo(t *testing.T) {
	h := newHarness(t)
	tok := h.connect(t, "who@example.com")
	req, _ := http.NewRequest("GET", h.srv.URL+"/oauth2/v3/userinfo", nil)
	tok.SetAuthHeader(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	decodeJSON(t, resp, &got)
	want := map[string]any{"sub": SubFor("who@example.com"), "email": "who@example.com", "email_verified": true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("userinfo (-want +got):\n%s", diff)
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	var buf bytes.Buffer
	h := newHarness(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	v := oauth2.GenerateVerifier()
	q := h.code(t, connectOpts{email: "log@example.com", offline: true, prompt: "consent", verifier: v})
	tok, err := h.oauth.Exchange(h.ctx, q.Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	_, body := postForm(t, h.sb.TokenURL(), url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"redirect_uri": {testRedirect}, "client_id": {testClientID}, "client_secret": {testClientSecret}})
	h.sb.Revoke("log@example.com")
	logs := buf.String()
	if logs == "" {
		t.Fatal("nothing was logged")
	}
	for name, secret := range map[string]string{"code": q.Get("code"), "access token": tok.AccessToken,
		"refresh token": tok.RefreshToken, "verifier": v, "client secret": testClientSecret} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain the %s", name)
		}
		if strings.Contains(body["error_description"].(string), secret) {
			t.Errorf("error description contains the %s", name)
		}
	}
}

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no base URL", Config{ClientID: "c", ClientSecret: "s"}},
		{"relative base URL", Config{BaseURL: "/sandbox", ClientID: "c", ClientSecret: "s"}},
		{"no client", Config{BaseURL: "http://x"}},
		{"bad redirect", Config{BaseURL: "http://x", ClientID: "c", ClientSecret: "s", RedirectURIs: []string{"/cb"}}},
	}
	for _, tc := range tests {
		tc.cfg.SigningKey = sharedKey(t)
		if _, err := New(tc.cfg); err == nil {
			t.Errorf("%s: New succeeded, want an error", tc.name)
		}
	}
}

// TestMountedUnderPrefix checks the runner's layout: BaseURL with a path and
// http.StripPrefix.
func TestMountedUnderPrefix(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	sb, err := New(Config{BaseURL: srv.URL + "/sandbox", ClientID: testClientID, ClientSecret: testClientSecret,
		RedirectURIs: []string{testRedirect}, SigningKey: sharedKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/sandbox/", http.StripPrefix("/sandbox", sb))
	h := &harness{sb: sb, srv: srv, clk: &clock{t: time.Now()}, ctx: t.Context(),
		oauth: &oauth2.Config{ClientID: testClientID, ClientSecret: testClientSecret, Endpoint: sb.Endpoint(),
			RedirectURL: testRedirect, Scopes: strings.Fields(defaultScopes)}}
	tok := h.connect(t, "mounted@example.com")
	if _, err := h.verifier(t, testClientID).Verify(h.ctx, tok.Extra("id_token").(string)); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if _, err := h.gmail(t, tok).Users.Messages.List("me").Do(); err != nil {
		t.Errorf("Gmail under prefix: %v", err)
	}
}
