// Package app wires configuration, secrets, the store and the OAuth flow into
// the three HTTP handlers the functions register. Everything is built lazily,
// once per instance, on the first request: nothing happens at init, and a
// misconfigured instance answers 500 misconfigured with one clear log line
// instead of panicking.
package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"example.com/gmailoauth/internal/config"
	"example.com/gmailoauth/internal/gmailquota"
	"example.com/gmailoauth/internal/httpx"
	"example.com/gmailoauth/internal/keyset"
	"example.com/gmailoauth/internal/logging"
	"example.com/gmailoauth/internal/oauthflow"
	"example.com/gmailoauth/internal/secrets"
	"example.com/gmailoauth/internal/session"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/fsstore"
	"example.com/gmailoauth/internal/store/memstore"
	"example.com/gmailoauth/internal/syncer"
)

// Options customise an App; the zero value reads the process environment.
type Options struct {
	// Getenv reads configuration; nil means os.Getenv.
	Getenv func(string) string
	// Store replaces the store chosen by STORE (local runner, tests).
	Store store.Store
	// Secrets replaces the source chosen by the configuration.
	Secrets secrets.Source
	// Transport carries every outbound call to Google (or the sandbox); nil
	// means http.DefaultTransport.
	Transport http.RoundTripper
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the logs; nil means Cloud Logging JSON on stdout.
	Logger *slog.Logger
	// NewSweeper builds the scheduler's sweep; nil uses the default.
	NewSweeper func(d *Deps) Sweeper
}

// App serves the three functions of one instance.
type App struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	deps     *Deps
	failedAt time.Time
	failErr  error
	lastLog  string
}

// Deps are an instance's ready dependencies.
type Deps struct {
	Config *config.Config
	Store  store.Store
	Flow   *oauthflow.Flow
	Client *http.Client // outbound, with timeouts
	// GmailQuota carries every Gmail call of the instance: buckets per user
	// and per instance, backoff on 429/5xx. Gmail is the frontend's client
	// over it (a few quick retries, see FrontendRetry); the sweep has a more
	// patient client over the same transport.
	GmailQuota *gmailquota.Transport
	Gmail      *http.Client
	Secrets    secrets.Source
	Sweeper    Sweeper
	Log        *slog.Logger
	Now        func() time.Time

	keys atomic.Pointer[keyset.Keyset]
}

// Keys returns the current app keyset.
func (d *Deps) Keys() *keyset.Keyset { return d.keys.Load() }

// ReloadKeys reads the keyset secret again (after a key id was not found,
// for example following a rotation).
func (d *Deps) ReloadKeys(ctx context.Context) error {
	d.Secrets.Refresh(d.Config.KeysRef)
	ks, err := loadKeys(ctx, d.Secrets, d.Config.KeysRef)
	if err != nil {
		return err
	}
	d.keys.Store(ks)
	return nil
}

// New returns an App. It does no I/O.
func New(opts Options) *App {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport
	}
	log := opts.Logger
	if log == nil {
		log = logging.New(os.Stdout, opts.Getenv("GOOGLE_CLOUD_PROJECT"), slog.LevelInfo)
	}
	return &App{opts: opts, log: log}
}

var (
	defaultOnce sync.Once
	defaultApp  *App
)

// Default returns the process-wide App the deployed functions use, created
// on first use.
func Default() *App {
	defaultOnce.Do(func() { defaultApp = New(Options{}) })
	return defaultApp
}

// retryFailedSetupAfter spaces out attempts to build dependencies after a failure.
const retryFailedSetupAfter = 10 * time.Second

// errMisconfigured is answered while the instance's configuration or secrets are wrong.
var errMisconfigured = &httpx.Error{Status: http.StatusInternalServerError, Code: "misconfigured",
	Message: "the function is misconfigured; its logs say what to fix"}

// Deps returns the instance's dependencies, building them on first use. A
// failure is remembered for a few seconds, logged once, and answered as 500
// misconfigured (or 503 when a dependency was only unavailable).
func (a *App) Deps(ctx context.Context) (*Deps, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.deps != nil {
		return a.deps, nil
	}
	now := a.opts.Now()
	if a.failErr == nil || now.Sub(a.failedAt) >= retryFailedSetupAfter {
		d, err := a.build(ctx)
		if err == nil {
			a.deps, a.failErr = d, nil
			return d, nil
		}
		a.failErr, a.failedAt = err, now
		if msg := err.Error(); msg != a.lastLog {
			a.lastLog = msg
			a.log.ErrorContext(ctx, "instance cannot serve: "+logging.Scrub(msg))
		}
	}
	var se *secrets.Error
	if errors.As(a.failErr, &se) && se.Kind == secrets.Unavailable || errors.Is(a.failErr, store.ErrUnavailable) {
		return nil, &httpx.Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
			Message: "a dependency is unavailable, try again shortly", RetryAfter: retryFailedSetupAfter}
	}
	return nil, errMisconfigured
}

func (a *App) build(ctx context.Context) (*Deps, error) {
	cfg, err := config.Load(a.opts.Getenv)
	if err != nil {
		return nil, err
	}
	src := a.opts.Secrets
	if src == nil {
		src = newSources(cfg)
	}
	client, err := secrets.LoadClientConfig(ctx, src, cfg.ClientSecretRef)
	if err != nil {
		return nil, err
	}
	ks, err := loadKeys(ctx, src, cfg.KeysRef)
	if err != nil {
		return nil, err
	}
	st := a.opts.Store
	if st == nil {
		switch cfg.Store {
		case config.StoreFirestore:
			if st, err = fsstore.New(ctx, cfg.Project); err != nil {
				return nil, fmt.Errorf("firestore client: %w", err)
			}
		default:
			st = memstore.New()
		}
	}
	hc := &http.Client{Timeout: cfg.OutboundTimeout, Transport: a.opts.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	d := &Deps{Config: cfg, Store: st, Client: hc, Secrets: src, Log: a.log, Now: a.opts.Now}
	// One quota transport per instance: the frontend and the sweep draw on
	// the same project bucket; each sets its own patience per request.
	d.GmailQuota = &gmailquota.Transport{
		Base:                  gmailBaseTransport(a.opts.Transport, cfg.SyncConcurrency*syncer.DefaultMetadataConcurrency),
		UserUnitsPerMinute:    float64(cfg.GmailQuotaUserPerMin),
		ProjectUnitsPerMinute: float64(cfg.GmailQuotaProjectPerMin),
	}
	d.Gmail = &http.Client{Timeout: cfg.OutboundTimeout, Transport: d.GmailQuota}
	d.keys.Store(ks)
	d.Flow = &oauthflow.Flow{
		Store: st,
		OAuth: &oauth2.Config{
			ClientID:     client.ClientID,
			ClientSecret: client.ClientSecret,
			RedirectURL:  cfg.RedirectURL,
			Scopes:       cfg.Scopes,
			Endpoint:     oauth2.Endpoint{AuthURL: cfg.AuthURL, TokenURL: cfg.TokenURL, AuthStyle: oauth2.AuthStyleInParams},
		},
		RevokeURL:      cfg.RevokeURL,
		Issuer:         cfg.Issuer,
		HTTPClient:     hc,
		Keys:           d.Keys,
		ReloadKeys:     d.ReloadKeys,
		Sessions:       &session.Manager{Keys: d.Keys, TTL: cfg.SessionTTL, Now: a.opts.Now},
		AllowedOrigins: cfg.AllowedReturnOrigins,
		Now:            a.opts.Now,
		Log:            a.log,
		InstanceID:     instanceID(),
	}
	if a.opts.NewSweeper != nil {
		d.Sweeper = a.opts.NewSweeper(d)
	} else {
		d.Sweeper = newSyncSweeper(d)
	}
	return d, nil
}

func loadKeys(ctx context.Context, src secrets.Source, ref string) (*keyset.Keyset, error) {
	data, err := src.Secret(ctx, ref)
	if err != nil {
		return nil, err
	}
	ks, err := keyset.Parse(data)
	if err != nil {
		return nil, &secrets.Error{Ref: ref, Kind: secrets.Invalid, Err: err}
	}
	return ks, nil
}

// newSources returns the instance's secret source: references configured as
// files are read from disk, the others from Secret Manager, whose client is
// built on the first read.
func newSources(cfg *config.Config) secrets.Source {
	files := map[string]bool{}
	if cfg.ClientSecretIsFile {
		files[cfg.ClientSecretRef] = true
	}
	if cfg.KeysIsFile {
		files[cfg.KeysRef] = true
	}
	return routedSource{file: secrets.NewFileSource(), sm: secrets.NewSecretManagerSource(), files: files}
}

// routedSource sends file references to file and the rest to sm.
type routedSource struct {
	file, sm secrets.Source
	files    map[string]bool
}

func (r routedSource) pick(ref string) secrets.Source {
	if r.files[ref] {
		return r.file
	}
	return r.sm
}

// Secret implements secrets.Source.
func (r routedSource) Secret(ctx context.Context, ref string) ([]byte, error) {
	return r.pick(ref).Secret(ctx, ref)
}

// Refresh implements secrets.Source.
func (r routedSource) Refresh(ref string) { r.pick(ref).Refresh(ref) }

func instanceID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	host, _ := os.Hostname()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if len(host) > 24 {
		host = host[:24]
	}
	return host + "-" + hex.EncodeToString(b)
}

// Authorize is the Authorize function's handler on the default App.
func Authorize(w http.ResponseWriter, r *http.Request) { Default().Authorize(w, r) }

// OAuthCallback is the OAuthCallback function's handler on the default App.
func OAuthCallback(w http.ResponseWriter, r *http.Request) { Default().OAuthCallback(w, r) }

// ListMessages is the ListMessages function's handler on the default App.
func ListMessages(w http.ResponseWriter, r *http.Request) { Default().ListMessages(w, r) }
