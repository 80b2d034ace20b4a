package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"example.com/gmailoauth/internal/local/devtest"
	"example.com/gmailoauth/internal/local/testenv"
	"example.com/gmailoauth/internal/oauthflow"
)

// authorizeFrom asks Authorize for a consent URL from remote (and, when
// set, with an X-Forwarded-For header) and returns the answer.
func authorizeFrom(a interface {
	Authorize(http.ResponseWriter, *http.Request)
}, remote, xff string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/?login_hint=someone@example.com", nil)
	req.Header.Set("Accept", "application/json")
	req.RemoteAddr = remote
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	a.Authorize(rec, req)
	return rec
}

// TestPendingAuthorizationsAreBounded is issue 15 item 14: starting
// authorizations needs no login, so an instance bounds the pending ones
// per client address and in all, answering 429 rate_limited with a
// Retry-After, and admits again once they have expired.
func TestPendingAuthorizationsAreBounded(t *testing.T) {
	clock := &devtest.Clock{}
	env := testenv.New(t, testenv.Options{Now: clock.Now, Logger: quiet()})
	a := env.NewApp()
	d, err := a.Deps(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d.Flow.Pending = oauthflow.NewPendingStates(5, 8)

	for i := range 5 {
		if rec := authorizeFrom(a, "203.0.113.1:4000", ""); rec.Code != http.StatusOK {
			t.Fatalf("authorization %d from one address: %d %s, want 200", i, rec.Code, rec.Body)
		}
	}
	rec := authorizeFrom(a, "203.0.113.1:4001", "")
	if rec.Code != http.StatusTooManyRequests || !strings.Contains(rec.Body.String(), `"rate_limited"`) || rec.Header().Get("Retry-After") == "" {
		t.Errorf("sixth from one address: %d %s (Retry-After %q), want 429 rate_limited with a Retry-After", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}
	for i := range 3 {
		if rec := authorizeFrom(a, fmt.Sprintf("198.51.100.%d:4000", i), ""); rec.Code != http.StatusOK {
			t.Fatalf("another address %d: %d %s, want 200", i, rec.Code, rec.Body)
		}
	}
	if rec := authorizeFrom(a, "192.0.2.77:4000", ""); rec.Code != http.StatusTooManyRequests {
		t.Errorf("past the instance's bound: %d %s, want 429", rec.Code, rec.Body)
	}
	clock.Advance(11 * time.Minute) // every counted state has expired
	if rec := authorizeFrom(a, "203.0.113.1:4000", ""); rec.Code != http.StatusOK {
		t.Errorf("after the states expired: %d %s, want 200", rec.Code, rec.Body)
	}
}

// TestPendingBoundIsPerForwardedClient: on Cloud Functions (K_SERVICE set)
// the key is the address Google's front end appended last to
// X-Forwarded-For; what the client put before it changes nothing.
func TestPendingBoundIsPerForwardedClient(t *testing.T) {
	env := testenv.New(t, testenv.Options{Logger: quiet(), Env: map[string]string{"K_SERVICE": "gmail-authorize"}})
	a := env.NewApp()
	d, err := a.Deps(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d.Flow.Pending = oauthflow.NewPendingStates(3, 100)
	for i := range 3 {
		if rec := authorizeFrom(a, "169.254.8.1:80", fmt.Sprintf("10.9.9.%d, 203.0.113.5", i)); rec.Code != http.StatusOK {
			t.Fatalf("authorization %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	if rec := authorizeFrom(a, "169.254.8.1:80", "10.9.9.200, 203.0.113.5"); rec.Code != http.StatusTooManyRequests {
		t.Errorf("a spoofed first entry escaped the bound: %d, want 429", rec.Code)
	}
	if rec := authorizeFrom(a, "169.254.8.1:80", "203.0.113.6"); rec.Code != http.StatusOK {
		t.Errorf("another client behind the same front end: %d, want 200", rec.Code)
	}
}

// TestPendingDefaultsAdmitACorporateCrowd: with the default bounds, 300
// people connecting at once from one address all get a consent URL.
func TestPendingDefaultsAdmitACorporateCrowd(t *testing.T) {
	env := testenv.New(t, testenv.Options{Logger: quiet()})
	a := env.NewApp()
	for i := range 300 {
		if rec := authorizeFrom(a, "203.0.113.50:443", ""); rec.Code != http.StatusOK {
			t.Fatalf("person %d of 300 behind one address: %d %s, want 200", i, rec.Code, rec.Body)
		}
	}
}
