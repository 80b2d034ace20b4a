// Package devtest starts the local stack (devserver: the three functions and
// the sandbox on one real HTTP port) for tests, with a controllable clock and
// captured logs, and drives the browser side of the OAuth flow.
package devtest

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"example.com/gmailoauth/internal/local/devserver"
	"example.com/gmailoauth/internal/local/sandbox"
	"example.com/gmailoauth/internal/logging"
	"example.com/gmailoauth/internal/store"
)

// Clock is real time plus an offset a test can advance.
type Clock struct{ offset atomic.Int64 }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// LogBuffer collects log output safely from many goroutines.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything logged so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Stack is a running local stack.
type Stack struct {
	URL string
	// DemoURL is the demo frontend's origin (Options.Demo), else "".
	DemoURL string
	Server  *devserver.Server
	Sandbox *sandbox.Sandbox
	Clock   *Clock
	Logs    *LogBuffer
	// Client does not follow redirects, so tests see every hop.
	Client *http.Client
}

// Options tune Start.
type Options struct {
	// Store overrides the stack's store (memory by default).
	Store store.Store
	// Env adds configuration on top of the stack's defaults.
	Env map[string]string
	// Demo also serves the demo frontend on a second free port (its own
	// origin, its page allow-listed as a return URL): Stack.DemoURL.
	Demo bool
	// ReturnPaths are allow-listed as return URLs on the stack's own
	// origin (added to ALLOWED_RETURN_URLS), e.g. "/app" or "/app/*".
	ReturnPaths []string
	// Transport carries the functions' outbound calls (to the sandbox);
	// nil = http.DefaultTransport. Tests wrap it to inject faults.
	Transport http.RoundTripper
	// NoPush leaves push off (devserver.Options.NoPush): nothing works in
	// the background after a connect, for tests that count calls.
	NoPush bool
}

// Start runs the stack on a free 127.0.0.1 port until the test ends.
func Start(t testing.TB, opts Options) *Stack {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	base := "http://" + lis.Addr().String()
	var demoLis net.Listener
	demoBase := ""
	if opts.Demo {
		if demoLis, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatalf("listen: %v", err)
		}
		demoBase = "http://" + demoLis.Addr().String()
	}
	clock := &Clock{}
	logs := &LogBuffer{}
	env := map[string]string{}
	for k, v := range opts.Env {
		env[k] = v
	}
	for _, p := range opts.ReturnPaths {
		env["ALLOWED_RETURN_URLS"] = strings.TrimPrefix(env["ALLOWED_RETURN_URLS"]+","+base+p, ",")
	}
	srv, err := devserver.New(devserver.Options{
		BaseURL:     base,
		DemoBaseURL: demoBase,
		Getenv:      func(k string) string { return env[k] },
		Store:       opts.Store,
		Logger:      logging.New(logs, "demo-test", slog.LevelDebug),
		Now:         clock.Now,
		Transport:   opts.Transport,
		NoPush:      opts.NoPush,
	})
	if err != nil {
		t.Fatalf("devserver.New: %v", err)
	}
	hs := &http.Server{Handler: srv.Handler, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(lis) }()
	var demoHS *http.Server
	if demoLis != nil {
		demoHS = &http.Server{Handler: srv.DemoHandler, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = demoHS.Serve(demoLis) }()
	}
	st := &Stack{
		URL: base, DemoURL: demoBase, Server: srv, Sandbox: srv.Sandbox, Clock: clock, Logs: logs,
		Client: &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
	t.Cleanup(func() {
		st.Client.CloseIdleConnections()
		// Close, not Shutdown: connections a concurrent client dialled but
		// never used would hold Shutdown for 5 s.
		_ = hs.Close()
		if demoHS != nil {
			_ = demoHS.Close()
		}
		srv.Close()
	})
	return st
}

// Response is a read HTTP answer.
type Response struct {
	Status   int
	Header   http.Header
	Body     []byte
	Location *url.URL
}

// JSON decodes the body into v, failing the test on error.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// ErrorCode returns the contract error code of the body, or "".
func (r *Response) ErrorCode() string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.Code
}

// AuthorizationURL returns the error's authorization_url, or "".
func (r *Response) AuthorizationURL() string {
	var e struct {
		Error struct {
			URL string `json:"authorization_url"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.URL
}

// Do sends a request and reads the answer. Relative URLs are resolved
// against the stack.
func (s *Stack) Do(t testing.TB, method, rawURL string, header http.Header, body string) *Response {
	t.Helper()
	if strings.HasPrefix(rawURL, "/") {
		rawURL = s.URL + rawURL
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	out := &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if loc := resp.Header.Get("Location"); loc != "" {
		if out.Location, err = resp.Request.URL.Parse(loc); err != nil {
			t.Fatalf("bad Location %q: %v", loc, err)
		}
	}
	return out
}

// Get is Do with GET and no body.
func (s *Stack) Get(t testing.TB, rawURL string, header http.Header) *Response {
	t.Helper()
	return s.Do(t, http.MethodGet, rawURL, header, "")
}

// Bearer returns an Authorization header carrying tok.
func Bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// Consent follows an authorization URL through the sandbox's automatic
// consent and returns the callback's answer (not followed further).
func (s *Stack) Consent(t testing.TB, authURL string) *Response {
	t.Helper()
	r := s.Get(t, authURL, nil)
	if r.Status != http.StatusFound || r.Location == nil {
		t.Fatalf("consent: got %d %s, want 302 to the callback", r.Status, r.Body)
	}
	return s.Get(t, r.Location.String(), nil)
}

// Connect runs the whole flow for email in JSON mode (no return_to) and
// returns the callback's answer fields.
func (s *Stack) Connect(t testing.TB, email string) (session, userID string) {
	t.Helper()
	r := s.Get(t, "/authorize?login_hint="+url.QueryEscape(email), http.Header{"Accept": {"application/json"}})
	if r.Status != http.StatusOK {
		t.Fatalf("authorize: got %d %s, want 200", r.Status, r.Body)
	}
	var a struct {
		URL string `json:"authorization_url"`
	}
	r.JSON(t, &a)
	cb := s.Consent(t, a.URL)
	if cb.Status != http.StatusOK {
		t.Fatalf("callback: got %d %s, want 200", cb.Status, cb.Body)
	}
	var res struct {
		Session string `json:"session"`
		UserID  string `json:"user_id"`
	}
	cb.JSON(t, &res)
	return res.Session, res.UserID
}

// Sweep runs the scheduler's sync of every connected mailbox as Cloud
// Scheduler does: POST /list-messages with an ID token the sandbox signs
// for the scheduler's service account. It fails the test unless the sweep
// answers 200.
func (s *Stack) Sweep(t testing.TB) {
	t.Helper()
	tok, err := s.Sandbox.MintIDToken(s.URL+"/list-messages", devserver.SandboxSchedulerAccount, time.Hour)
	if err != nil {
		t.Fatalf("mint the scheduler's ID token: %v", err)
	}
	h := Bearer(tok)
	h.Set("Content-Type", "application/json")
	if r := s.Do(t, http.MethodPost, "/list-messages", h, "{}"); r.Status != http.StatusOK {
		t.Fatalf("sweep: got %d %s, want 200", r.Status, r.Body)
	}
}
