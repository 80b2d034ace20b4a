package apidoc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"example.com/gmailoauth/internal/local/devserver"
	"example.com/gmailoauth/internal/local/devtest"
	"example.com/gmailoauth/internal/local/sandbox"
	"example.com/gmailoauth/internal/oauthflow"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/memstore"
)

// faultStore fails every call while a failure is set.
type faultStore struct {
	store.Store
	fail atomic.Pointer[error]
}

func (f *faultStore) set(err error) {
	if err == nil {
		f.fail.Store(nil)
		return
	}
	f.fail.Store(&err)
}

func (f *faultStore) err() error {
	if p := f.fail.Load(); p != nil {
		return *p
	}
	return nil
}

func (f *faultStore) GetCredential(ctx context.Context, id string) (*store.Credential, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Store.GetCredential(ctx, id)
}

func (f *faultStore) UpdateCredential(ctx context.Context, id string, fn store.UpdateFunc) (*store.Credential, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Store.UpdateCredential(ctx, id, fn)
}

func (f *faultStore) DeleteCredential(ctx context.Context, id string) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.DeleteCredential(ctx, id)
}

func (f *faultStore) ListCredentials(ctx context.Context, status, after string, limit int) ([]*store.Credential, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Store.ListCredentials(ctx, status, after, limit)
}

func (f *faultStore) PutState(ctx context.Context, key string, st *store.AuthState) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.PutState(ctx, key, st)
}

func (f *faultStore) ConsumeState(ctx context.Context, key string, now time.Time) (*store.AuthState, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Store.ConsumeState(ctx, key, now)
}

func (f *faultStore) GetMailbox(ctx context.Context, id string) (*store.Mailbox, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Store.GetMailbox(ctx, id)
}

func (f *faultStore) SaveSync(ctx context.Context, id string, mb *store.Mailbox, up []*store.MessageMeta, del []string) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.SaveSync(ctx, id, mb, up, del)
}

func (f *faultStore) ListMailboxMessages(ctx context.Context, id, after string, limit int) ([]*store.MessageMeta, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Store.ListMailboxMessages(ctx, id, after, limit)
}

func (f *faultStore) GetMailboxMessages(ctx context.Context, id string, ids []string) ([]*store.MessageMeta, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Store.GetMailboxMessages(ctx, id, ids)
}

func (f *faultStore) GetSweepState(ctx context.Context) (store.SweepState, error) {
	if err := f.err(); err != nil {
		return store.SweepState{}, err
	}
	return f.Store.GetSweepState(ctx)
}

func (f *faultStore) PutSweepState(ctx context.Context, st store.SweepState) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.PutSweepState(ctx, st)
}

func (f *faultStore) DeleteMailbox(ctx context.Context, id string) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.DeleteMailbox(ctx, id)
}

var (
	errStoreDown   = fmt.Errorf("%w: injected outage", store.ErrUnavailable)
	errStoreBroken = errors.New("injected store failure")
)

// faultTransport carries the functions' calls to the sandbox; a hook may
// answer instead, or rewrite the sandbox's answer.
type faultTransport struct {
	hook atomic.Pointer[func(*http.Request, func() *http.Response) *http.Response]
}

func (f *faultTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if h := f.hook.Load(); h != nil {
		var err error
		next := func() *http.Response {
			var resp *http.Response
			resp, err = http.DefaultTransport.RoundTrip(r)
			return resp
		}
		if resp := (*h)(r, next); resp != nil || err != nil {
			return resp, err
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

// on makes requests whose path ends in suffix answer fn's response.
func (f *faultTransport) on(suffix string, fn func(r *http.Request, next func() *http.Response) *http.Response) {
	h := func(r *http.Request, next func() *http.Response) *http.Response {
		if strings.HasSuffix(r.URL.Path, suffix) {
			return fn(r, next)
		}
		return nil
	}
	f.hook.Store(&h)
}

func (f *faultTransport) off() { f.hook.Store(nil) }

func jsonResponse(status int, body string) *http.Response {
	return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}
}

// seen records which documented (operation, status, code) the real stack answered.
type seen struct {
	mu sync.Mutex
	m  map[string]int
}

func key(method, path string, status int, code string) string {
	return fmt.Sprintf("%s %s %d %s", method, path, status, code)
}

// driver sends requests to a stack and validates every answer.
type driver struct {
	t    *testing.T
	s    *spec
	st   *devtest.Stack
	seen *seen
}

// do sends a request; path is the documented path the request is for.
func (d *driver) do(method, path, rawURL string, h http.Header, body string) *devtest.Response {
	d.t.Helper()
	r := d.st.Do(d.t, method, rawURL, h, body)
	code, err := d.s.validate(method, path, r.Status, r.Header, r.Body)
	if err != nil {
		d.t.Errorf("%s %s: %v", method, rawURL, err)
	}
	if origin := h.Get("Origin"); origin != "" && r.Status != http.StatusForbidden {
		if got := r.Header.Get("Access-Control-Allow-Origin"); got != origin {
			d.t.Errorf("%s %s from %s: Access-Control-Allow-Origin = %q", method, rawURL, origin, got)
		}
	}
	if r.Status == http.StatusFound && path == "/callback" {
		if _, err := d.s.fragmentCode(r.Location); err != nil {
			d.t.Errorf("callback redirect: %v", err)
		}
	}
	d.seen.mu.Lock()
	d.seen.m[key(method, path, r.Status, code)]++
	d.seen.mu.Unlock()
	return r
}

// want checks status and code.
func (d *driver) want(r *devtest.Response, status int, code string) {
	d.t.Helper()
	if r.Status != status || r.ErrorCode() != code {
		d.t.Errorf("got %d %s, want %d %s", r.Status, r.Body, status, code)
	}
}

func (d *driver) authorizeURL(query string) string {
	d.t.Helper()
	r := d.do("GET", "/authorize", "/authorize?"+query, http.Header{"Accept": {"application/json"}}, "")
	d.want(r, 200, "")
	var a struct {
		URL string `json:"authorization_url"`
	}
	r.JSON(d.t, &a)
	return a.URL
}

// consent follows a consent URL through the sandbox, returning the callback URL.
func (d *driver) consent(authURL string) *url.URL {
	d.t.Helper()
	r := d.st.Get(d.t, authURL, nil)
	if r.Status != http.StatusFound {
		d.t.Fatalf("consent: %d %s", r.Status, r.Body)
	}
	return r.Location
}

func (d *driver) connect(email string) (session, userID string) {
	d.t.Helper()
	r := d.do("GET", "/callback", d.consent(d.authorizeURL("login_hint="+url.QueryEscape(email))).String(), nil, "")
	d.want(r, 200, "")
	var res struct{ Session, UserID string }
	var raw struct {
		Session string `json:"session"`
		UserID  string `json:"user_id"`
	}
	r.JSON(d.t, &raw)
	res.Session, res.UserID = raw.Session, raw.UserID
	return res.Session, res.UserID
}

const appOrigin = "https://app.example.com"

var jsonCT = http.Header{"Content-Type": {"application/json"}}

func bearer(tok string) http.Header { return devtest.Bearer(tok) }

func with(h http.Header, k, v string) http.Header {
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set(k, v)
	return h
}

// TestRealAnswersMatchTheSpec drives the functions through success and
// error paths (the e2e flow, bad input, Google and storage failures) and
// validates every answer against docs/openapi.yaml; then every documented
// status and code must have been seen.
func TestRealAnswersMatchTheSpec(t *testing.T) {
	s := loadSpec(t)
	rec := &seen{m: map[string]int{}}
	fs := &faultStore{Store: memstore.New()}
	ft := &faultTransport{}
	// No push: the test spends the user's Gmail budget on purpose, which a
	// first sync in the background would share (live_push_test.go covers
	// the answers of the push path).
	st := devtest.Start(t, devtest.Options{Store: fs, Transport: ft, NoPush: true, Env: map[string]string{"ALLOWED_RETURN_ORIGINS": appOrigin, "ALLOWED_RETURN_URLS": appOrigin + "/*"}})
	d := &driver{t: t, s: s, st: st, seen: rec}
	const email = "alice@example.com"
	long := "x=" + strings.Repeat("a", 9000)

	// Every path: bad query strings, other methods, a broken or absent store.
	for _, op := range s.operations() {
		if op.Method == "OPTIONS" {
			continue
		}
		h := http.Header{}
		if op.Method == "POST" {
			h = jsonCT
		}
		d.want(d.do(op.Method, op.Path, op.Path+"?"+long, h, ""), 414, "query_too_long")
		d.want(d.do(op.Method, op.Path, op.Path+"?a=%zz", h, ""), 400, "invalid_request")
	}
	for _, p := range []string{"/authorize", "/callback", "/list-messages"} {
		r := d.do("PATCH", p, p, nil, "")
		d.want(r, 405, "method_not_allowed")
	}
	for _, origin := range []string{appOrigin, "https://evil.example.net"} {
		for _, p := range []string{"/authorize", "/list-messages"} {
			r := d.do("OPTIONS", p, p, http.Header{"Origin": {origin}, "Access-Control-Request-Method": {"POST"}}, "")
			if origin == appOrigin {
				d.want(r, 204, "")
			} else {
				d.want(r, 403, "origin_not_allowed")
			}
		}
	}

	// Authorize.
	r := d.do("GET", "/authorize", "/authorize?login_hint="+email+"&state=fe&return_to="+url.QueryEscape(appOrigin+"/done"), nil, "")
	d.want(r, 302, "")
	d.authorizeURL("login_hint=" + email)
	d.want(d.do("GET", "/authorize", "/authorize?login_hint=not%20an%20email", nil, ""), 400, "invalid_request")
	d.want(d.do("GET", "/authorize", "/authorize?return_to=https://evil.example.net/", nil, ""), 400, "invalid_return_to")
	r = d.do("POST", "/authorize", "/authorize", with(jsonCT, "Origin", appOrigin), `{"login_hint":"alice@example.com","return_to":"`+appOrigin+`/","state":"s1"}`)
	d.want(r, 200, "")
	d.want(d.do("POST", "/authorize", "/authorize", jsonCT, ""), 200, "")
	d.want(d.do("POST", "/authorize", "/authorize", http.Header{"Content-Type": {"text/plain"}}, "{}"), 415, "unsupported_media_type")
	d.want(d.do("POST", "/authorize", "/authorize", jsonCT, `{"scope":"x"}`), 400, "invalid_json")
	d.want(d.do("POST", "/authorize", "/authorize", jsonCT, `{"state":"with space"}`), 400, "invalid_request")
	d.want(d.do("POST", "/authorize", "/authorize", jsonCT, `{"return_to":"https://evil.example.net/"}`), 400, "invalid_return_to")
	d.want(d.do("POST", "/authorize", "/authorize", jsonCT, `{"state":"`+strings.Repeat("a", 17<<10)+`"}`), 413, "request_too_large")
	// Past the bound on pending authorizations (made tiny here).
	deps, err := st.Server.App.Deps(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	bound := deps.Flow.Pending
	deps.Flow.Pending = oauthflow.NewPendingStates(1, 1)
	d.authorizeURL("login_hint=" + email)
	d.want(d.do("GET", "/authorize", "/authorize?login_hint="+email, nil, ""), 429, "rate_limited")
	d.want(d.do("POST", "/authorize", "/authorize", jsonCT, "{}"), 429, "rate_limited")
	deps.Flow.Pending = bound

	// Callback: success as JSON and as a redirect, then every failure.
	session, userID := d.connect(email)
	cb := d.consent(d.authorizeURL("login_hint=bob@example.com&state=fe2&return_to=" + url.QueryEscape(appOrigin+"/x")))
	d.want(d.do("GET", "/callback", cb.String(), nil, ""), 302, "")
	d.want(d.do("GET", "/callback", cb.String(), nil, ""), 400, "invalid_state") // replayed
	d.want(d.do("GET", "/callback", "/callback?code=abc", nil, ""), 400, "invalid_state")
	d.want(d.do("GET", "/callback", "/callback?state=a&state=b", nil, ""), 400, "invalid_request")
	u := d.authorizeURL("login_hint=slow@example.com")
	st.Clock.Advance(11 * time.Minute)
	d.want(d.do("GET", "/callback", d.consent(u).String(), nil, ""), 400, "expired_state")
	st.Clock.Advance(-11 * time.Minute)
	callbackWith := func(email string, edit func(q url.Values)) string {
		cb := d.consent(d.authorizeURL("login_hint=" + url.QueryEscape(email)))
		q := cb.Query()
		edit(q)
		cb.RawQuery = q.Encode()
		return cb.String()
	}
	d.want(d.do("GET", "/callback", callbackWith("c1@example.com", func(q url.Values) { q.Del("code") }), nil, ""), 400, "missing_code")
	d.want(d.do("GET", "/callback", callbackWith("c2@example.com", func(q url.Values) { q.Set("code", "4/0sbx-bogus") }), nil, ""), 400, "invalid_grant")
	d.want(d.do("GET", "/callback", callbackWith("c3@example.com", func(q url.Values) { q.Del("code"); q.Set("error", "consent_required") }), nil, ""), 400, "consent_required")
	d.want(d.do("GET", "/callback", callbackWith("c4@example.com", func(q url.Values) { q.Del("code"); q.Set("error", "Weird-Code!") }), nil, ""), 400, "authorization_error")
	st.Sandbox.SetUserKnobs("deny@example.com", sandbox.Knobs{DenyConsent: true})
	d.want(d.do("GET", "/callback", d.consent(d.authorizeURL("login_hint=deny@example.com")).String(), nil, ""), 403, "access_denied")
	r = d.do("GET", "/callback", d.consent(d.authorizeURL("login_hint=deny@example.com&state=z&return_to="+url.QueryEscape(appOrigin+"/"))).String(), nil, "")
	d.want(r, 302, "")
	st.Sandbox.SetUserKnobs("untick@example.com", sandbox.Knobs{DropScopes: []string{"gmail.readonly"}})
	d.want(d.do("GET", "/callback", d.consent(d.authorizeURL("login_hint=untick@example.com")).String(), nil, ""), 403, "insufficient_scope")
	st.Sandbox.SetUserKnobs("norefresh@example.com", sandbox.Knobs{WithholdRefreshToken: true})
	d.want(d.do("GET", "/callback", d.consent(d.authorizeURL("login_hint=norefresh@example.com")).String(), nil, ""), 409, "no_refresh_token")
	st.Sandbox.SetTokenFaults(sandbox.TokenFaults{FailNext: 5})
	d.want(d.do("GET", "/callback", d.consent(d.authorizeURL("login_hint=c5@example.com")).String(), nil, ""), 503, "upstream_unavailable")
	st.Sandbox.SetTokenFaults(sandbox.TokenFaults{})
	ft.on("/token", func(*http.Request, func() *http.Response) *http.Response {
		return jsonResponse(401, `{"error":"invalid_client","error_description":"The OAuth client was not found."}`)
	})
	d.want(d.do("GET", "/callback", d.consent(d.authorizeURL("login_hint=c6@example.com")).String(), nil, ""), 502, "upstream_error")
	// An ID token signed by the issuer but minted for another authorization (no nonce).
	ft.on("/token", func(_ *http.Request, next func() *http.Response) *http.Response {
		resp := next()
		if resp == nil {
			return nil
		}
		defer resp.Body.Close()
		var tok map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&tok)
		other, err := st.Sandbox.MintIDToken(devserver.SandboxClientID, "c7@example.com", time.Hour)
		if err != nil {
			t.Errorf("mint: %v", err)
		}
		tok["id_token"] = other
		b, _ := json.Marshal(tok)
		return jsonResponse(resp.StatusCode, string(b))
	})
	d.want(d.do("GET", "/callback", d.consent(d.authorizeURL("login_hint=c7@example.com")).String(), nil, ""), 502, "invalid_id_token")
	ft.off()

	// ListMessages, frontend mode.
	auth := bearer(session)
	r = d.do("GET", "/list-messages", "/list-messages?max_results=3", with(auth, "Origin", appOrigin), "")
	d.want(r, 200, "")
	var page struct {
		Next string `json:"next_page_token"`
	}
	r.JSON(t, &page)
	d.want(d.do("GET", "/list-messages", "/list-messages?max_results=3&format=metadata&page_token="+url.QueryEscape(page.Next), auth, ""), 200, "")
	d.want(d.do("GET", "/list-messages", "/list-messages?max_results=3&label_ids=INBOX&page_token="+url.QueryEscape(page.Next), auth, ""), 400, "invalid_page_token")
	// Before the user's first sync the mirror cannot answer.
	d.want(d.do("GET", "/list-messages", "/list-messages?source=mirror", auth, ""), 409, "mirror_not_ready")
	d.want(d.do("GET", "/list-messages", "/list-messages?q="+url.QueryEscape("subject:receipt")+"&max_results=500", auth, ""), 200, "")
	d.want(d.do("GET", "/list-messages", "/list-messages", nil, ""), 401, "missing_session")
	d.want(d.do("GET", "/list-messages", "/list-messages", bearer("abc.def.ghi"), ""), 401, "invalid_session")
	d.want(d.do("GET", "/list-messages", "/list-messages?max_results=0", auth, ""), 400, "invalid_request")
	d.want(d.do("GET", "/list-messages", "/list-messages?page_token=bogus", auth, ""), 400, "invalid_page_token")
	d.want(d.do("GET", "/list-messages", "/list-messages?source=mirror&q=x", auth, ""), 400, "invalid_request")
	ft.on("/messages", func(*http.Request, func() *http.Response) *http.Response {
		return jsonResponse(403, `{"error":{"code":403,"message":"Request had insufficient authentication scopes.","errors":[{"message":"Insufficient Permission","domain":"global","reason":"insufficientPermissions"}],"status":"PERMISSION_DENIED"}}`)
	})
	d.want(d.do("GET", "/list-messages", "/list-messages", auth, ""), 403, "insufficient_scope")
	ft.off()
	// Gmail refuses: its quota for the user is spent (the frontend retries
	// within its patience, then answers with Gmail's Retry-After).
	ft.on("/messages", func(*http.Request, func() *http.Response) *http.Response {
		r := jsonResponse(429, `{"error":{"code":429,"message":"User-rate limit exceeded.","errors":[{"message":"User-rate limit exceeded.","domain":"usageLimits","reason":"userRateLimitExceeded"}],"status":"RESOURCE_EXHAUSTED"}}`)
		r.Header.Set("Retry-After", "1")
		return r
	})
	d.want(d.do("GET", "/list-messages", "/list-messages?max_results=1", auth, ""), 429, "rate_limited")
	ft.off()
	// The app's own budget: a metadata page takes most of the user's
	// minute, so the next one is refused before anything is sent.
	d.want(d.do("GET", "/list-messages", "/list-messages?max_results=500&format=metadata", auth, ""), 200, "")
	d.want(d.do("GET", "/list-messages", "/list-messages?max_results=500&format=metadata", auth, ""), 429, "rate_limited")
	st.Sandbox.SetGmailFaults(sandbox.GmailFaults{FailNext: 20})
	d.want(d.do("GET", "/list-messages", "/list-messages", auth, ""), 503, "upstream_unavailable")
	st.Sandbox.SetGmailFaults(sandbox.GmailFaults{})
	// The access token expires and Google refuses the refresh for another
	// reason than a revoked grant.
	st.Clock.Advance(59 * time.Minute)
	ft.on("/token", func(*http.Request, func() *http.Response) *http.Response {
		return jsonResponse(401, `{"error":"invalid_client","error_description":"Unauthorized"}`)
	})
	d.want(d.do("GET", "/list-messages", "/list-messages", auth, ""), 502, "upstream_error")
	ft.off()
	st.Clock.Advance(-59 * time.Minute)

	// ListMessages, scheduler mode.
	schedTok := func(email string) http.Header {
		tok, err := st.Sandbox.MintIDToken(st.URL+"/list-messages", email, time.Hour)
		if err != nil {
			t.Fatalf("mint: %v", err)
		}
		return with(bearer(tok), "Content-Type", "application/json")
	}
	sched := schedTok(devserver.SandboxSchedulerAccount)
	d.want(d.do("POST", "/list-messages", "/list-messages", sched, "{}"), 200, "")
	d.want(d.do("POST", "/list-messages", "/list-messages", sched, `{"user_id":"`+userID+`"}`), 200, "")
	// Synced: pages from the mirror, with synced_at, across the seam to Gmail.
	r = d.do("GET", "/list-messages", "/list-messages?max_results=60&format=metadata", auth, "")
	d.want(r, 200, "")
	var mirrored struct {
		Next   string `json:"next_page_token"`
		Source string `json:"source"`
	}
	r.JSON(t, &mirrored)
	if mirrored.Source != "mirror" {
		t.Errorf("after the sync: source %q, want mirror", mirrored.Source)
	}
	d.want(d.do("GET", "/list-messages", "/list-messages?max_results=60&format=metadata&page_token="+url.QueryEscape(mirrored.Next), auth, ""), 200, "")
	d.want(d.do("POST", "/list-messages", "/list-messages", sched, `{"user_id":"404404404"}`), 404, "unknown_user")
	d.want(d.do("POST", "/list-messages", "/list-messages", jsonCT, "{}"), 401, "missing_token")
	d.want(d.do("POST", "/list-messages", "/list-messages", with(auth, "Content-Type", "application/json"), "{}"), 401, "invalid_token")
	d.want(d.do("POST", "/list-messages", "/list-messages", schedTok("mallory@example.com"), "{}"), 403, "forbidden")
	d.want(d.do("POST", "/list-messages", "/list-messages", sched, `{"users":[]}`), 400, "invalid_json")
	d.want(d.do("POST", "/list-messages", "/list-messages", sched, `{"user_id":"`+strings.Repeat("1", 300)+`"}`), 400, "invalid_request")
	d.want(d.do("POST", "/list-messages", "/list-messages", with(sched, "Content-Type", "text/plain"), "{}"), 415, "unsupported_media_type")
	d.want(d.do("POST", "/list-messages", "/list-messages", sched, `{"user_id":"`+strings.Repeat("1", 17<<10)+`"}`), 413, "request_too_large")

	// Revoked at Google: reauthorization_required with a consent URL back to
	// the caller's origin, from Gmail, and then from the mirror too (the
	// grant is now marked revoked).
	st.Sandbox.Revoke(email)
	for _, q := range []string{"?source=gmail", ""} {
		r = d.do("GET", "/list-messages", "/list-messages"+q, with(auth, "Origin", appOrigin), "")
		d.want(r, 401, "reauthorization_required")
		if au, err := url.Parse(r.AuthorizationURL()); err != nil || !strings.Contains(au.RawQuery, "prompt=consent") {
			t.Errorf("reauthorization_required: authorization_url %q, want a forced consent", r.AuthorizationURL())
		}
	}

	// Disconnect.
	session, _ = d.connect(email)
	auth = bearer(session)
	d.want(d.do("DELETE", "/authorize", "/authorize", nil, ""), 401, "missing_session")
	d.want(d.do("DELETE", "/authorize", "/authorize", bearer("x.y.z"), ""), 401, "invalid_session")
	ft.on("/revoke", func(*http.Request, func() *http.Response) *http.Response {
		return jsonResponse(503, `{"error":"temporarily_unavailable"}`)
	})
	d.want(d.do("DELETE", "/authorize", "/authorize", auth, ""), 503, "upstream_unavailable")
	ft.on("/revoke", func(*http.Request, func() *http.Response) *http.Response {
		return jsonResponse(401, `{"error":"invalid_client"}`)
	})
	d.want(d.do("DELETE", "/authorize", "/authorize", auth, ""), 502, "upstream_error")
	ft.off()
	d.want(d.do("DELETE", "/authorize", "/authorize", with(auth, "Origin", appOrigin), ""), 204, "")
	d.want(d.do("DELETE", "/authorize", "/authorize", auth, ""), 204, "")
	// A stored token that cannot be read: deleted, not revoked at Google.
	session, frank := d.connect("frank@example.com")
	if _, err := fs.UpdateCredential(context.Background(), frank, func(c *store.Credential) (*store.Credential, error) {
		c.RefreshToken.KeyID = "enc-retired"
		return c, nil
	}); err != nil {
		t.Fatal(err)
	}
	d.want(d.do("DELETE", "/authorize", "/authorize", bearer(session), ""), 200, "")

	// Storage down (503 unavailable) or failing (500 internal).
	session, _ = d.connect("dave@example.com")
	cbURL := d.consent(d.authorizeURL("login_hint=erin@example.com")).String()
	cbURL2 := d.consent(d.authorizeURL("login_hint=erin@example.com")).String()
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{{errStoreDown, 503, "unavailable"}, {errStoreBroken, 500, "internal"}} {
		fs.set(tc.err)
		d.want(d.do("GET", "/authorize", "/authorize", nil, ""), tc.status, tc.code)
		d.want(d.do("POST", "/authorize", "/authorize", jsonCT, "{}"), tc.status, tc.code)
		d.want(d.do("DELETE", "/authorize", "/authorize", bearer(session), ""), tc.status, tc.code)
		d.want(d.do("GET", "/callback", cbURL, nil, ""), tc.status, tc.code)
		cbURL = cbURL2
		d.want(d.do("GET", "/list-messages", "/list-messages", bearer(session), ""), tc.status, tc.code)
		if tc.code == "unavailable" {
			d.want(d.do("POST", "/list-messages", "/list-messages", sched, "{}"), tc.status, tc.code)
		}
		fs.set(nil)
	}

	// A stack without a scheduler configured (a real client file, no sandbox).
	dir := t.TempDir()
	client := filepath.Join(dir, "client.json")
	if err := os.WriteFile(client, st.Sandbox.ClientSecretJSON(), 0o600); err != nil {
		t.Fatal(err)
	}
	plain := devtest.Start(t, devtest.Options{Env: map[string]string{"OAUTH_CLIENT_SECRET_FILE": client}})
	pd := &driver{t: t, s: s, st: plain, seen: rec}
	pd.want(pd.do("POST", "/list-messages", "/list-messages", sched, "{}"), 403, "scheduler_disabled")

	// A misconfigured stack: every operation answers 500 misconfigured.
	bad := devtest.Start(t, devtest.Options{Env: map[string]string{"APP_KEYS_FILE": filepath.Join(dir, "missing.json")}})
	bd := &driver{t: t, s: s, st: bad, seen: rec}
	for _, op := range s.operations() {
		if op.Method == "OPTIONS" {
			continue
		}
		bd.want(bd.do(op.Method, op.Path, op.Path, jsonCT, ""), 500, "misconfigured")
	}

	// Every documented status and code was seen.
	notSeen := map[string]string{
		key("POST", "/list-messages", 500, "internal"):             "a sweep's failures are 503 unavailable; 500 internal only comes from a panic",
		key("POST", "/list-messages", 503, "upstream_unavailable"): "only while Google's discovery document or signing keys are unreachable (internal/oauthflow TestVerifyIDTokenKeysUnreachable)",
	}
	var missing []string
	for _, op := range s.operations() {
		for _, status := range s.statuses(op) {
			_, p, _ := s.response(op.Method, op.Path, status)
			codes, _ := s.codes(p)
			if len(codes) == 0 {
				codes = []string{""}
			}
			for _, c := range codes {
				k := key(op.Method, op.Path, status, c)
				if rec.m[k] == 0 && notSeen[k] == "" {
					missing = append(missing, k)
				}
			}
		}
	}
	for k := range notSeen {
		if rec.m[k] > 0 {
			t.Errorf("%s was seen; drop it from notSeen", k)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("documented but never answered by the real stack in this test:\n  %s", strings.Join(missing, "\n  "))
	}
	total := 0
	for _, n := range rec.m {
		total += n
	}
	t.Logf("validated %d real answers (%d distinct operation/status/code) against %s", total, len(rec.m), specPath)
	var buf bytes.Buffer
	for _, k := range sortedKeys(rec.m) {
		fmt.Fprintf(&buf, "  %s ×%d\n", k, rec.m[k])
	}
	if testing.Verbose() {
		t.Logf("seen:\n%s", buf.String())
	}
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
