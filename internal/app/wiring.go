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
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"example.com/gmailoauth/internal/apperr"
	"example.com/gmailoauth/internal/config"
	"example.com/gmailoauth/internal/events"
	"example.com/gmailoauth/internal/gmail"
	"example.com/gmailoauth/internal/httpx"
	"example.com/gmailoauth/internal/keyset"
	"example.com/gmailoauth/internal/mailbox"
	"example.com/gmailoauth/internal/oauthflow"
	"example.com/gmailoauth/internal/pubsub"
	"example.com/gmailoauth/internal/push"
	"example.com/gmailoauth/internal/secrets"
	"example.com/gmailoauth/internal/session"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/fsstore"
	"example.com/gmailoauth/internal/store/memstore"
	"example.com/gmailoauth/internal/syncer"
	"example.com/gmailoauth/internal/weburl"
)

// Deps are an instance's ready dependencies: what Build makes of a
// configuration.
type Deps struct {
	Config *config.Config
	Store  store.Store
	Flow   *oauthflow.Flow
	// Gmail makes the frontend's Gmail calls. It and the Syncer's share one
	// quota transport (per-user and per-project buckets), so the frontend
	// and the sweep draw on the same project budget, each with its own
	// patience.
	Gmail  *gmail.Service
	Syncer *syncer.Syncer
	// Budget counts the project's Gmail units per UTC day across
	// instances; work that can wait for the next day (the older mail of
	// first syncs, watch renewals not yet due) asks its AllowOptional.
	Budget *gmail.Budget
	// Mailbox answers the frontend's listings: from the mirror the Syncer
	// keeps, or through Gmail.
	Mailbox *mailbox.Reader
	// Client makes the instance's other outbound calls (OAuth, OIDC), with
	// the outbound timeout and no redirects.
	Client  *http.Client
	Secrets secrets.Source
	Log     *slog.Logger
	Now     func() time.Time
	// Warnings are what Build found suspicious but not fatal, in plain
	// words (each is logged too); the local runner prints them at start.
	Warnings []string
	// Events publishes the outbox to the app (nil: no events); Push is the
	// push path (nil: PUSH_TOPIC is not set, and the sweep syncs everyone
	// itself).
	Events events.Publisher
	Push   *push.Service

	keys *keyset.Holder
}

// Keys returns the current app keyset.
func (d *Deps) Keys() *keyset.Keyset { return d.keys.Keys() }

// ReloadKeys reads the keyset secret again now (after a rotation, when an
// operator or a test knows one happened).
func (d *Deps) ReloadKeys(ctx context.Context) error { return d.keys.Reload(ctx) }

// reloadKeysFor reads the keyset secret again because a session or a
// ciphertext names key id kid, which it lacks: the one policy of
// keyset.Holder (well-formed key ids only, one reload at a time, at most
// one per keyset.DefaultReloadInterval per instance).
func (d *Deps) reloadKeysFor(ctx context.Context, kid string) error {
	return d.keys.ReloadFor(ctx, kid)
}

// Load reads the configuration through opts.Getenv and builds it.
func Load(ctx context.Context, opts Options) (*Deps, error) {
	cfg, err := config.Load(opts.Getenv)
	if err != nil {
		return nil, err
	}
	return Build(ctx, cfg, opts)
}

// Build is the one wiring of a configuration into dependencies, used by the
// deployed functions, the local runner and the tests. It reads both
// secrets (the OAuth client and the app keyset) and opens the store, under
// ctx. Options' Store and Secrets, when set, replace what the configuration
// names; zero Options fields take their defaults (see Options).
func Build(ctx context.Context, cfg *config.Config, opts Options) (*Deps, error) {
	opts = withDefaults(opts)
	src := opts.Secrets
	if src == nil {
		src = newSources(cfg)
	}
	client, ks, err := loadSecrets(ctx, cfg, src)
	if err != nil {
		return nil, err
	}
	st := opts.Store
	if st == nil {
		if st, err = openStore(ctx, cfg); err != nil {
			return nil, err
		}
	}
	hc := &http.Client{Timeout: cfg.OutboundTimeout, Transport: opts.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	d := &Deps{Config: cfg, Store: st, Client: hc, Secrets: src, Log: opts.Logger, Now: opts.Now,
		Warnings: configWarnings(cfg, client, opts.Logger)}
	d.keys = keyset.NewHolder(ks, func(ctx context.Context) (*keyset.Keyset, error) {
		src.Refresh(cfg.KeysRef)
		return loadKeys(ctx, src, cfg.KeysRef)
	}, keyset.DefaultReloadInterval, opts.Now)
	d.Flow = newFlow(d, client, opts)
	buildGmail(d, opts)
	if err := buildPush(ctx, d, opts); err != nil {
		return nil, err
	}
	return d, nil
}

// loadSecrets reads the OAuth client and the app keyset. Both are read
// before either failure is returned, so a misconfigured instance names
// every wrong secret at once.
func loadSecrets(ctx context.Context, cfg *config.Config, src secrets.Source) (*secrets.ClientConfig, *keyset.Keyset, error) {
	client, cerr := loadClient(ctx, cfg, src)
	if cerr != nil {
		cerr = fmt.Errorf("the OAuth client (%s): %w", secretSetting(cfg.ClientSecretIsFile, "OAUTH_CLIENT_SECRET", "OAUTH_CLIENT_SECRET_FILE"), cerr)
	}
	ks, kerr := loadKeys(ctx, src, cfg.KeysRef)
	if kerr != nil {
		kerr = fmt.Errorf("the app keyset (%s): %w", secretSetting(cfg.KeysIsFile, "APP_KEYS_SECRET", "APP_KEYS_FILE"), kerr)
	}
	if err := errors.Join(cerr, kerr); err != nil {
		return nil, nil, err
	}
	return client, ks, nil
}

// configWarnings logs and returns what is valid but will not work as an
// operator probably expects: a redirect URL the OAuth client does not
// register, and frontends without return pages.
func configWarnings(cfg *config.Config, client *secrets.ClientConfig, log *slog.Logger) []string {
	var warnings []string
	if len(client.RedirectURIs) > 0 && !slices.Contains(client.RedirectURIs, cfg.RedirectURL) {
		const msg = "OAUTH_REDIRECT_URL is not one of the OAuth client's redirect_uris; Google will answer redirect_uri_mismatch until it is registered"
		log.Warn(msg, slog.String("redirect_url", cfg.RedirectURL), slog.Any("registered", client.RedirectURIs))
		warnings = append(warnings, fmt.Sprintf("%s (OAUTH_REDIRECT_URL is %s; the client registers %s)",
			msg, cfg.RedirectURL, strings.Join(client.RedirectURIs, ", ")))
	}
	if len(cfg.AllowedReturnURLs) == 0 && slices.ContainsFunc(cfg.AllowedReturnOrigins, func(o string) bool {
		u, err := url.Parse(o)
		return err == nil && !weburl.IsLoopback(u.Hostname())
	}) {
		// A deployment with frontends but no return pages: say why every
		// return_to will be refused.
		const msg = "ALLOWED_RETURN_URLS is empty: every return_to is refused (an allowed origin alone is not enough); list your frontend's return page(s)"
		log.Warn(msg)
		warnings = append(warnings, msg)
	}
	return warnings
}

// newFlow returns the OAuth flow of d's configuration and client.
func newFlow(d *Deps, client *secrets.ClientConfig, opts Options) *oauthflow.Flow {
	cfg := d.Config
	return &oauthflow.Flow{
		Store: d.Store,
		OAuth: &oauth2.Config{
			ClientID:     client.ClientID,
			ClientSecret: client.ClientSecret,
			RedirectURL:  cfg.RedirectURL,
			Scopes:       cfg.Scopes,
			Endpoint:     oauth2.Endpoint{AuthURL: cfg.AuthURL, TokenURL: cfg.TokenURL, AuthStyle: oauth2.AuthStyleInParams},
		},
		RevokeURL:  cfg.RevokeURL,
		Issuer:     cfg.Issuer,
		HTTPClient: d.Client,
		Keys:       d.Keys,
		ReloadKeys: d.reloadKeysFor,
		Sessions:   &session.Manager{Keys: d.Keys, TTL: cfg.SessionTTL, Now: opts.Now},
		ReturnURLs: cfg.AllowedReturnURLs,
		Pending:    oauthflow.NewPendingStates(0, 0),
		Now:        opts.Now,
		Log:        opts.Logger,
		InstanceID: instanceID(),
	}
}

// buildGmail sets d's Gmail budget, the frontend's Gmail service and
// mailbox reader, and the syncer. Both services share one quota
// transport, so the frontend and the sweep draw on the same budgets.
func buildGmail(d *Deps, opts Options) {
	cfg, st := d.Config, d.Store
	d.Budget = &gmail.Budget{PerDay: cfg.GmailQuotaProjectPerDay, Counter: st, Now: opts.Now, Log: opts.Logger}
	quota := &gmail.Transport{
		Base:                  gmailBaseTransport(opts.Transport, cfg.SyncConcurrency*gmail.DefaultMetadataConcurrency),
		UserUnitsPerMinute:    float64(cfg.GmailQuotaUserPerMin),
		ProjectUnitsPerMinute: float64(cfg.GmailQuotaProjectPerMin),
		Budget:                d.Budget,
		Now:                   opts.Now,
	}
	// A person waits on the frontend's calls: a few quick retries, each call
	// within the outbound timeout, at most FrontendPatience waiting for the
	// budget (then rate_limited with a Retry-After), and a few calls of one
	// user at once. The sweep is patient: the timeout covers a call's
	// retries and quota waits, each attempt bounded by the base transport's
	// header timeout.
	d.Gmail = &gmail.Service{BaseURL: cfg.GmailAPIURL, Tokens: d.Flow, Now: opts.Now, Retry: FrontendRetry,
		Patience: FrontendPatience, MaxConcurrentPerUser: gmail.DefaultConcurrentPerUser,
		HTTP: &http.Client{Timeout: cfg.OutboundTimeout, Transport: quota}}
	d.Mailbox = &mailbox.Reader{Store: st, Grants: d.Flow, Gmail: d.Gmail,
		PageTokenKeys: func() [][]byte { return d.Keys().PageTokenKeys() }}
	d.Syncer = &syncer.Syncer{
		Budget: d.Budget,
		Store:  st,
		Gmail: &gmail.Service{BaseURL: cfg.GmailAPIURL, Tokens: d.Flow, Now: opts.Now,
			HTTP: &http.Client{Timeout: 3 * time.Minute, Transport: quota}},
		Log:             opts.Logger,
		Now:             opts.Now,
		Query:           cfg.SyncQuery,
		UserConcurrency: cfg.SyncConcurrency,
		Deadline:        cfg.SyncDeadline,
		Severity:        httpx.Severity,
	}
}

// secretSetting names the variable that configured a secret.
func secretSetting(isFile bool, smKey, fileKey string) string {
	if isFile {
		return fileKey
	}
	return smKey
}

// FrontendPatience is the longest a frontend request waits for the Gmail
// budget (the user's, the project's, a slot among the user's concurrent
// requests, or a pause Gmail asked for) before it is answered 429
// rate_limited with the wait as Retry-After.
const FrontendPatience = gmail.DefaultPatience

// buildPush wires the events to the app and the push path, when
// configured: Pub/Sub clients for EVENTS_TOPIC and PUSH_TOPIC unless
// Options replace them.
func buildPush(ctx context.Context, d *Deps, opts Options) error {
	cfg := d.Config.Push
	clients := map[string]*pubsub.Client{}
	client := func(topic string) (*pubsub.Client, error) {
		project, _, err := pubsub.ParseTopic(topic)
		if err != nil {
			return nil, err
		}
		if c := clients[project]; c != nil {
			return c, nil
		}
		c, err := pubsub.New(ctx, project, pubsub.Options{EmulatorHost: cfg.EmulatorHost})
		if err != nil {
			return nil, err
		}
		clients[project] = c
		return c, nil
	}
	d.Events = opts.Events
	if d.Events == nil && cfg.EventsTopic != "" {
		c, err := client(cfg.EventsTopic)
		if err != nil {
			return err
		}
		d.Events = topicEvents{c: c, topic: cfg.EventsTopic}
	}
	d.Syncer.Events = d.Events != nil
	d.Flow.Events = d.Events != nil
	if cfg.Topic == "" {
		return nil
	}
	disp := opts.Dispatch
	if disp == nil {
		c, err := client(cfg.Topic)
		if err != nil {
			return err
		}
		disp = topicDispatch{c: c, topic: cfg.Topic}
	}
	d.Push = &push.Service{
		Store: d.Store, Syncer: d.Syncer, Gmail: d.Syncer.Gmail, Budget: d.Budget, Events: d.Events, Dispatch: disp, Topic: cfg.Topic,
		WatchRenewal: cfg.WatchRenewal, ResyncAfter: cfg.ResyncAfter,
		Owner: d.Flow.InstanceID, Now: d.Now, Log: d.Log,
	}
	// With push, a quiet mailbox's sync records that it is current, so the
	// sweep can tell it from one whose notifications were lost.
	d.Syncer.Touch = time.Minute
	d.Flow.AfterEvents = d.Push.Kick
	return nil
}

// FrontendRetry is how a frontend request retries Gmail's 429s and 5xx: a
// few quick tries within the request's deadline, since a person is waiting.
var FrontendRetry = gmail.Retry{MaxAttempts: 3, BaseDelay: 100 * time.Millisecond, MaxDelay: 2 * time.Second}

// withDefaults fills the zero fields of opts.
func withDefaults(opts Options) Options {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return opts
}

func openStore(ctx context.Context, cfg *config.Config) (store.Store, error) {
	if cfg.Store != config.StoreFirestore {
		return memstore.New(), nil
	}
	st, err := fsstore.New(ctx, cfg.Project)
	if err != nil {
		return nil, fmt.Errorf("firestore client: %w", err)
	}
	return st, nil
}

// loadClient reads the OAuth client: from its JSON secret, or, when only
// OAUTH_CLIENT_ID is configured (Authorize, which needs no client secret),
// the id alone, without reading any secret.
func loadClient(ctx context.Context, cfg *config.Config, src secrets.Source) (*secrets.ClientConfig, error) {
	if cfg.ClientSecretRef == "" {
		return &secrets.ClientConfig{ClientID: cfg.ClientID}, nil
	}
	client, err := secrets.LoadClientConfig(ctx, src, cfg.ClientSecretRef)
	if err != nil {
		return nil, err
	}
	if cfg.ClientID != "" && cfg.ClientID != client.ClientID {
		return nil, errors.New("OAUTH_CLIENT_ID is not the client_id of this client JSON")
	}
	return client, nil
}

// needsClientSecret refuses a request this instance cannot serve without
// the OAuth client secret (code exchange, token refresh): its configuration
// names only OAUTH_CLIENT_ID, which is Authorize's.
func needsClientSecret(d *Deps) error {
	if d.Flow.OAuth.ClientSecret != "" {
		return nil
	}
	return apperr.New(apperr.Misconfigured, "this function needs the OAuth client JSON (OAUTH_CLIENT_SECRET); OAUTH_CLIENT_ID alone serves Authorize only")
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

// gmailBaseTransport gives the sync's many concurrent calls enough idle
// connections and a per-attempt header timeout when base is an *http.Transport.
func gmailBaseTransport(base http.RoundTripper, conns int) http.RoundTripper {
	t, ok := base.(*http.Transport)
	if !ok {
		return base
	}
	t = t.Clone()
	t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, conns)
	if t.ResponseHeaderTimeout == 0 {
		t.ResponseHeaderTimeout = 30 * time.Second
	}
	return t
}

// instanceID names this instance in refresh leases.
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
