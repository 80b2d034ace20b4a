// Package testenv runs the functions' own wiring (app.Build) against the
// sandbox, in process, for tests: the sandbox on a loopback HTTP server
// standing in for Google, a store (memory unless given), a fresh keyset
// and the sandbox's OAuth client held in memory (no files), and Connect,
// which takes a user through the real OAuth flow (Flow.Begin, the sandbox's
// consent, Flow.Callback), so no test re-implements the callback.
//
// It is local-only code: no deployed function imports it.
package testenv

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"example.com/gmailoauth/internal/app"
	"example.com/gmailoauth/internal/events"
	"example.com/gmailoauth/internal/keyset"
	"example.com/gmailoauth/internal/local/sandbox"
	"example.com/gmailoauth/internal/oauthflow"
	"example.com/gmailoauth/internal/push"
	"example.com/gmailoauth/internal/secrets"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/memstore"
)

// The sandbox client every Env registers.
const (
	ClientID     = "testenv.apps.googleusercontent.com"
	ClientSecret = "testenv-client-secret"
	RedirectURL  = "http://127.0.0.1:9/callback"
	// SchedulerAccount and SchedulerAudience are allowed to run sweeps.
	SchedulerAccount  = "scheduler@testenv.iam.gserviceaccount.com"
	SchedulerAudience = "http://127.0.0.1:9/list-messages"

	clientRef = "memory:oauth-client"
	keysRef   = "memory:app-keys"
)

// Unlimited is a quota rate (units per minute) no test reaches.
const Unlimited = 1_000_000_000

// Options tune New.
type Options struct {
	// Store holds the state; nil means a new memory store.
	Store store.Store
	// Env adds or overrides configuration (environment variable names).
	Env map[string]string
	// MailboxSize is every sandbox mailbox's seeded size: 0 keeps the
	// sandbox's default, a negative value means empty mailboxes.
	MailboxSize int
	// Now is the clock of the functions and the sandbox; nil means time.Now.
	Now func() time.Time
	// Logger receives the functions' logs; nil discards them.
	Logger *slog.Logger
	// Transport carries the functions' outbound calls; nil means a
	// transport with enough idle connections for load tests.
	Transport http.RoundTripper
	// Events and Dispatch replace the Pub/Sub topics of the events and of
	// the push path (app.Options); Notify receives the sandbox's
	// notifications of watched mailboxes. Set PUSH_TOPIC in Env to turn push
	// on.
	Events   events.Publisher
	Dispatch push.Dispatcher
	Notify   sandbox.Notifier
}

// Env is a running sandbox and the dependencies wired to it.
type Env struct {
	Sandbox *sandbox.Sandbox
	// Server serves the sandbox; closing it makes Google unreachable.
	Server *httptest.Server
	Deps   *app.Deps
	Store  store.Store

	opts    Options
	env     map[string]string
	secrets secrets.Memory
	browser *http.Client

	mu     sync.Mutex
	emails map[string]string // user id -> email
	app    *app.App          // Serve's
}

var (
	keyOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

// SigningKey is the ID token signing key of every Env's sandbox (the
// issuer's key), one per test binary since making one costs tens of
// milliseconds; tests use it to forge tokens the issuer would sign.
func SigningKey() *rsa.PrivateKey {
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaKey = k
	})
	return rsaKey
}

// New starts a sandbox until the test ends and builds the functions'
// dependencies against it with app.Build.
func New(t testing.TB, opts Options) *Env {
	t.Helper()
	sb, srv, err := sandbox.StartServer(sandbox.Config{ClientID: ClientID, ClientSecret: ClientSecret,
		RedirectURIs: []string{RedirectURL}, SigningKey: SigningKey(), MailboxSize: max(0, opts.MailboxSize), Now: opts.Now,
		Notify: opts.Notify})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	if opts.MailboxSize < 0 {
		sb.SetDefaultMailboxSize(0)
	}
	if opts.Store == nil {
		opts.Store = memstore.New()
	}
	if opts.Transport == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 4096, 4096
		opts.Transport = tr
	}
	keys, err := keyset.Generate("testenv")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"OAUTH_CLIENT_SECRET_FILE": clientRef, "APP_KEYS_FILE": keysRef, "OAUTH_REDIRECT_URL": RedirectURL,
		"SCHEDULER_SERVICE_ACCOUNT": SchedulerAccount, "SCHEDULER_AUDIENCE": SchedulerAudience,
		"GOOGLE_AUTH_URL": sb.AuthURL(), "GOOGLE_TOKEN_URL": sb.TokenURL(), "GOOGLE_REVOKE_URL": sb.RevokeURL(),
		"GOOGLE_ISSUER": sb.Issuer(), "GMAIL_API_URL": sb.GmailURL(), "STORE": "memory",
	}
	for k, v := range opts.Env {
		env[k] = v
	}
	e := &Env{Sandbox: sb, Server: srv, Store: opts.Store, opts: opts, env: env,
		secrets: secrets.Memory{clientRef: sb.ClientSecretJSON(), keysRef: keys},
		browser: &http.Client{Timeout: 30 * time.Second, Transport: opts.Transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		emails: map[string]string{}}
	if e.Deps, err = app.Load(context.Background(), e.AppOptions()); err != nil {
		t.Fatalf("app.Load: %v", err)
	}
	return e
}

// Getenv reads the Env's configuration.
func (e *Env) Getenv(k string) string { return e.env[k] }

// AppOptions are the options that wire an app.App (another instance) to
// the same sandbox, store, secrets and clock.
func (e *Env) AppOptions() app.Options {
	return app.Options{Getenv: e.Getenv, Store: e.Store, Secrets: e.secrets, Transport: e.opts.Transport,
		Now: e.opts.Now, Logger: e.opts.Logger, Events: e.opts.Events, Dispatch: e.opts.Dispatch}
}

// Instance builds the dependencies of another instance (its own
// single-flight groups, keyset cache and quota buckets) over st, or over
// the Env's store when st is nil.
func (e *Env) Instance(t testing.TB, st store.Store) *app.Deps {
	t.Helper()
	opts := e.AppOptions()
	if st != nil {
		opts.Store = st
	}
	d, err := app.Load(context.Background(), opts)
	if err != nil {
		t.Fatalf("app.Load: %v", err)
	}
	return d
}

// NewApp returns another instance of the functions over the same sandbox,
// store, secrets and clock.
func (e *Env) NewApp() *app.App { return app.New(e.AppOptions()) }

// Connect takes email through the real flow (consent forced, as a new
// user) and returns the user id and a session.
func (e *Env) Connect(t testing.TB, email string) (userID, session string) {
	t.Helper()
	ctx := context.Background()
	flow := e.Deps.Flow
	begin, err := flow.Begin(ctx, oauthflow.BeginRequest{LoginHint: email, ForceConsent: true})
	if err != nil {
		t.Fatalf("Begin(%s): %v", email, err)
	}
	resp, err := e.browser.Get(begin.URL)
	if err != nil {
		t.Fatalf("consent for %s: %v", email, err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("consent for %s: got %d %q, want a redirect to the callback", email, resp.StatusCode, resp.Header.Get("Location"))
	}
	q := loc.Query()
	res, err := flow.Callback(ctx, oauthflow.CallbackRequest{State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error")})
	if err != nil {
		t.Fatalf("Callback(%s): %v", email, err)
	}
	e.mu.Lock()
	e.emails[res.UserID] = email
	e.mu.Unlock()
	return res.UserID, res.Session
}

// RotateKeys adds a new primary key of each kind named by id to the keyset
// secret, as `go run ./functions/cmd/keyset -rotate` does; an instance uses
// it once it reloads the secret. Call it while no request is in flight.
func (e *Env) RotateKeys(t testing.TB, id string) {
	t.Helper()
	next, err := keyset.Rotate(e.secrets[keysRef], id)
	if err != nil {
		t.Fatal(err)
	}
	e.secrets[keysRef] = next
}

// Email returns the email of a user Connect connected.
func (e *Env) Email(userID string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.emails[userID]
}
