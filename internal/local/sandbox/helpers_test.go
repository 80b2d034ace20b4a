package sandbox

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"google.golang.org/api/gmail/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
)

const (
	testClientID     = "sandbox-client.apps.googleusercontent.com"
	testClientSecret = "sandbox-secret"
	testRedirect     = "http://127.0.0.1:9/callback"
	defaultScopes    = "openid email https://www.googleapis.com/auth/gmail.readonly"
)

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
)

func sharedKey(t testing.TB) *rsa.PrivateKey {
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		testKey = k
	})
	return testKey
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type harness struct {
	sb    *Sandbox
	srv   *httptest.Server
	clk   *clock
	oauth *oauth2.Config
	ctx   context.Context
}

// newHarness starts a sandbox on an httptest server with a controllable clock
// that starts at the real time (go-oidc checks exp against it too).
func newHarness(t *testing.T, mutate ...func(*Config)) *harness {
	t.Helper()
	clk := &clock{t: time.Now().Truncate(time.Second)}
	cfg := Config{
		ClientID: testClientID, ClientSecret: testClientSecret,
		RedirectURIs: []string{testRedirect, "http://localhost:8080/callback"},
		Now:          clk.Now, SigningKey: sharedKey(t),
	}
	for _, m := range mutate {
		m(&cfg)
	}
	sb, srv, err := StartServer(cfg)
	if err != nil {
		t.Fatalf("StartServer: %v", err)
	}
	t.Cleanup(srv.Close)
	return &harness{
		sb: sb, srv: srv, clk: clk, ctx: context.Background(),
		oauth: &oauth2.Config{
			ClientID: testClientID, ClientSecret: testClientSecret,
			Endpoint: sb.Endpoint(), RedirectURL: testRedirect,
			Scopes: strings.Fields(defaultScopes),
		},
	}
}

var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// authorize GETs an authorization URL and returns the redirect's query.
func (h *harness) authorize(t *testing.T, authURL string) url.Values {
	t.Helper()
	resp, err := noFollow.Get(authURL)
	if err != nil {
		t.Fatalf("GET auth: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("auth status = %d, want 302; body: %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatalf("Location: %v", err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != testRedirect {
		t.Fatalf("redirected to %q, want %q", got, testRedirect)
	}
	return loc.Query()
}

type connectOpts struct {
	email     string
	scopes    string // "" = defaultScopes
	prompt    string // "" = none sent
	offline   bool
	verifier  string
	extraOpts []oauth2.AuthCodeOption
}

// code runs the authorization step and returns the redirect query.
func (h *harness) code(t *testing.T, o connectOpts) url.Values {
	t.Helper()
	cfg := *h.oauth
	if o.scopes != "" {
		cfg.Scopes = strings.Fields(o.scopes)
	}
	opts := append([]oauth2.AuthCodeOption{}, o.extraOpts...)
	if o.email != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", o.email))
	}
	if o.prompt != "" {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", o.prompt))
	}
	if o.offline {
		opts = append(opts, oauth2.AccessTypeOffline)
	}
	if o.verifier != "" {
		opts = append(opts, oauth2.S256ChallengeOption(o.verifier))
	}
	return h.authorize(t, cfg.AuthCodeURL("st-123", opts...))
}

// connect runs the whole code flow (offline, prompt=consent, PKCE) for email.
func (h *harness) connect(t *testing.T, email string) *oauth2.Token {
	t.Helper()
	v := oauth2.GenerateVerifier()
	q := h.code(t, connectOpts{email: email, prompt: "consent", offline: true, verifier: v})
	tok, err := h.oauth.Exchange(h.ctx, q.Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	return tok
}

func (h *harness) gmail(t *testing.T, tok *oauth2.Token) *gmail.Service {
	t.Helper()
	svc, err := gmail.NewService(h.ctx, option.WithEndpoint(h.sb.GmailURL()),
		option.WithHTTPClient(oauth2.NewClient(h.ctx, oauth2.StaticTokenSource(tok))))
	if err != nil {
		t.Fatalf("gmail.NewService: %v", err)
	}
	return svc
}

func (h *harness) verifier(t *testing.T, audience string) *oidc.IDTokenVerifier {
	t.Helper()
	p, err := oidc.NewProvider(h.ctx, h.sb.Issuer())
	if err != nil {
		t.Fatalf("oidc.NewProvider: %v", err)
	}
	return p.Verifier(&oidc.Config{ClientID: audience, Now: h.clk.Now})
}

// postForm posts to the token or revoke endpoint and decodes the JSON answer.
func postForm(t *testing.T, u string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(u, form)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("decoding answer of %s: %v", u, err)
	}
	return resp.StatusCode, m
}

func googleErr(t *testing.T, err error) *googleapi.Error {
	t.Helper()
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		t.Fatalf("error %v (%T) is not a *googleapi.Error", err, err)
	}
	return ge
}

func retrieveErr(t *testing.T, err error) *oauth2.RetrieveError {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T) is not a *oauth2.RetrieveError", err, err)
	}
	return re
}

func decodeJSON(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("decoding %s: %v", resp.Request.URL, err)
	}
}
