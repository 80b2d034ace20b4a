package devserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"example.com/gmailoauth/internal/keyset"
	"example.com/gmailoauth/internal/local/devtest"
	"example.com/gmailoauth/internal/oauthflow"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/fsstore/fstest"
	"example.com/gmailoauth/internal/store/memstore"
)

// listPage is the JSON of a ListMessages answer.
type listPage struct {
	Messages []struct {
		ID       string   `json:"id"`
		ThreadID string   `json:"thread_id"`
		Subject  string   `json:"subject"`
		From     string   `json:"from"`
		Date     string   `json:"date"`
		Snippet  string   `json:"snippet"`
		LabelIDs []string `json:"label_ids"`
	} `json:"messages"`
	NextPageToken      string `json:"next_page_token"`
	ResultSizeEstimate int64  `json:"result_size_estimate"`
	Source             string `json:"source"`
	SyncedAt           string `json:"synced_at"`
}

func TestEndToEndMemory(t *testing.T) {
	testEndToEnd(t, memstore.New())
}

func TestEndToEndFirestore(t *testing.T) {
	testEndToEnd(t, fstest.NewStore(t))
}

// testEndToEnd drives the three functions over real HTTP against the
// sandbox: authorize → consent → callback → list (ids, metadata, pages) →
// revoke at Google → 401 reauthorization_required → disconnect. Then it
// checks that no secret value it saw appears in any log line. Push is off:
// here the scheduler's sweep fills the mirror, at a moment the test chooses
// (push's own end-to-end tests are in push_test.go and pubsub_test.go).
func testEndToEnd(t *testing.T, st store.Store) {
	start := time.Now()
	s := devtest.Start(t, devtest.Options{Store: st, ReturnPaths: []string{"/app/done"}, NoPush: true})
	const email = "alice@example.com"
	var secrets []string // every secret value seen on the wire
	requests := 0
	get := func(u string, h http.Header) *devtest.Response {
		requests++
		return s.Get(t, u, h)
	}

	// 1. Authorize: 302 to the consent screen with every parameter the contract names.
	returnTo := s.URL + "/app/done"
	r := get("/authorize?login_hint="+email+"&return_to="+url.QueryEscape(returnTo)+"&state=frontend-xyz", nil)
	if r.Status != http.StatusFound {
		t.Fatalf("authorize: got %d %s, want 302", r.Status, r.Body)
	}
	q := r.Location.Query()
	want := map[string]string{
		"response_type": "code", "client_id": "sandbox-client.apps.googleusercontent.com",
		"redirect_uri": s.URL + "/callback", "access_type": "offline", "prompt": "consent",
		"include_granted_scopes": "true", "login_hint": email, "code_challenge_method": "S256",
		"scope": "openid email https://www.googleapis.com/auth/gmail.readonly",
	}
	for k, v := range want {
		if got := q.Get(k); got != v {
			t.Errorf("authorization URL %s = %q, want %q", k, got, v)
		}
	}
	if len(q.Get("state")) < 22 || len(q.Get("code_challenge")) != 43 || q.Get("approval_prompt") != "" {
		t.Errorf("state %q / code_challenge %q: want >=128-bit state, S256 challenge, no approval_prompt", q.Get("state"), q.Get("code_challenge"))
	}
	if r.Location.Host != strings.TrimPrefix(s.URL, "http://") || !strings.HasPrefix(r.Location.Path, "/sandbox/") {
		t.Errorf("authorize redirected to %s, want the sandbox", r.Location)
	}
	secrets = append(secrets, q.Get("state"))

	// 2. Consent (automatic in the sandbox) → callback → back to return_to with the session in the fragment.
	c := get(r.Location.String(), nil)
	if c.Status != http.StatusFound || c.Location.Path != "/callback" {
		t.Fatalf("consent: got %d %v, want 302 to /callback", c.Status, c.Location)
	}
	secrets = append(secrets, c.Location.Query().Get("code"))
	cb := get(c.Location.String(), nil)
	if cb.Status != http.StatusFound {
		t.Fatalf("callback: got %d %s, want 302", cb.Status, cb.Body)
	}
	if got := cb.Location.Scheme + "://" + cb.Location.Host + cb.Location.Path; got != returnTo || cb.Location.RawQuery != "" {
		t.Fatalf("callback redirected to %s, want %s with only a fragment", cb.Location, returnTo)
	}
	frag, err := url.ParseQuery(cb.Location.EscapedFragment())
	if err != nil {
		t.Fatalf("fragment: %v", err)
	}
	session := frag.Get("session")
	if session == "" || frag.Get("state") != "frontend-xyz" {
		t.Fatalf("fragment = %q, want session and state=frontend-xyz", cb.Location.Fragment)
	}
	secrets = append(secrets, session)
	for _, h := range []string{"Cache-Control", "Referrer-Policy"} {
		if cb.Header.Get(h) == "" {
			t.Errorf("callback answer lacks %s", h)
		}
	}

	// The stored grant is encrypted: the document never holds the tokens in clear.
	userID := s.Sandbox.SubFor(email)
	cred, err := st.GetCredential(context.Background(), userID)
	if err != nil {
		t.Fatalf("stored credential: %v", err)
	}
	d, err := s.Server.App.Deps(context.Background())
	if err != nil {
		t.Fatalf("deps: %v", err)
	}
	rt, err := d.Keys().Open(keyset.Sealed(cred.RefreshToken), userID, oauthflow.FieldRefreshToken)
	if err != nil {
		t.Fatalf("open refresh token: %v", err)
	}
	at, err := d.Keys().Open(keyset.Sealed(cred.AccessToken), userID, oauthflow.FieldAccessToken)
	if err != nil {
		t.Fatalf("open access token: %v", err)
	}
	secrets = append(secrets, string(rt), string(at))
	for _, tok := range []string{string(rt), string(at)} {
		if strings.Contains(string(cred.RefreshToken.Ciphertext)+string(cred.AccessToken.Ciphertext), tok) {
			t.Errorf("a token is stored in clear")
		}
	}
	if cred.Email != email || cred.Status != store.StatusActive {
		t.Errorf("credential email/status = %q/%q, want %q/active", cred.Email, cred.Status, email)
	}

	// 3. ListMessages. Before the first sync, live from Gmail: every page of
	// ids, no duplicates.
	auth := devtest.Bearer(session)
	listAll := func(query string) (ids []string, pages []listPage, gmailCalls []int) {
		t.Helper()
		seen := map[string]bool{}
		token := ""
		for {
			u := "/list-messages?" + query
			if token != "" {
				u += "&page_token=" + url.QueryEscape(token)
			}
			before := gmailCallsOf(s)
			lr := get(u, auth)
			if lr.Status != http.StatusOK {
				t.Fatalf("list %s page %d: got %d %s", query, len(pages)+1, lr.Status, lr.Body)
			}
			var p listPage
			lr.JSON(t, &p)
			pages = append(pages, p)
			gmailCalls = append(gmailCalls, gmailCallsOf(s)-before)
			for _, m := range p.Messages {
				if seen[m.ID] {
					t.Errorf("%s: message %s listed twice", query, m.ID)
				}
				seen[m.ID] = true
				ids = append(ids, m.ID)
				if m.ThreadID == "" || m.Subject != "" {
					t.Errorf("ids format: got %+v, want id and thread_id only", m)
				}
			}
			if token = p.NextPageToken; token == "" {
				return ids, pages, gmailCalls
			}
		}
	}
	live, livePages, _ := listAll("max_results=100")
	if len(livePages) < 3 || len(live) < 250 {
		t.Errorf("listed %d messages in %d pages, want >= 250 in >= 3 pages", len(live), len(livePages))
	}
	for _, p := range livePages {
		if p.Source != "gmail" || p.SyncedAt != "" {
			t.Errorf("before the first sync: page from %q (synced_at %q), want gmail", p.Source, p.SyncedAt)
		}
	}

	// The scheduler syncs the mailbox: from then on the pages come from the
	// mirror, at no Gmail call, then past its horizon (SYNC_QUERY,
	// newer_than:30d) from Gmail: the same ids in the same order.
	s.Sweep(t)
	requests++
	auto, autoPages, calls := listAll("max_results=40")
	if strings.Join(auto, ",") != strings.Join(live, ",") {
		t.Errorf("after the sync, auto listed %d ids, want Gmail's %d in the same order", len(auto), len(live))
	}
	mirrorPages := 0
	for i, p := range autoPages {
		switch {
		case p.Source == "mirror" && p.SyncedAt != "" && calls[i] == 0:
			mirrorPages++
		case p.Source == "gmail" && i > 0 && i >= mirrorPages:
		default:
			t.Errorf("after the sync: page %d from %q (synced_at %q) made %d Gmail calls", i+1, p.Source, p.SyncedAt, calls[i])
		}
	}
	if mirrorPages < 2 || mirrorPages == len(autoPages) {
		t.Errorf("after the sync: %d of %d pages from the mirror, want the first ones, then Gmail's", mirrorPages, len(autoPages))
	}
	mr := get("/list-messages?format=metadata&max_results=7&label_ids=INBOX&label_ids=UNREAD", auth)
	var mp listPage
	mr.JSON(t, &mp)
	if mr.Status != http.StatusOK || len(mp.Messages) != 7 || mp.Source != "mirror" {
		t.Fatalf("metadata: got %d with %d messages from %q, want 200 with 7 from the mirror", mr.Status, len(mp.Messages), mp.Source)
	}
	for _, m := range mp.Messages {
		if m.Subject == "" || m.From == "" || m.Date == "" || !contains(m.LabelIDs, "INBOX") || !contains(m.LabelIDs, "UNREAD") {
			t.Errorf("metadata message %+v: want subject, from, date and labels INBOX+UNREAD", m)
		}
	}
	qr := get("/list-messages?q="+url.QueryEscape("newer_than:30d")+"&max_results=500", auth)
	var qp listPage
	qr.JSON(t, &qp)
	if qr.Status != http.StatusOK || len(qp.Messages) == 0 || len(qp.Messages) >= len(live) || qp.Source != "gmail" {
		t.Errorf("q=newer_than:30d: got %d with %d messages from %q, want a non-empty subset of %d from Gmail", qr.Status, len(qp.Messages), qp.Source, len(live))
	}

	// 4. The user removes the app at Google: the next sync finds out and
	// marks the grant revoked, and the next list (from the mirror) gets 401
	// reauthorization_required with a consent URL.
	if !s.Sandbox.Revoke(email) {
		t.Fatalf("sandbox revoke: user unknown")
	}
	s.Sweep(t)
	requests++
	rr := get("/list-messages", auth)
	if rr.Status != http.StatusUnauthorized || rr.ErrorCode() != "reauthorization_required" {
		t.Fatalf("list after revoke: got %d %s, want 401 reauthorization_required", rr.Status, rr.Body)
	}
	au, err := url.Parse(rr.AuthorizationURL())
	if err != nil || au.Query().Get("prompt") != "consent" || au.Query().Get("login_hint") != email {
		t.Errorf("authorization_url %q: want a consent URL with prompt=consent and login_hint", rr.AuthorizationURL())
	}
	cred, err = st.GetCredential(context.Background(), userID)
	if err != nil || cred.Status != store.StatusRevoked || cred.RevokedReason == "" || cred.RevokedAt.IsZero() {
		t.Errorf("after invalid_grant: credential %+v, %v; want status revoked with reason and time", cred, err)
	}

	// 5. Disconnect: 204, twice (idempotent), and the credential is gone.
	for i := 0; i < 2; i++ {
		requests++
		dr := s.Do(t, http.MethodDelete, "/authorize", auth, "")
		if dr.Status != http.StatusNoContent {
			t.Fatalf("DELETE /authorize #%d: got %d %s, want 204", i+1, dr.Status, dr.Body)
		}
	}
	if _, err := st.GetCredential(context.Background(), userID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after disconnect: GetCredential error %v, want ErrNotFound", err)
	}

	// No secret value appears in any log line.
	logs := s.Logs.String()
	for _, v := range secrets {
		if v != "" && strings.Contains(logs, v) {
			t.Errorf("a secret value (%d chars) appears in the logs", len(v))
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil || entry["severity"] == nil || entry["message"] == nil {
			t.Errorf("log line is not Cloud Logging JSON: %s", line)
		}
	}
	t.Logf("end-to-end: %d requests to the functions and sandbox, %d messages over %d pages (%d from the mirror), %v",
		requests, len(live), len(autoPages), mirrorPages, time.Since(start).Round(time.Millisecond))
}

// gmailCallsOf returns the Gmail calls the stack's sandbox has answered.
func gmailCallsOf(s *devtest.Stack) int {
	n := 0
	for _, c := range s.Sandbox.Stats().GmailCalls {
		n += c
	}
	return n
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
