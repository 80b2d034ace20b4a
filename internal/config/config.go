// Package config parses and validates the functions' configuration from
// environment variables in one place, reporting every problem at once.
package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"example.com/gmailoauth/internal/gmail"
	"example.com/gmailoauth/internal/pubsub"
	"example.com/gmailoauth/internal/weburl"
)

// Google's endpoints, the defaults of the endpoint overrides.
const (
	DefaultAuthURL   = "https://accounts.google.com/o/oauth2/v2/auth"
	DefaultTokenURL  = "https://oauth2.googleapis.com/token"
	DefaultRevokeURL = "https://oauth2.googleapis.com/revoke"
	DefaultIssuer    = "https://accounts.google.com"
	DefaultGmailURL  = "https://gmail.googleapis.com/"
)

// DefaultScopes are requested when OAUTH_SCOPES is not set.
var DefaultScopes = []string{"openid", "email", gmail.ScopeReadonly}

// Store kinds.
const (
	StoreMemory    = "memory"
	StoreFirestore = "firestore"
)

// Config is the validated configuration of an instance.
type Config struct {
	Project string // GOOGLE_CLOUD_PROJECT

	// ClientSecretRef is a Secret Manager version name, or a file path when
	// ClientSecretIsFile is set (OAUTH_CLIENT_SECRET / OAUTH_CLIENT_SECRET_FILE).
	ClientSecretRef    string
	ClientSecretIsFile bool
	// ClientID is the OAuth client id (OAUTH_CLIENT_ID). Set without a
	// client secret, the instance never reads the client JSON: that is
	// enough for Authorize (consent URLs, sessions, revocation), which so
	// needs no access to the client secret. With both set, they must agree.
	ClientID string
	// KeysRef is the app keyset's Secret Manager version name, or a file path
	// when KeysIsFile is set (APP_KEYS_SECRET / APP_KEYS_FILE).
	KeysRef    string
	KeysIsFile bool

	RedirectURL string // OAUTH_REDIRECT_URL
	// AllowedReturnOrigins is the CORS allow-list (ALLOWED_RETURN_ORIGINS),
	// normalised scheme://host[:port].
	AllowedReturnOrigins []string
	// AllowedReturnURLs are where return_to may point (ALLOWED_RETURN_URLS):
	// exact URLs, or path prefixes written with a trailing "/*". Empty
	// refuses every return_to.
	AllowedReturnURLs []weburl.ReturnURL
	Scopes            []string // OAUTH_SCOPES (space or comma separated)

	SchedulerServiceAccount string // SCHEDULER_SERVICE_ACCOUNT
	SchedulerAudience       string // SCHEDULER_AUDIENCE

	SyncQuery       string        // SYNC_QUERY (a date-only query; see DateOnlyQuery)
	SyncConcurrency int           // SYNC_CONCURRENCY
	SyncDeadline    time.Duration // SYNC_DEADLINE

	// Gmail's limits the functions keep to, in quota units: per user per
	// minute, per project per minute, and the project's daily billing
	// threshold, near which the sweep defers what can wait.
	GmailQuotaUserPerMin    int   // GMAIL_QUOTA_USER_PER_MIN (default 6000)
	GmailQuotaProjectPerMin int   // GMAIL_QUOTA_PROJECT_PER_MIN (default 1200000)
	GmailQuotaProjectPerDay int64 // GMAIL_QUOTA_PROJECT_PER_DAY (default 80000000)

	Store string // STORE: memory or firestore

	// ClientAddrFromForwardedFor says the client's address is the last
	// X-Forwarded-For entry, the one Google's front end appends, rather
	// than the connection's peer: set when K_SERVICE is (Cloud Run, and so
	// Cloud Functions 2nd gen, sets it in every instance).
	ClientAddrFromForwardedFor bool

	SessionTTL time.Duration // SESSION_TTL

	// RequestTimeout bounds a frontend request, store calls included
	// (REQUEST_TIMEOUT, default 30s); OutboundTimeout bounds each call to
	// Google (OUTBOUND_TIMEOUT, default 10s).
	RequestTimeout  time.Duration
	OutboundTimeout time.Duration

	AuthURL     string // GOOGLE_AUTH_URL
	TokenURL    string // GOOGLE_TOKEN_URL
	RevokeURL   string // GOOGLE_REVOKE_URL
	Issuer      string // GOOGLE_ISSUER
	GmailAPIURL string // GMAIL_API_URL, ends with "/"

	Push Push // loadPush
}

// Push configures Gmail's push notifications and the events to the app.
type Push struct {
	// Topic is the Pub/Sub topic Gmail's notifications go to
	// (PUSH_TOPIC, projects/P/topics/T): users.watch names it, GmailPush is
	// triggered by it, and the callback and the sweep hand users to GmailPush
	// through it. "" turns push off (the sweep then syncs every user itself).
	Topic string
	// EventsTopic is the app's topic, where every change to a mirror or a
	// grant is published (EVENTS_TOPIC, projects/P/topics/T); "" = no events.
	EventsTopic string
	// WatchRenewal is how long a watch lives before the sweep renews it
	// (PUSH_WATCH_RENEWAL, default 24h; Gmail's watches expire after 7 days).
	WatchRenewal time.Duration
	// ResyncAfter is how long a mailbox may go without a sync before the
	// sweep syncs it anyway, in case notifications were lost
	// (PUSH_RESYNC_AFTER, default 6h).
	ResyncAfter time.Duration
	// EmulatorHost is the Pub/Sub emulator's host:port
	// (PUBSUB_EMULATOR_HOST; local runs and tests only).
	EmulatorHost string
}

// Error lists every problem found in a configuration.
type Error struct {
	Problems []string
}

func (e *Error) Error() string {
	return "invalid configuration: " + strings.Join(e.Problems, "; ")
}

// env reads settings and collects the problems found in them.
type env struct {
	getenv   func(string) string
	problems []string
}

func (e *env) get(key string) string { return strings.TrimSpace(e.getenv(key)) }

func (e *env) bad(format string, args ...any) {
	e.problems = append(e.problems, fmt.Sprintf(format, args...))
}

// Load reads the configuration through getenv (os.Getenv in production) and
// validates it, one concern at a time. A non-nil error is always a *Error
// listing every problem of every concern.
func Load(getenv func(string) string) (*Config, error) {
	e := &env{getenv: getenv}
	c := &Config{Project: e.get("GOOGLE_CLOUD_PROJECT")}
	for _, load := range []func(*env, *Config){
		loadSecrets, loadOAuth, loadReturnURLs, loadScheduler, loadSync, loadQuota, loadTimeouts, loadStore, loadEndpoints,
		loadPlatform, loadPush,
	} {
		load(e, c)
	}
	if len(e.problems) > 0 {
		return nil, &Error{Problems: e.problems}
	}
	return c, nil
}

// loadSecrets reads where the two secrets are: Secret Manager or a file.
// The client JSON may be left out when OAUTH_CLIENT_ID names the client.
func loadSecrets(e *env, c *Config) {
	c.ClientID = e.get("OAUTH_CLIENT_ID")
	if c.ClientID != "" && (len(c.ClientID) > 256 || strings.ContainsFunc(c.ClientID, func(r rune) bool { return r <= ' ' || r == ',' || r > '~' })) {
		e.bad("OAUTH_CLIENT_ID must be an OAuth client id (visible ASCII, no commas, at most 256 characters)")
	}
	c.ClientSecretRef, c.ClientSecretIsFile = pickSecret(e, "OAUTH_CLIENT_SECRET", "OAUTH_CLIENT_SECRET_FILE", c.ClientID == "")
	c.KeysRef, c.KeysIsFile = pickSecret(e, "APP_KEYS_SECRET", "APP_KEYS_FILE", true)
	needsProject := func(ref string, isFile bool) bool {
		return !isFile && ref != "" && !strings.HasPrefix(ref, "projects/")
	}
	if c.Project == "" && (needsProject(c.ClientSecretRef, c.ClientSecretIsFile) || needsProject(c.KeysRef, c.KeysIsFile)) {
		e.bad("GOOGLE_CLOUD_PROJECT is required to read secrets from Secret Manager")
	}
}

// loadOAuth reads the callback URL, the CORS origins and the scopes.
func loadOAuth(e *env, c *Config) {
	c.RedirectURL = e.get("OAUTH_REDIRECT_URL")
	if c.RedirectURL == "" {
		e.bad("OAUTH_REDIRECT_URL is required (the OAuthCallback URL registered in the OAuth client)")
	} else if err := weburl.CheckEndpoint(c.RedirectURL); err != nil {
		e.bad("OAUTH_REDIRECT_URL %v", err)
	}
	c.AllowedReturnOrigins = returnOrigins(e)
	c.Scopes = splitList(strings.ReplaceAll(e.get("OAUTH_SCOPES"), " ", ","))
	if len(c.Scopes) == 0 {
		c.Scopes = append([]string(nil), DefaultScopes...)
	}
	if !slices.Contains(c.Scopes, "openid") {
		e.bad("OAUTH_SCOPES must include openid (the callback identifies users by the ID token)")
	}
}

// returnOrigins reads ALLOWED_RETURN_ORIGINS: the valid origins,
// normalised; each invalid one is a problem.
func returnOrigins(e *env) []string {
	var out []string
	for _, o := range splitList(e.get("ALLOWED_RETURN_ORIGINS")) {
		n, err := weburl.NormalizeOrigin(o)
		if err != nil {
			e.bad("ALLOWED_RETURN_ORIGINS: %v", err)
			continue
		}
		if u, _ := url.Parse(n); u.Scheme == "http" && !weburl.IsLoopback(u.Hostname()) {
			e.bad("ALLOWED_RETURN_ORIGINS: origin %q must use https (http only for localhost)", o)
			continue
		}
		out = append(out, n)
	}
	return out
}

// ReturnOrigins returns the valid origins of ALLOWED_RETURN_ORIGINS, whatever
// else is wrong with the configuration (Load reports that). An instance that
// cannot serve still answers these origins with CORS headers, so their pages
// can show the real error instead of a network failure.
func ReturnOrigins(getenv func(string) string) []string {
	return returnOrigins(&env{getenv: getenv})
}

// loadReturnURLs reads where the callback may send the browser with a
// session: exact URLs or "/*" path prefixes, never a bare origin.
func loadReturnURLs(e *env, c *Config) {
	for _, raw := range splitList(e.get("ALLOWED_RETURN_URLS")) {
		r, err := weburl.ParseReturnURL(raw)
		if err != nil {
			e.bad("ALLOWED_RETURN_URLS: %v", err)
			continue
		}
		c.AllowedReturnURLs = append(c.AllowedReturnURLs, r)
	}
}

// loadScheduler reads who may run a sweep.
func loadScheduler(e *env, c *Config) {
	c.SchedulerServiceAccount = e.get("SCHEDULER_SERVICE_ACCOUNT")
	c.SchedulerAudience = e.get("SCHEDULER_AUDIENCE")
	if (c.SchedulerServiceAccount == "") != (c.SchedulerAudience == "") {
		e.bad("SCHEDULER_SERVICE_ACCOUNT and SCHEDULER_AUDIENCE are set together or not at all")
	}
	if c.SchedulerAudience != "" {
		if err := weburl.CheckEndpoint(c.SchedulerAudience); err != nil {
			e.bad("SCHEDULER_AUDIENCE %v", err)
		}
	}
	if c.SchedulerServiceAccount != "" && !strings.Contains(c.SchedulerServiceAccount, "@") {
		e.bad("SCHEDULER_SERVICE_ACCOUNT must be a service account email, got %q", c.SchedulerServiceAccount)
	}
}

// loadSync reads what a first sync lists and how a sweep runs.
func loadSync(e *env, c *Config) {
	c.SyncQuery = e.get("SYNC_QUERY")
	if c.SyncQuery == "" {
		c.SyncQuery = "newer_than:30d"
	}
	if !DateOnlyQuery(c.SyncQuery) {
		e.bad("SYNC_QUERY must select messages by date only (newer_than:30d, after:2026/01/31 or after:<Unix seconds>), got %q: the frontend's listings are answered from what it selects", c.SyncQuery)
	}
	c.SyncConcurrency = e.integer("SYNC_CONCURRENCY", 8, 1, 256, "a whole number from 1 to 256")
	c.SyncDeadline = 8 * time.Minute
	if v := e.get("SYNC_DEADLINE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			e.bad("SYNC_DEADLINE must be a positive Go duration such as 8m, got %q", v)
		}
		c.SyncDeadline = d
	}
}

// dateTerm is one term of a date-only Gmail query: a lower bound on the
// date, relative (newer_than:N d/m/y) or absolute (after: or newer: a date
// or Unix seconds).
var dateTerm = regexp.MustCompile(`^(newer_than:[0-9]{1,5}[dmy]|(after|newer):([0-9]{1,12}|[0-9]{4}/[0-9]{1,2}/[0-9]{1,2}))$`)

// DateOnlyQuery reports whether q selects messages by a lower bound on
// their date and nothing else, so that what a full sync lists is every
// message newer than the oldest one listed: what the mirror must hold.
func DateOnlyQuery(q string) bool {
	terms := strings.Fields(q)
	for _, t := range terms {
		if !dateTerm.MatchString(t) {
			return false
		}
	}
	return len(terms) > 0
}

// loadQuota reads the Gmail limits the functions keep to. The defaults are
// Google's for projects created since 2026-05-01; a project still on the
// older limits sets GMAIL_QUOTA_USER_PER_MIN=15000.
func loadQuota(e *env, c *Config) {
	const units = "a whole number of quota units per minute from 10 to 1000000000"
	c.GmailQuotaUserPerMin = e.integer("GMAIL_QUOTA_USER_PER_MIN", gmail.DefaultUserUnitsPerMinute, 10, 1_000_000_000, units)
	c.GmailQuotaProjectPerMin = e.integer("GMAIL_QUOTA_PROJECT_PER_MIN", gmail.DefaultProjectUnitsPerMinute, 10, 1_000_000_000, units)
	c.GmailQuotaProjectPerDay = int64(e.integer("GMAIL_QUOTA_PROJECT_PER_DAY", gmail.DefaultProjectUnitsPerDay, 1000,
		1_000_000_000_000, "a whole number of quota units per day from 1000 to 1000000000000"))
}

// loadTimeouts reads the request and outbound deadlines and the sessions'
// lifetime.
func loadTimeouts(e *env, c *Config) {
	c.RequestTimeout = e.duration("REQUEST_TIMEOUT", 30*time.Second, 100*time.Millisecond, 10*time.Minute)
	c.OutboundTimeout = e.duration("OUTBOUND_TIMEOUT", 10*time.Second, 100*time.Millisecond, 10*time.Minute)
	c.SessionTTL = e.duration("SESSION_TTL", time.Hour, time.Minute, 24*time.Hour)
}

// loadStore reads which store holds the state.
func loadStore(e *env, c *Config) {
	c.Store = strings.ToLower(e.get("STORE"))
	switch c.Store {
	case "":
		c.Store = StoreMemory
		if c.Project != "" {
			c.Store = StoreFirestore
		}
	case StoreMemory:
	case StoreFirestore:
		if c.Project == "" {
			e.bad("STORE=firestore needs GOOGLE_CLOUD_PROJECT")
		}
	default:
		e.bad("STORE must be %q or %q, got %q", StoreFirestore, StoreMemory, c.Store)
	}
}

// loadPlatform reads what the platform tells about itself: Cloud Run sets
// K_SERVICE (its container contract) in every instance of a service, which
// is what a Cloud Function (2nd gen) runs as.
func loadPlatform(e *env, c *Config) {
	c.ClientAddrFromForwardedFor = e.get("K_SERVICE") != ""
}

// loadEndpoints reads the overrides of Google's endpoints.
func loadEndpoints(e *env, c *Config) {
	c.AuthURL = e.endpoint("GOOGLE_AUTH_URL", DefaultAuthURL)
	c.TokenURL = e.endpoint("GOOGLE_TOKEN_URL", DefaultTokenURL)
	c.RevokeURL = e.endpoint("GOOGLE_REVOKE_URL", DefaultRevokeURL)
	c.Issuer = e.endpoint("GOOGLE_ISSUER", DefaultIssuer)
	c.GmailAPIURL = e.endpoint("GMAIL_API_URL", DefaultGmailURL)
	if !strings.HasSuffix(c.GmailAPIURL, "/") {
		c.GmailAPIURL += "/"
	}
}

// loadPush reads the push notification and events topics and the watch
// lifecycle.
func loadPush(e *env, c *Config) {
	p := &c.Push
	for _, t := range []struct {
		key string
		dst *string
	}{{"PUSH_TOPIC", &p.Topic}, {"EVENTS_TOPIC", &p.EventsTopic}} {
		*t.dst = e.get(t.key)
		if *t.dst == "" {
			continue
		}
		if _, _, err := pubsub.ParseTopic(*t.dst); err != nil {
			e.bad("%s must be a Pub/Sub topic name projects/PROJECT/topics/TOPIC, got %q", t.key, *t.dst)
		}
	}
	if p.Topic != "" && p.Topic == p.EventsTopic {
		e.bad("PUSH_TOPIC and EVENTS_TOPIC must be different topics (Gmail's notifications are not the app's events)")
	}
	p.WatchRenewal = e.duration("PUSH_WATCH_RENEWAL", 24*time.Hour, time.Hour, 6*24*time.Hour)
	p.ResyncAfter = e.duration("PUSH_RESYNC_AFTER", 6*time.Hour, 10*time.Minute, 7*24*time.Hour)
	p.EmulatorHost = e.get("PUBSUB_EMULATOR_HOST")
}

// integer reads a whole number in [lo, hi], def when unset.
func (e *env) integer(key string, def, lo, hi int, want string) int {
	v := e.get(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		e.bad("%s must be %s, got %q", key, want, v)
	}
	return n
}

// duration reads a Go duration in [lo, hi], def when unset.
func (e *env) duration(key string, def, lo, hi time.Duration) time.Duration {
	v := e.get(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < lo || d > hi {
		e.bad("%s must be a Go duration from %s to %s, got %q", key, short(lo), short(hi), v)
	}
	return d
}

// endpoint reads an absolute URL, def when unset.
func (e *env) endpoint(key, def string) string {
	v := e.get(key)
	if v == "" {
		return def
	}
	if err := weburl.CheckEndpoint(v); err != nil {
		e.bad("%s %v", key, err)
	}
	return v
}

// short prints durations as the messages always did: 10m0s as 10m, 24h0m0s
// as 24h, 1m0s as 1m.
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// pickSecret takes exactly one of a Secret Manager reference and a file,
// or neither when the secret is not required.
func pickSecret(e *env, smKey, fileKey string, required bool) (string, bool) {
	sm, file := e.get(smKey), e.get(fileKey)
	switch {
	case sm != "" && file != "":
		e.bad("set %s or %s, not both", smKey, fileKey)
	case file != "":
		return file, true
	case sm != "":
		if !strings.HasPrefix(sm, "projects/") || !strings.Contains(sm, "/secrets/") || !strings.Contains(sm, "/versions/") {
			e.bad("%s must be a Secret Manager version name projects/P/secrets/S/versions/V, got %q", smKey, sm)
		}
		return sm, false
	case required:
		e.bad("%s (or %s for a local file) is required", smKey, fileKey)
	}
	return "", false
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
