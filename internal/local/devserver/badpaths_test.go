package devserver_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"example.com/gmailoauth/internal/keyset"
	"example.com/gmailoauth/internal/local/devtest"
	"example.com/gmailoauth/internal/local/sandbox"
	"example.com/gmailoauth/internal/oauthflow"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/memstore"
)

// begin asks Authorize for a consent URL in JSON mode.
func begin(t *testing.T, s *devtest.Stack, query string, h http.Header) *url.URL {
	t.Helper()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Accept", "application/json")
	r := s.Get(t, "/authorize?"+query, h)
	if r.Status != http.StatusOK {
		t.Fatalf("authorize?%s: got %d %s, want 200", query, r.Status, r.Body)
	}
	var a struct {
		URL string `json:"authorization_url"`
	}
	r.JSON(t, &a)
	u, err := url.Parse(a.URL)
	if err != nil {
		t.Fatalf("authorization_url: %v", err)
	}
	return u
}

// consentRedirect follows the consent URL to the sandbox and returns the
// callback URL it redirects to (not followed).
func consentRedirect(t *testing.T, s *devtest.Stack, u *url.URL) *url.URL {
	t.Helper()
	r := s.Get(t, u.String(), nil)
	if r.Status != http.StatusFound {
		t.Fatalf("consent: got %d %s, want 302", r.Status, r.Body)
	}
	return r.Location
}

func wantError(t *testing.T, r *devtest.Response, status int, code string) {
	t.Helper()
	if r.Status != status || r.ErrorCode() != code {
		t.Errorf("got %d %s, want %d %s", r.Status, r.Body, status, code)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want JSON", ct)
	}
}

func TestCallbackBadPaths(t *testing.T) {
	st := memstore.New()
	s := devtest.Start(t, devtest.Options{Store: st, ReturnPaths: []string{"/app"}})
	ctx := context.Background()

	t.Run("unknown state", func(t *testing.T) {
		r := s.Get(t, "/callback?state="+strings.Repeat("A", 43)+"&code=abc", nil)
		wantError(t, r, http.StatusBadRequest, "invalid_state")
	})
	t.Run("missing state", func(t *testing.T) {
		wantError(t, s.Get(t, "/callback?code=abc", nil), http.StatusBadRequest, "invalid_state")
	})
	t.Run("replayed state", func(t *testing.T) {
		cb := consentRedirect(t, s, begin(t, s, "login_hint=replay@example.com", nil))
		if r := s.Get(t, cb.String(), nil); r.Status != http.StatusOK {
			t.Fatalf("first callback: got %d %s", r.Status, r.Body)
		}
		wantError(t, s.Get(t, cb.String(), nil), http.StatusBadRequest, "invalid_state")
	})
	t.Run("expired state", func(t *testing.T) {
		u := begin(t, s, "login_hint=slow@example.com", nil)
		s.Clock.Advance(11 * time.Minute)
		cb := consentRedirect(t, s, u)
		wantError(t, s.Get(t, cb.String(), nil), http.StatusBadRequest, "expired_state")
	})
	t.Run("missing code", func(t *testing.T) {
		cb := consentRedirect(t, s, begin(t, s, "login_hint=nocode@example.com", nil))
		q := cb.Query()
		q.Del("code")
		cb.RawQuery = q.Encode()
		r := s.Get(t, cb.String(), nil)
		wantError(t, r, http.StatusBadRequest, "missing_code")
		if r.AuthorizationURL() == "" {
			t.Errorf("missing code: want an authorization_url to start again")
		}
	})
	t.Run("access denied, JSON", func(t *testing.T) {
		s.Sandbox.SetUserKnobs("denier@example.com", sandbox.Knobs{DenyConsent: true})
		cb := consentRedirect(t, s, begin(t, s, "login_hint=denier@example.com", nil))
		if cb.Query().Get("error") != "access_denied" {
			t.Fatalf("sandbox did not deny: %s", cb)
		}
		r := s.Get(t, cb.String(), nil)
		wantError(t, r, http.StatusForbidden, "access_denied")
		// The state was consumed.
		wantError(t, s.Get(t, cb.String(), nil), http.StatusBadRequest, "invalid_state")
	})
	t.Run("access denied, redirect to return_to", func(t *testing.T) {
		s.Sandbox.SetUserKnobs("denier2@example.com", sandbox.Knobs{DenyConsent: true})
		cb := consentRedirect(t, s, begin(t, s, "login_hint=denier2@example.com&state=fe1&return_to="+url.QueryEscape(s.URL+"/app"), nil))
		r := s.Get(t, cb.String(), nil)
		if r.Status != http.StatusFound || r.Location.Path != "/app" {
			t.Fatalf("got %d %v, want 302 to /app", r.Status, r.Location)
		}
		f, _ := url.ParseQuery(r.Location.EscapedFragment())
		if f.Get("error") != "access_denied" || f.Get("state") != "fe1" || f.Get("session") != "" {
			t.Errorf("fragment %q: want error=access_denied, state=fe1, no session", r.Location.Fragment)
		}
	})
	t.Run("gmail scope unticked", func(t *testing.T) {
		const email = "unticked@example.com"
		s.Sandbox.SetUserKnobs(email, sandbox.Knobs{DropScopes: []string{"gmail.readonly"}})
		r := s.Get(t, consentRedirect(t, s, begin(t, s, "login_hint="+email, nil)).String(), nil)
		wantError(t, r, http.StatusForbidden, "insufficient_scope")
		if au, _ := url.Parse(r.AuthorizationURL()); au == nil || au.Query().Get("prompt") != "consent" {
			t.Errorf("authorization_url %q: want one that forces consent", r.AuthorizationURL())
		}
		if _, err := st.GetCredential(ctx, sandbox.SubFor(email)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("stored something for a grant without Gmail access: %v", err)
		}
	})
	t.Run("no refresh token and none stored", func(t *testing.T) {
		const email = "norefresh@example.com"
		s.Sandbox.SetUserKnobs(email, sandbox.Knobs{WithholdRefreshToken: true})
		r := s.Get(t, consentRedirect(t, s, begin(t, s, "login_hint="+email, nil)).String(), nil)
		wantError(t, r, http.StatusConflict, "no_refresh_token")
		if au, _ := url.Parse(r.AuthorizationURL()); au == nil || au.Query().Get("prompt") != "consent" || au.Query().Get("access_type") != "offline" {
			t.Errorf("authorization_url %q: want offline access with forced consent", r.AuthorizationURL())
		}
		if _, err := st.GetCredential(ctx, sandbox.SubFor(email)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("stored a credential without a refresh token: %v", err)
		}
	})
	t.Run("no refresh token but one stored", func(t *testing.T) {
		const email = "returning@example.com"
		session, userID := s.Connect(t, email)
		d, _ := s.Server.App.Deps(ctx)
		before, _ := st.GetCredential(ctx, userID)
		rtBefore, _ := d.Keys().Open(keyset.Sealed(before.RefreshToken), userID, oauthflow.FieldRefreshToken)
		// A returning user with an active grant is not forced through consent,
		// so Google answers without a refresh token.
		u := begin(t, s, "login_hint="+email, devtest.Bearer(session))
		if u.Query().Get("prompt") != "" {
			t.Errorf("returning user: prompt=%q, want none", u.Query().Get("prompt"))
		}
		r := s.Get(t, consentRedirect(t, s, u).String(), nil)
		if r.Status != http.StatusOK {
			t.Fatalf("repeat consent: got %d %s, want 200", r.Status, r.Body)
		}
		after, _ := st.GetCredential(ctx, userID)
		rtAfter, err := d.Keys().Open(keyset.Sealed(after.RefreshToken), userID, oauthflow.FieldRefreshToken)
		if err != nil || string(rtAfter) != string(rtBefore) {
			t.Errorf("stored refresh token changed or lost after a consent without one (err %v)", err)
		}
	})
}

func TestAuthorizeReturnTo(t *testing.T) {
	s := devtest.Start(t, devtest.Options{ReturnPaths: []string{"/app"},
		Env: map[string]string{"ALLOWED_RETURN_ORIGINS": "https://app.example.com", "ALLOWED_RETURN_URLS": "https://app.example.com/*"}})
	for _, tc := range []struct {
		name, returnTo string
		ok             bool
	}{
		{"allowed origin", "https://app.example.com/done?x=1", true},
		{"allowed origin, upper-case host", "https://APP.example.com/done", true},
		{"local stack origin", s.URL + "/app", true},
		{"foreign origin", "https://evil.example.net/", false},
		{"look-alike host suffix", "https://app.example.com.evil.net/", false},
		{"look-alike userinfo", "https://app.example.com@evil.net/", false},
		{"different scheme", "http://app.example.com/", false},
		{"different port", "https://app.example.com:8443/", false},
		{"protocol-relative", "//app.example.com/", false},
		{"javascript URL", "javascript:alert(document.cookie)", false},
		{"data URL", "data:text/html,<script>alert(1)</script>", false},
		{"backslash trick", `https://app.example.com\@evil.net/`, false},
		{"fragment", "https://app.example.com/#x", false},
		{"relative path", "/done", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.Get(t, "/authorize?return_to="+url.QueryEscape(tc.returnTo), nil)
			if tc.ok {
				if r.Status != http.StatusFound {
					t.Errorf("got %d %s, want 302", r.Status, r.Body)
				}
				return
			}
			wantError(t, r, http.StatusBadRequest, "invalid_return_to")
			if r.Location != nil {
				t.Errorf("redirected to %s for a refused return_to", r.Location)
			}
		})
	}
}

func TestListMessagesBadPaths(t *testing.T) {
	st := memstore.New()
	s := devtest.Start(t, devtest.Options{Store: st})
	session, _ := s.Connect(t, "bob@example.com")

	// Sessions an attacker can make.
	claims := jwt.MapClaims{"iss": "gmailoauth", "aud": "gmailoauth-session", "sub": sandbox.SubFor("bob@example.com"),
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	forged, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("not-the-app-key-not-the-app-key!"))
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	parts := strings.Split(session, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"sub":"`, `"sub":"1`, 1))) + "." + parts[2]
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."

	for _, tc := range []struct {
		name   string
		header http.Header
		query  string
		status int
		code   string
	}{
		{"no session", nil, "", http.StatusUnauthorized, "missing_session"},
		{"garbage session", devtest.Bearer("abc.def.ghi"), "", http.StatusUnauthorized, "invalid_session"},
		{"forged session", devtest.Bearer(forged), "", http.StatusUnauthorized, "invalid_session"},
		{"alg none session", devtest.Bearer(none), "", http.StatusUnauthorized, "invalid_session"},
		{"alg none header on a real payload", devtest.Bearer(noneHeader), "", http.StatusUnauthorized, "invalid_session"},
		{"tampered payload", devtest.Bearer(tampered), "", http.StatusUnauthorized, "invalid_session"},
		{"max_results 0", devtest.Bearer(session), "max_results=0", http.StatusBadRequest, "invalid_request"},
		{"max_results 501", devtest.Bearer(session), "max_results=501", http.StatusBadRequest, "invalid_request"},
		{"max_results not a number", devtest.Bearer(session), "max_results=ten", http.StatusBadRequest, "invalid_request"},
		{"bad format", devtest.Bearer(session), "format=full", http.StatusBadRequest, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, s.Get(t, "/list-messages?"+tc.query, tc.header), tc.status, tc.code)
		})
	}
	t.Run("max_results 500 accepted", func(t *testing.T) {
		if r := s.Get(t, "/list-messages?max_results=500", devtest.Bearer(session)); r.Status != http.StatusOK {
			t.Errorf("got %d %s, want 200", r.Status, r.Body)
		}
	})
	t.Run("expired session", func(t *testing.T) {
		s.Clock.Advance(61 * time.Minute)
		defer s.Clock.Advance(-61 * time.Minute)
		wantError(t, s.Get(t, "/list-messages", devtest.Bearer(session)), http.StatusUnauthorized, "invalid_session")
	})
}

// TestRefreshInvalidGrant: the access token expires, the refresh answers
// invalid_grant, the credential is marked revoked (not deleted) and the
// frontend gets 401 reauthorization_required.
func TestRefreshInvalidGrant(t *testing.T) {
	st := memstore.New()
	s := devtest.Start(t, devtest.Options{Store: st, NoPush: true}) // counts the frontend's own calls
	const email = "carol@example.com"
	session, userID := s.Connect(t, email)
	if r := s.Get(t, "/list-messages?max_results=1", devtest.Bearer(session)); r.Status != http.StatusOK {
		t.Fatalf("list: got %d %s", r.Status, r.Body)
	}
	// An hour later the access token has expired; meanwhile the grant was revoked.
	s.Clock.Advance(59 * time.Minute)
	s.Sandbox.Revoke(email)
	s.Sandbox.ResetStats()
	r := s.Get(t, "/list-messages", devtest.Bearer(session))
	wantError(t, r, http.StatusUnauthorized, "reauthorization_required")
	stats := s.Sandbox.Stats()
	if got := stats.TokenCalls["refresh_token"]; got != 1 {
		t.Errorf("refresh calls = %d, want 1", got)
	}
	if n := stats.GmailCalls["messages.list"]; n != 0 {
		t.Errorf("Gmail was called %d times with a revoked grant, want 0", n)
	}
	c, err := st.GetCredential(context.Background(), userID)
	if err != nil || c.Status != store.StatusRevoked || !strings.Contains(c.RevokedReason, "invalid_grant") {
		t.Errorf("credential %+v, %v: want kept, status revoked, reason invalid_grant", c, err)
	}
	// Connecting again restores access.
	session, _ = s.Connect(t, email)
	if r := s.Get(t, "/list-messages?max_results=1", devtest.Bearer(session)); r.Status != http.StatusOK {
		t.Errorf("after reconnect: got %d %s, want 200", r.Status, r.Body)
	}
}

// TestCodeInjection: an authorization code obtained in one authorization
// (say, stolen from another user's redirect) cannot be redeemed with another
// authorization's state: the PKCE verifier bound to that state does not
// match the code's challenge, so the token endpoint refuses it and nothing is
// stored (RFC 9700 §4.5).
func TestCodeInjection(t *testing.T) {
	st := memstore.New()
	s := devtest.Start(t, devtest.Options{Store: st})
	victim := consentRedirect(t, s, begin(t, s, "login_hint=victim@example.com", nil))
	attacker := consentRedirect(t, s, begin(t, s, "login_hint=attacker@example.com", nil))
	injected := *attacker
	q := injected.Query()
	q.Set("code", victim.Query().Get("code"))
	injected.RawQuery = q.Encode()
	wantError(t, s.Get(t, injected.String(), nil), http.StatusBadRequest, "invalid_grant")
	for _, email := range []string{"victim@example.com", "attacker@example.com"} {
		if _, err := st.GetCredential(context.Background(), sandbox.SubFor(email)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: stored a credential from an injected code (err %v)", email, err)
		}
	}
}
