// Package devserver assembles the local stack that `make dev` runs: the three
// functions on one port and, unless a real OAuth client is configured, the
// sandbox (a stand-in for Google's OAuth, OIDC and Gmail endpoints) under
// /sandbox/ on the same port. End-to-end tests drive exactly this stack.
package devserver

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
	"path/filepath"
	"strings"
	"time"

	"example.com/gmailoauth/internal/app"
	"example.com/gmailoauth/internal/config"
	"example.com/gmailoauth/internal/events"
	"example.com/gmailoauth/internal/keyset"
	"example.com/gmailoauth/internal/local/demo"
	"example.com/gmailoauth/internal/local/pushbus"
	"example.com/gmailoauth/internal/local/sandbox"
	"example.com/gmailoauth/internal/pubsub"
	"example.com/gmailoauth/internal/secrets"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/weburl"
)

// Sandbox identities used in local runs.
const (
	SandboxClientID         = "sandbox-client.apps.googleusercontent.com"
	SandboxSchedulerAccount = "scheduler@sandbox.iam.gserviceaccount.com"
)

// Options configure a Server.
type Options struct {
	// BaseURL is the stack's public URL, e.g. http://localhost:8080.
	BaseURL string
	// DemoBaseURL is the public URL of the demo frontend (package demo), a
	// second origin such as http://localhost:8081, so that the page calls
	// the functions cross-origin as a deployed frontend would. Its origin is
	// added to ALLOWED_RETURN_ORIGINS and its page (DemoBaseURL + "/") to
	// ALLOWED_RETURN_URLS. "" = no demo.
	DemoBaseURL string
	// Getenv reads the user's configuration; nil means os.Getenv.
	Getenv func(string) string
	// Store overrides the store (tests); nil lets STORE decide (memory by default).
	Store store.Store
	// StateDir, when set, keeps the generated app keyset there
	// (app-keys.json, reused by the next run, so a persistent store's
	// tokens still open); "" keeps it in memory for this run only.
	StateDir string
	Logger   *slog.Logger
	Now      func() time.Time
	// Transport for outbound calls; nil = http.DefaultTransport.
	Transport http.RoundTripper
	// NoPush leaves push off (no watch, no GmailPush work in the
	// background; the sweep syncs everyone itself), for tests that count
	// a frontend request's own calls. The events stay on.
	NoPush bool
}

// Server is the assembled local stack.
type Server struct {
	Handler http.Handler
	App     *app.App
	// Sandbox is nil when a real OAuth client is configured.
	Sandbox *sandbox.Sandbox
	// Env is the configuration the functions see.
	Env     map[string]string
	BaseURL string
	// DemoHandler serves the demo frontend; the caller listens for it on
	// DemoBaseURL's origin. Nil without a DemoBaseURL.
	DemoHandler http.Handler
	DemoBaseURL string
	// Events keeps the events to the app, for GET /dev/events: published to
	// it directly (memory), or received from the Pub/Sub emulator's events
	// topic through a pull subscription (PUBSUB_EMULATOR_HOST set).
	Events *events.Memory
	// Bus delivers the notification topic's messages to GmailPush in
	// process when no Pub/Sub emulator is configured; nil otherwise.
	Bus *pushbus.Bus
	// PushTopic and EventsTopic are the topics configured ("" = none).
	PushTopic, EventsTopic string

	lookup      func(string) string // the configuration the functions see
	callerStore bool                // Options.Store was set
	memoryKeys  bool                // the app keyset was generated in memory
	warnings    []string            // found by Check, for the walkthrough
	pushDesc    string
	log         *slog.Logger
	notify      sandbox.Notifier // where the sandbox's notifications go
	pubsub      *pubsub.Client   // the emulator's, when configured
	closers     []func()
}

// Check builds the functions' dependencies now, with the same configuration
// and wiring (app.Load) the first request would use, so a wrong setting is
// reported before anything is served. The error lists every problem (see
// Problems). Warnings (a redirect URL the OAuth client does not register,
// say) are kept for the walkthrough.
func (s *Server) Check(ctx context.Context) error {
	d, err := s.App.Init(ctx)
	if err != nil {
		return err
	}
	s.warnings = append(s.warnings[:0], d.Warnings...)
	if d.Config.Store == config.StoreFirestore && os.Getenv("FIRESTORE_EMULATOR_HOST") == "" && s.memoryKeys {
		s.warnings = append(s.warnings, "the app keyset is generated in memory for this run: tokens stored in project "+
			d.Config.Project+" will not open after a restart; set DEV_STATE_DIR=.dev to keep the keyset there (or APP_KEYS_FILE)")
	}
	return nil
}

// Problems lists, one per line, what err (from Check) says is wrong: every
// problem of the settings (*config.Error), every secret that could not be
// read, and so on.
func Problems(err error) []string {
	var ce *config.Error
	if errors.As(err, &ce) {
		return ce.Problems
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok { //nolint:errorlint // the joined errors themselves
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, Problems(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

// storeDesc says which store the functions use, from the configuration as
// validated.
func (s *Server) storeDesc() string {
	if s.callerStore {
		return "provided by the caller"
	}
	cfg, err := config.Load(s.lookup)
	switch {
	case err != nil:
		return "none: the configuration is invalid (the logs say what to fix)"
	case cfg.Store == config.StoreFirestore:
		d := "Firestore, project " + cfg.Project
		if h := os.Getenv("FIRESTORE_EMULATOR_HOST"); h != "" {
			d += ", emulator " + h + " (starts empty)"
		}
		return d
	}
	return "memory (lost when the process stops)"
}

// loopbackSpellings returns base's origin and, when its host is a loopback
// name, the same origin under localhost, 127.0.0.1 and [::1].
func loopbackSpellings(base string) []string {
	u, err := url.Parse(base)
	if err != nil || !weburl.IsLoopback(u.Hostname()) {
		return []string{base}
	}
	out := []string{base}
	for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
		v := *u
		v.Host = net.JoinHostPort(h, u.Port())
		if u.Port() == "" {
			v.Host = h
			if strings.Contains(h, ":") {
				v.Host = "[" + h + "]"
			}
		}
		if o := weburl.Origin(&v); o != weburl.Origin(u) {
			out = append(out, o)
		}
	}
	return out
}

// New builds the stack. With OAUTH_CLIENT_SECRET or OAUTH_CLIENT_SECRET_FILE
// set it uses the configured provider and no sandbox.
func New(opts Options) (*Server, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	base := strings.TrimRight(opts.BaseURL, "/")
	env := map[string]string{}
	set := func(k, v string) {
		if getenv(k) == "" {
			env[k] = v
		}
	}
	set("OAUTH_REDIRECT_URL", base+"/callback")
	set("STORE", "memory")
	demoBase := strings.TrimRight(opts.DemoBaseURL, "/")
	// The runner's own origins, in each loopback spelling a browser may be
	// pointed at (localhost, 127.0.0.1, [::1]), so the demo opened at
	// http://127.0.0.1:8081 works as well as at http://localhost:8081.
	origins := loopbackSpellings(base)
	if demoBase != "" {
		origins = append(origins, loopbackSpellings(demoBase)...)
	}
	if extra := getenv("ALLOWED_RETURN_ORIGINS"); extra != "" {
		origins = append([]string{extra}, origins...)
	}
	env["ALLOWED_RETURN_ORIGINS"] = strings.Join(origins, ",")
	// The demo page, exactly, is the runner's return URL (in each loopback
	// spelling too).
	if demoBase != "" {
		urls := []string{}
		if extra := getenv("ALLOWED_RETURN_URLS"); extra != "" {
			urls = append(urls, extra)
		}
		for _, o := range loopbackSpellings(demoBase) {
			urls = append(urls, o+"/")
		}
		env["ALLOWED_RETURN_URLS"] = strings.Join(urls, ",")
	}

	s := &Server{BaseURL: base, DemoBaseURL: demoBase, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	mem := secrets.Memory{}
	realClient := getenv("OAUTH_CLIENT_SECRET") != "" || getenv("OAUTH_CLIENT_SECRET_FILE") != ""
	if !realClient {
		secret := randomHex(24)
		sb, err := sandbox.New(sandbox.Config{
			BaseURL:      base + "/sandbox",
			ClientID:     SandboxClientID,
			ClientSecret: secret,
			RedirectURIs: []string{base + "/callback"},
			Now:          opts.Now,
			Logger:       opts.Logger,
			Notify:       func(topic string, data []byte) error { return s.notifyVia(topic, data) },
		})
		if err != nil {
			return nil, err
		}
		s.Sandbox = sb
		mem[sandboxClientRef] = sb.ClientSecretJSON()
		env["OAUTH_CLIENT_SECRET_FILE"] = sandboxClientRef
		env["GOOGLE_AUTH_URL"] = base + "/sandbox/o/oauth2/v2/auth"
		env["GOOGLE_TOKEN_URL"] = base + "/sandbox/token"
		env["GOOGLE_REVOKE_URL"] = base + "/sandbox/revoke"
		env["GOOGLE_ISSUER"] = base + "/sandbox"
		env["GMAIL_API_URL"] = base + "/sandbox/"
		set("SCHEDULER_SERVICE_ACCOUNT", SandboxSchedulerAccount)
		set("SCHEDULER_AUDIENCE", base+"/list-messages")
	}
	ps, err := s.pushEnv(getenv, set, env, realClient || opts.NoPush)
	if err != nil {
		return nil, err
	}
	if getenv("APP_KEYS_SECRET") == "" && getenv("APP_KEYS_FILE") == "" {
		ref, err := devKeys(opts.StateDir, mem)
		if err != nil {
			return nil, err
		}
		env["APP_KEYS_FILE"] = ref
	}
	s.Env = env
	lookup := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return getenv(k)
	}
	s.lookup = lookup
	s.callerStore = opts.Store != nil
	s.memoryKeys = env["APP_KEYS_FILE"] == memoryKeysRef
	s.App = app.New(app.Options{Getenv: lookup, Store: opts.Store, Logger: opts.Logger, Now: opts.Now, Transport: opts.Transport,
		Secrets: devSecrets{memory: mem, file: secrets.NewFileSource(), sm: secrets.NewSecretManagerSource()},
		Events:  ps.events, Dispatch: ps.dispatch})

	mux := http.NewServeMux()
	mux.HandleFunc("/authorize", s.App.Authorize)
	mux.HandleFunc("/callback", s.App.OAuthCallback)
	mux.HandleFunc("/list-messages", s.App.ListMessages)
	mux.HandleFunc(PushPath+"/", s.servePush)
	mux.HandleFunc("/dev/events", s.serveEvents(origins))
	if s.Sandbox != nil {
		mux.Handle("/sandbox/", http.StripPrefix("/sandbox", s.Sandbox))
	}
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, s.Walkthrough())
	})
	s.Handler = mux
	if demoBase != "" {
		loginHint := "alice@example.com"
		if s.Sandbox == nil {
			loginHint = ""
		}
		s.DemoHandler = demo.Handler(demo.Options{APIBaseURL: base, LoginHint: loginHint})
	}
	return s, nil
}

// Walkthrough is the text `make dev` prints: what runs where and a
// ready-to-paste curl session through the whole flow.
func (s *Server) Walkthrough() string {
	b := s.BaseURL
	var sb strings.Builder
	if s.DemoBaseURL != "" {
		fmt.Fprintf(&sb, "Demo frontend: %s/  <- open it in a browser (its own origin; it calls the functions cross-origin)\n\n", s.DemoBaseURL)
	}
	fmt.Fprintf(&sb, "gmailoauth local stack on %s\n\n", b)
	fmt.Fprintf(&sb, "  Authorize      %s/authorize\n  OAuthCallback  %s/callback\n  ListMessages   %s/list-messages\n", b, b, b)
	fmt.Fprintf(&sb, "  Store          %s\n", s.storeDesc())
	fmt.Fprintf(&sb, "  GmailPush      %s%s/…  (%s)\n", b, PushPath, s.pushDesc)
	fmt.Fprintf(&sb, "  Events         %s/dev/events  (the events to the app, oldest first; the last %d)\n", b, events.DefaultMemoryLimit)
	for _, w := range s.warnings {
		fmt.Fprintf(&sb, "\nWARNING: %s\n", w)
	}
	if s.Sandbox == nil {
		fmt.Fprintf(&sb, "\nUsing the configured OAuth client and endpoints (no sandbox).\nOpen %s/authorize?login_hint=YOU@gmail.com in a browser.\n", b)
		return sb.String()
	}
	fmt.Fprintf(&sb, "  Sandbox        %s/sandbox/  (stand-in for Google: consent is automatic; that page lists its endpoints and admin API)\n", b)
	fmt.Fprintf(&sb, `
Try it with curl (copy line by line):

  # 1. Authorize: get the consent URL, follow it through the sandbox's automatic
  #    consent to the callback, which answers with a session.
  URL=$(curl -s -H 'Accept: application/json' '%[1]s/authorize?login_hint=alice@example.com' | jq -r .authorization_url)
  SESSION=$(curl -sL "$URL" | jq -r .session)

  # 2. ListMessages: ids, then metadata, then the next page. Until the user's first
  #    sync the pages come live from Gmail ("source": "gmail"); after it, from the
  #    mirror in the store ("source": "mirror", "synced_at"), at no Gmail cost.
  curl -s -H "Authorization: Bearer $SESSION" '%[1]s/list-messages?max_results=5' | jq
  curl -s -H "Authorization: Bearer $SESSION" '%[1]s/list-messages?max_results=5&format=metadata&q=is:unread' | jq
  TOKEN=$(curl -s -H "Authorization: Bearer $SESSION" '%[1]s/list-messages?max_results=5' | jq -r .next_page_token)
  curl -s -H "Authorization: Bearer $SESSION" "%[1]s/list-messages?max_results=5&page_token=$TOKEN" | jq
  #    Push: new mail reaches the mirror within a second or two, and the app hears of it.
  curl -s -X POST -d '{"count":1}' '%[1]s/sandbox/admin/users/alice@example.com/messages'
  sleep 2; curl -s '%[1]s/dev/events' | jq '.[-1]'                   # message.added, with the metadata
  curl -s '%[1]s/sandbox/admin/users/alice@example.com' | jq .watch   # the watch: topic, expiration

  # 3. Scheduler mode: a sandbox-signed OIDC token for the scheduler account.
  ID=$(curl -s -X POST -H 'Content-Type: application/json' -d '{"audience":"%[1]s/list-messages","email":"%[2]s"}' '%[1]s/sandbox/admin/id-token' | jq -r .id_token)
  curl -s -X POST -H "Authorization: Bearer $ID" -H 'Content-Type: application/json' -d '{}' '%[1]s/list-messages' | jq   # the sweep's summary: who was due, handed to GmailPush
  curl -s -H "Authorization: Bearer $SESSION" '%[1]s/list-messages?max_results=5' | jq '{source, synced_at}'   # now from the mirror

  # 4. Revoke the grant in the sandbox (as if the user removed the app at Google):
  curl -s -X POST '%[1]s/sandbox/admin/users/alice@example.com/revoke'
  curl -s -H "Authorization: Bearer $SESSION" '%[1]s/list-messages' | jq   # 401 reauthorization_required

  # 5. Disconnect (stops the watch, revokes at the provider, deletes the stored grant):
  curl -s -X DELETE -H "Authorization: Bearer $SESSION" -o /dev/null -w '%%{http_code}\n' '%[1]s/authorize'
`, b, SandboxSchedulerAccount)
	return sb.String()
}

// sandboxClientRef and memoryKeysRef name the secrets the runner holds in
// memory.
const (
	sandboxClientRef = "memory:sandbox-client"
	memoryKeysRef    = "memory:app-keys"
)

// devKeys generates the app keyset when none is configured: in memory, or
// in dir/app-keys.json (created once, then reused). It returns the
// reference to configure as APP_KEYS_FILE.
func devKeys(dir string, mem secrets.Memory) (string, error) {
	if dir == "" {
		keys, err := keyset.Generate(time.Now().UTC().Format("20060102"))
		if err != nil {
			return "", err
		}
		mem[memoryKeysRef] = keys
		return memoryKeysRef, nil
	}
	path := filepath.Join(dir, "app-keys.json")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	keys, err := keyset.Generate(time.Now().UTC().Format("20060102"))
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, keys, 0o600); err != nil {
		return "", err
	}
	return path, nil
}

// devSecrets serves the runner's in-memory secrets and sends every other
// reference where the configuration points: Secret Manager for version
// names, the file system otherwise.
type devSecrets struct {
	memory secrets.Memory
	file   secrets.Source
	sm     secrets.Source
}

func (d devSecrets) pick(ref string) secrets.Source {
	switch {
	case strings.HasPrefix(ref, "memory:"):
		return d.memory
	case strings.HasPrefix(ref, "projects/"):
		return d.sm
	}
	return d.file
}

// Secret implements secrets.Source.
func (d devSecrets) Secret(ctx context.Context, ref string) ([]byte, error) {
	return d.pick(ref).Secret(ctx, ref)
}

// Refresh implements secrets.Source.
func (d devSecrets) Refresh(ref string) { d.pick(ref).Refresh(ref) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
