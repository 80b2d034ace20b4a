// Package app is the functions' application: the one wiring of
// configuration into ready dependencies (Build), built lazily once per
// instance (App), and the HTTP handlers the functions register.
//
// Nothing happens at init. The first request starts the instance's setup,
// which runs under a context and deadline of its own, so a client that hangs
// up during a cold start cannot fail it; concurrent first requests share
// that one setup and no lock is held while it waits on the network. A
// misconfigured instance answers 500 misconfigured with one clear log line
// instead of panicking.
package app

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"example.com/gmailoauth/internal/apperr"
	"example.com/gmailoauth/internal/config"
	"example.com/gmailoauth/internal/events"
	"example.com/gmailoauth/internal/logging"
	"example.com/gmailoauth/internal/push"
	"example.com/gmailoauth/internal/secrets"
	"example.com/gmailoauth/internal/store"
)

// Options customise an App; the zero value reads the process environment.
type Options struct {
	// Getenv reads configuration; nil means os.Getenv.
	Getenv func(string) string
	// Store replaces the store chosen by STORE (local runner, tests).
	Store store.Store
	// Secrets replaces the sources chosen by the configuration.
	Secrets secrets.Source
	// Transport carries every outbound call to Google (or the sandbox); nil
	// means http.DefaultTransport.
	Transport http.RoundTripper
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the logs; nil means Cloud Logging JSON on stdout.
	Logger *slog.Logger
	// Events replaces the app's topic (EVENTS_TOPIC) with another
	// publisher, and turns the events on even without EVENTS_TOPIC (the
	// local runner keeps them in memory).
	Events events.Publisher
	// Dispatch replaces publishing to the notification topic (PUSH_TOPIC)
	// (the local runner delivers in process).
	Dispatch push.Dispatcher
}

// Timings of an instance's setup.
const (
	// setupTimeout bounds one setup (secret reads, store client), whoever
	// waits for it.
	setupTimeout = time.Minute
	// retryMisconfigured spaces out setups after a configuration failure.
	retryMisconfigured = 10 * time.Second
	// retryUnavailable spaces out setups after a dependency was unreachable.
	retryUnavailable = 5 * time.Second
)

// App serves the functions of one instance.
type App struct {
	opts Options
	log  *slog.Logger

	deps atomic.Pointer[Deps]
	// fallbackOrigins are the valid origins of ALLOWED_RETURN_ORIGINS, used
	// for CORS while the dependencies are not ready (a misconfigured or
	// starting instance), so the allow-listed frontends can read the error.
	fallbackOrigins []string

	mu       sync.Mutex // guards the fields below; never held across I/O
	building chan struct{}
	failErr  error
	failedAt time.Time
	lastLog  string
}

// New returns an App. It does no I/O.
func New(opts Options) *App {
	if opts.Logger == nil {
		getenv := opts.Getenv
		if getenv == nil {
			getenv = os.Getenv
		}
		opts.Logger = logging.New(os.Stdout, getenv("GOOGLE_CLOUD_PROJECT"), slog.LevelInfo)
	}
	opts = withDefaults(opts)
	return &App{opts: opts, log: opts.Logger, fallbackOrigins: config.ReturnOrigins(opts.Getenv)}
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

// Deps returns the instance's dependencies, starting their setup on first
// use and waiting for it (or for ctx). A failed setup is remembered for a
// few seconds and logged once: a wrong configuration or secret answers 500
// misconfigured, a dependency that did not answer 503 unavailable.
func (a *App) Deps(ctx context.Context) (*Deps, error) {
	if d := a.deps.Load(); d != nil {
		return d, nil
	}
	a.mu.Lock()
	if a.failErr != nil && a.opts.Now().Sub(a.failedAt) < retryAfterFailure(a.failErr) {
		err := a.failErr
		a.mu.Unlock()
		return nil, err
	}
	ch := a.building
	if ch == nil {
		ch = make(chan struct{})
		a.building = ch
		go a.setup(ch)
	}
	a.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return nil, apperr.Wrap(apperr.Unavailable, "the instance is still starting; try again shortly", ctx.Err())
	}
	if d := a.deps.Load(); d != nil {
		return d, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return nil, a.failErr
}

// Init builds the instance's dependencies now, rather than at the first
// request, and returns the setup's own error (a *config.Error listing every
// problem of the settings, the secrets' errors, ...) instead of the
// contract's answer to it; nothing is logged but Build's warnings. The
// local runner calls it to refuse a bad configuration before it serves.
// The deployed functions never do: they answer 500 misconfigured and log
// what to fix.
func (a *App) Init(ctx context.Context) (*Deps, error) {
	if d := a.deps.Load(); d != nil {
		return d, nil
	}
	d, err := Load(ctx, a.opts)
	if err != nil {
		return nil, err
	}
	if !a.deps.CompareAndSwap(nil, d) {
		_ = d.Store.Close() // a request's setup won meanwhile
		return a.deps.Load(), nil
	}
	return d, nil
}

// setup builds the dependencies under its own deadline and publishes the
// outcome, then closes done.
func (a *App) setup(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	d, err := Load(ctx, a.opts)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.building = nil
	defer close(done)
	if err == nil {
		a.deps.Store(d)
		a.failErr = nil
		return
	}
	a.failErr, a.failedAt = setupError(err), a.opts.Now()
	if msg := strings.ReplaceAll(err.Error(), "\n", "; "); msg != a.lastLog {
		a.lastLog = msg
		a.log.Error("instance cannot serve: " + logging.Scrub(msg))
	}
}

// setupError is the contract's answer to a failed setup: unavailable when
// dependencies did not answer (worth a retry), misconfigured otherwise
// (also when one problem of several is a wrong setting).
func setupError(err error) error {
	if unavailable(err) {
		return apperr.New(apperr.Unavailable, "a dependency is unavailable; try again shortly")
	}
	// The cause was logged once by setup; it is not repeated per request.
	return apperr.New(apperr.Misconfigured, "the function is misconfigured; its logs say what to fix")
}

// unavailable reports whether err, or every error err joins, is a
// dependency that did not answer.
func unavailable(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok { //nolint:errorlint // the joined errors themselves
		for _, e := range j.Unwrap() {
			if !unavailable(e) {
				return false
			}
		}
		return len(j.Unwrap()) > 0
	}
	var se *secrets.Error
	return errors.As(err, &se) && se.Kind == secrets.Unavailable || errors.Is(err, store.ErrUnavailable) ||
		errors.Is(err, context.DeadlineExceeded)
}

func retryAfterFailure(err error) time.Duration {
	if apperr.Is(err, apperr.Unavailable) {
		return retryUnavailable
	}
	return retryMisconfigured
}
