package app_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"example.com/gmailoauth/internal/app"
	"example.com/gmailoauth/internal/local/testenv"
)

// TestAuthorizeNeedsOnlyTheClientID is issue 15 item 20: configured with
// OAUTH_CLIENT_ID and no client JSON, an instance serves Authorize
// (consent URL, disconnect with its revocation at Google) without ever
// reading the client secret, and the functions that need the secret answer
// 500 misconfigured instead of failing at Google.
func TestAuthorizeNeedsOnlyTheClientID(t *testing.T) {
	full := testenv.New(t, testenv.Options{Logger: quiet()})
	_, session := full.Connect(t, "idonly@example.com")

	opts := full.AppOptions()
	src := &countingSource{Source: opts.Secrets, reads: map[string]int{}}
	opts.Secrets = src
	env := map[string]string{"OAUTH_CLIENT_SECRET_FILE": "", "OAUTH_CLIENT_ID": testenv.ClientID}
	opts.Getenv = func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return full.Getenv(k)
	}
	a := app.New(opts)

	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/?login_hint=idonly@example.com", nil)
	req.Header.Set("Accept", "application/json")
	a.Authorize(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "client_id="+url.QueryEscape(testenv.ClientID)) {
		t.Fatalf("Authorize with the client id only: %d %s, want a consent URL for the client", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	req = httptest.NewRequest(http.MethodDelete, "/", nil)
	req.Header.Set("Authorization", "Bearer "+session)
	a.Authorize(rec, req)
	if rec.Code != http.StatusNoContent || full.Sandbox.UserInfo("idonly@example.com").GrantActive {
		t.Errorf("disconnect with the client id only: %d %s, grant active at Google %v; want 204 and revoked",
			rec.Code, rec.Body, full.Sandbox.UserInfo("idonly@example.com").GrantActive)
	}
	for ref, n := range src.reads {
		if strings.Contains(ref, "client") {
			t.Errorf("the client secret %s was read %d times", ref, n)
		}
	}
	rec = httptest.NewRecorder()
	a.OAuthCallback(rec, httptest.NewRequest(http.MethodGet, "/?state=x&code=y", nil))
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "misconfigured") {
		t.Errorf("OAuthCallback with the client id only: %d %s, want 500 misconfigured", rec.Code, rec.Body)
	}
}

// TestClientIDMustMatchTheClientJSON: both configured, they must agree.
func TestClientIDMustMatchTheClientJSON(t *testing.T) {
	full := testenv.New(t, testenv.Options{Logger: quiet()})
	opts := full.AppOptions()
	opts.Getenv = func(k string) string {
		if k == "OAUTH_CLIENT_ID" {
			return "another.apps.googleusercontent.com"
		}
		return full.Getenv(k)
	}
	if _, err := app.Load(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "OAUTH_CLIENT_ID") {
		t.Errorf("Load with a client id that is not the JSON's: %v, want an OAUTH_CLIENT_ID problem", err)
	}
}
