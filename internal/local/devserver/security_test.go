package devserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"example.com/gmailoauth/internal/local/devtest"
	"example.com/gmailoauth/internal/local/sandbox"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/memstore"
)

// TestReturnToExactURLs is issue 15 items 7 and 9: return_to must be one of
// the allow-listed return URLs (exact, or under a listed path prefix);
// another page of an allowed origin, a path that climbs out of a prefix,
// and a bare "#" are refused.
func TestReturnToExactURLs(t *testing.T) {
	s := devtest.Start(t, devtest.Options{Env: map[string]string{
		"ALLOWED_RETURN_ORIGINS": "https://app.example.com",
		"ALLOWED_RETURN_URLS":    "https://app.example.com/oauth/done,https://app.example.com/app/*",
	}})
	for _, tc := range []struct {
		name, returnTo string
		ok             bool
	}{
		{"exact URL", "https://app.example.com/oauth/done", true},
		{"exact URL, upper-case host and default port", "https://APP.example.com:443/oauth/done", true},
		{"under the prefix", "https://app.example.com/app/inbox?tab=2", true},
		{"the prefix itself", "https://app.example.com/app/", true},

		{"item 7: another page of the origin", "https://app.example.com/redirect?to=https://evil.example", false},
		{"item 7: the origin alone", "https://app.example.com/", false},
		{"exact URL with a query", "https://app.example.com/oauth/done?x=1", false},
		{"below an exact URL", "https://app.example.com/oauth/done/x", false},
		{"the prefix without its slash", "https://app.example.com/app", false},
		{"a sibling of the prefix", "https://app.example.com/apple", false},
		{"dot segments out of the prefix", "https://app.example.com/app/../redirect", false},
		{"encoded dot segments", "https://app.example.com/app/%2e%2e/redirect", false},
		{"encoded slash", "https://app.example.com/app%2F..%2Fredirect", false},
		{"item 9: a bare fragment", "https://app.example.com/oauth/done#", false},
		{"a fragment", "https://app.example.com/oauth/done#x", false},
		{"another origin, same path", "https://evil.example/oauth/done", false},
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
		})
	}
}

// TestReturnToNeedsReturnURLs: with only ALLOWED_RETURN_ORIGINS (the CORS
// allow-list) configured, no return_to is accepted: the origin alone would
// hand the session to any of its pages.
func TestReturnToNeedsReturnURLs(t *testing.T) {
	s := devtest.Start(t, devtest.Options{Env: map[string]string{"ALLOWED_RETURN_ORIGINS": "https://app.example.com"}})
	wantError(t, s.Get(t, "/authorize?return_to="+url.QueryEscape("https://app.example.com/done"), nil),
		http.StatusBadRequest, "invalid_return_to")
}

// TestConsentSkippedOnlyWithTheUsersSession is items 7 and 8: consent is
// skipped only for a request carrying a valid session of the user it is
// for. A login_hint that is a user id, without a session, forces consent
// whether or not that account is connected (so the answer tells nothing);
// a session of another user does too.
func TestConsentSkippedOnlyWithTheUsersSession(t *testing.T) {
	s := devtest.Start(t, devtest.Options{Store: memstore.New()})
	aliceSession, alice := s.Connect(t, "alice@example.com")
	bobSession, _ := s.Connect(t, "bob@example.com")
	unknown := sandbox.SubFor("never-connected@example.com")
	prompt := func(query string, h http.Header) string { return begin(t, s, query, h).Query().Get("prompt") }

	if p := prompt("login_hint="+alice, nil); p != "consent" {
		t.Errorf("item 7: login_hint=<connected sub> without a session: prompt=%q, want consent", p)
	}
	if a, b := prompt("login_hint="+alice, nil), prompt("login_hint="+unknown, nil); a != b {
		t.Errorf("item 8: connected and unknown subs answer prompt=%q and %q: an oracle", a, b)
	}
	if p := prompt("login_hint="+alice, devtest.Bearer(bobSession)); p != "consent" {
		t.Errorf("login_hint=<alice> with bob's session: prompt=%q, want consent", p)
	}
	if p := prompt("login_hint="+alice, devtest.Bearer(aliceSession)); p != "" {
		t.Errorf("login_hint=<alice> with alice's session: prompt=%q, want none (returning user)", p)
	}
	if p := prompt("login_hint=alice@example.com", devtest.Bearer(aliceSession)); p != "" {
		t.Errorf("login_hint=alice's email with alice's session: prompt=%q, want none", p)
	}
	u := begin(t, s, "", devtest.Bearer(aliceSession))
	if u.Query().Get("prompt") != "" || u.Query().Get("login_hint") != alice {
		t.Errorf("alice's session alone: prompt=%q login_hint=%q, want no prompt and alice's user id as hint",
			u.Query().Get("prompt"), u.Query().Get("login_hint"))
	}
}

// TestSessionBoundToGrant is item 10: a session issued before a disconnect
// is dead, even once the user connects again, and cannot disconnect the new
// grant.
func TestSessionBoundToGrant(t *testing.T) {
	s := devtest.Start(t, devtest.Options{Store: memstore.New()})
	old, _ := s.Connect(t, "dora@example.com")
	if r := s.Do(t, http.MethodDelete, "/authorize", devtest.Bearer(old), ""); r.Status != http.StatusNoContent {
		t.Fatalf("disconnect: got %d %s, want 204", r.Status, r.Body)
	}
	fresh, _ := s.Connect(t, "dora@example.com")
	wantError(t, s.Get(t, "/list-messages?max_results=1", devtest.Bearer(old)), http.StatusUnauthorized, "invalid_session")
	wantError(t, s.Do(t, http.MethodDelete, "/authorize", devtest.Bearer(old), ""), http.StatusUnauthorized, "invalid_session")
	if r := s.Get(t, "/list-messages?max_results=1", devtest.Bearer(fresh)); r.Status != http.StatusOK {
		t.Errorf("the new session after the old one's disconnect attempt: got %d %s, want 200", r.Status, r.Body)
	}
	if p := begin(t, s, "", devtest.Bearer(old)).Query().Get("prompt"); p != "consent" {
		t.Errorf("the old session skips consent (prompt=%q), want consent", p)
	}
}

// TestDisconnectRevokesAGrantMarkedRevoked is item 15: a grant marked
// revoked by the "Gmail answered 401" heuristic may still be valid at
// Google, so a disconnect revokes it there all the same.
func TestDisconnectRevokesAGrantMarkedRevoked(t *testing.T) {
	st := memstore.New()
	s := devtest.Start(t, devtest.Options{Store: st})
	const email = "heuristic@example.com"
	session, userID := s.Connect(t, email)
	d, err := s.Server.App.Deps(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Flow.MarkRevoked(context.Background(), userID, "gmail answered 401 to a freshly refreshed token"); err != nil {
		t.Fatal(err)
	}
	s.Sandbox.ResetStats()
	if r := s.Do(t, http.MethodDelete, "/authorize", devtest.Bearer(session), ""); r.Status != http.StatusNoContent {
		t.Fatalf("disconnect: got %d %s, want 204", r.Status, r.Body)
	}
	if n := s.Sandbox.Stats().RevokeCalls; n != 1 {
		t.Errorf("revocation calls at Google = %d, want 1", n)
	}
	if s.Sandbox.UserInfo(email).GrantActive {
		t.Errorf("the grant is still active at Google after the disconnect")
	}
	if _, err := st.GetCredential(context.Background(), userID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("credential after disconnect: %v, want deleted", err)
	}
}

// TestDisconnectWithAnUnreadableToken is item 16: when the stored token
// cannot be decrypted (a retired key, a corrupted document), disconnect
// still deletes the grant and the synced mail, and says that revocation at
// Google could not be done.
func TestDisconnectWithAnUnreadableToken(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(c *store.Credential)
	}{
		{"retired key", func(c *store.Credential) { c.RefreshToken.KeyID = "enc-retired" }},
		{"corrupted ciphertext", func(c *store.Credential) { c.RefreshToken.Ciphertext[len(c.RefreshToken.Ciphertext)-1] ^= 0xff }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := memstore.New()
			s := devtest.Start(t, devtest.Options{Store: st})
			session, userID := s.Connect(t, "unreadable@example.com")
			ctx := context.Background()
			if err := st.SaveSync(ctx, userID, &store.Mailbox{HistoryID: 1}, []*store.MessageMeta{{ID: "m1"}}, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := st.UpdateCredential(ctx, userID, func(c *store.Credential) (*store.Credential, error) {
				tc.spoil(c)
				return c, nil
			}); err != nil {
				t.Fatal(err)
			}
			r := s.Do(t, http.MethodDelete, "/authorize", devtest.Bearer(session), "")
			var body struct {
				Disconnected    bool   `json:"disconnected"`
				RevokedAtGoogle bool   `json:"revoked_at_google"`
				Message         string `json:"message"`
			}
			if r.Status != http.StatusOK {
				t.Fatalf("disconnect: got %d %s, want 200 saying revocation was not done", r.Status, r.Body)
			}
			r.JSON(t, &body)
			if !body.Disconnected || body.RevokedAtGoogle || !strings.Contains(body.Message, "Google") {
				t.Errorf("answer %s: want disconnected, not revoked at Google, and a message saying so", r.Body)
			}
			if _, err := st.GetCredential(ctx, userID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("credential after disconnect: %v, want deleted", err)
			}
			if _, err := st.GetMailbox(ctx, userID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("mailbox after disconnect: %v, want deleted", err)
			}
		})
	}
}

// TestRevocationErrorTextIsNotLogged is item 19: whatever the revocation
// endpoint answers, its text reaches neither the logs nor the answer; only
// a summary does.
func TestRevocationErrorTextIsNotLogged(t *testing.T) {
	s := devtest.Start(t, devtest.Options{Store: memstore.New()})
	session, _ := s.Connect(t, "chatty@example.com")
	marker := "PROVIDER-TEXT-" + strings.Repeat("x", 4000)
	for _, body := range []string{`{"error":"` + marker + `"}`, `{"error":"invalid_request","error_description":"` + marker + `"}`, marker} {
		s.Sandbox.SetRevokeFaults(sandbox.RevokeFaults{Status: http.StatusBadRequest, Body: body})
		r := s.Do(t, http.MethodDelete, "/authorize", devtest.Bearer(session), "")
		wantError(t, r, http.StatusBadGateway, "upstream_error")
		if strings.Contains(string(r.Body), "PROVIDER-TEXT") {
			t.Errorf("the answer echoes the revocation endpoint's text: %.200s", r.Body)
		}
	}
	if strings.Contains(s.Logs.String(), "PROVIDER-TEXT") {
		t.Errorf("the logs echo the revocation endpoint's text")
	}
	if !strings.Contains(s.Logs.String(), "revocation endpoint answered 400") {
		t.Errorf("the logs do not say what the revocation endpoint answered")
	}
}

// deletingTransport deletes the second message of the first
// messages.list answer from the sandbox mailbox of email, as if the user
// deleted it between the listing and its fetch.
type deletingTransport struct {
	base    http.RoundTripper
	s       *devtest.Stack
	email   string
	mu      sync.Mutex
	deleted string
}

func (d *deletingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := d.base.RoundTrip(req)
	if err != nil || !strings.HasSuffix(req.URL.Path, "/gmail/v1/users/me/messages") || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var page struct {
		Messages []struct {
			ID string `json:"id"`
		} `json:"messages"`
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.deleted == "" && json.Unmarshal(body, &page) == nil && len(page.Messages) > 1 {
		d.deleted = page.Messages[1].ID
		if err := d.s.Sandbox.DeleteMessages(d.email, d.deleted); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// TestMetadataPageSkipsAMessageDeletedMeanwhile is item 18 on the
// frontend path: a message deleted between the listing and its fetch is
// left out of the page, which still answers 200.
func TestMetadataPageSkipsAMessageDeletedMeanwhile(t *testing.T) {
	const email = "deleter@example.com"
	tr := &deletingTransport{base: http.DefaultTransport, email: email}
	s := devtest.Start(t, devtest.Options{Store: memstore.New(), Transport: tr})
	tr.s = s
	session, _ := s.Connect(t, email)
	r := s.Get(t, "/list-messages?format=metadata&max_results=5", devtest.Bearer(session))
	if r.Status != http.StatusOK {
		t.Fatalf("metadata page with a message deleted meanwhile: got %d %s, want 200", r.Status, r.Body)
	}
	var page struct {
		Messages []struct {
			ID      string `json:"id"`
			Subject string `json:"subject"`
		} `json:"messages"`
	}
	r.JSON(t, &page)
	if tr.deleted == "" || len(page.Messages) != 4 {
		t.Fatalf("deleted %q, page of %d messages, want one deleted and the 4 others", tr.deleted, len(page.Messages))
	}
	for _, m := range page.Messages {
		if m.ID == tr.deleted || m.Subject == "" {
			t.Errorf("message %+v: want the deleted one left out and the others with their metadata", m)
		}
	}
}
