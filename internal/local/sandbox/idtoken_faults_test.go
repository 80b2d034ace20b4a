package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"
)

// claimsOf decodes an ID token's payload without verifying it.
func claimsOf(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("ID token %q is not a JWS", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestIDTokenFaults: each knob spoils the ID token (or the token type) as
// it says, and only that.
func TestIDTokenFaults(t *testing.T) {
	h := newHarness(t)
	exchange := func(t *testing.T, email string, k Knobs) *oauth2.Token {
		t.Helper()
		h.sb.SetUserKnobs(email, k)
		v := oauth2.GenerateVerifier()
		q := h.code(t, connectOpts{email: email, prompt: "consent", offline: true, verifier: v})
		tok, err := h.oauth.Exchange(h.ctx, q.Get("code"), oauth2.VerifierOption(v))
		if err != nil {
			t.Fatalf("Exchange: %v", err)
		}
		return tok
	}
	raw := func(tok *oauth2.Token) string { s, _ := tok.Extra("id_token").(string); return s }

	t.Run("omit claims", func(t *testing.T) {
		c := claimsOf(t, raw(exchange(t, "nosub@example.com", Knobs{IDToken: IDTokenFaults{OmitClaims: []string{"sub", "iat"}}})))
		if _, ok := c["sub"]; ok {
			t.Errorf("sub present: %v", c)
		}
		if _, ok := c["iat"]; ok {
			t.Errorf("iat present: %v", c)
		}
		if c["aud"] != testClientID {
			t.Errorf("aud = %v, want the client id", c["aud"])
		}
	})
	t.Run("extra audience and azp", func(t *testing.T) {
		c := claimsOf(t, raw(exchange(t, "aud@example.com", Knobs{IDToken: IDTokenFaults{ExtraAudience: "other-client", AZP: "other-client"}})))
		if diff := cmp.Diff([]any{testClientID, "other-client"}, c["aud"]); diff != "" {
			t.Errorf("aud (-want +got):\n%s", diff)
		}
		if c["azp"] != "other-client" {
			t.Errorf("azp = %v", c["azp"])
		}
	})
	t.Run("email unverified", func(t *testing.T) {
		c := claimsOf(t, raw(exchange(t, "unverified@example.com", Knobs{IDToken: IDTokenFaults{EmailUnverified: true}})))
		if c["email_verified"] != false || c["email"] != "unverified@example.com" {
			t.Errorf("claims = %v", c)
		}
	})
	t.Run("forged signature", func(t *testing.T) {
		tok := exchange(t, "forged@example.com", Knobs{IDToken: IDTokenFaults{Forge: true}})
		if _, err := h.verifier(t, testClientID).Verify(h.ctx, raw(tok)); err == nil {
			t.Errorf("a forged ID token verifies against the JWKS")
		}
		good := exchange(t, "genuine@example.com", Knobs{})
		if _, err := h.verifier(t, testClientID).Verify(h.ctx, raw(good)); err != nil {
			t.Errorf("a genuine ID token: %v", err)
		}
	})
	t.Run("token type", func(t *testing.T) {
		if tok := exchange(t, "mac@example.com", Knobs{TokenType: "mac"}); tok.TokenType != "mac" {
			t.Errorf("token_type = %q, want mac", tok.TokenType)
		}
	})
}

// TestRevokeAndJWKSFaults: the revocation endpoint answers the injected
// status and body, and JWKS fetches are counted.
func TestRevokeAndJWKSFaults(t *testing.T) {
	h := newHarness(t)
	tok := h.connect(t, "rev@example.com")
	h.sb.SetRevokeFaults(RevokeFaults{Status: http.StatusBadRequest, Body: `{"error":"` + strings.Repeat("x", 100) + `"}`})
	resp, err := http.PostForm(h.sb.RevokeURL(), map[string][]string{"token": {tok.RefreshToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !h.sb.UserInfo("rev@example.com").GrantActive {
		t.Errorf("revocation with faults: %d, grant active %v; want 400 and the grant kept", resp.StatusCode, h.sb.UserInfo("rev@example.com").GrantActive)
	}
	h.sb.SetRevokeFaults(RevokeFaults{})
	h.sb.ResetStats()
	resp, err = http.Get(h.sb.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := h.sb.Stats().JWKSCalls; n != 1 {
		t.Errorf("JWKS calls = %d, want 1", n)
	}
}
