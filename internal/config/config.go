// Package config parses and validates the functions' configuration from
// environment variables in one place, reporting every problem at once.
package config

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Google's endpoints, the defaults of the endpoint overrides.
const (
	DefaultAuthURL   = "https://accounts.google.com/o/oauth2/v2/auth"
	DefaultTokenURL  = "https://oauth2.googleapis.com/token"
	DefaultRevokeURL = "https://oauth2.googleapis.com/revoke"
	DefaultIssuer    = "https://accounts.google.com"
	DefaultGmailURL  = "https://gmail.googleapis.com/"
)

// GmailReadonlyScope is the scope ListMessages needs.
const GmailReadonlyScope = "https://www.googleapis.com/auth/gmail.readonly"

// DefaultScopes are requested when OAUTH_SCOPES is not set.
var DefaultScopes = []string{"openid", "email", GmailReadonlyScope}

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
	// KeysRef is the app keyset's Secret Manager version name, or a file path
	// when KeysIsFile is set (APP_KEYS_SECRET / APP_KEYS_FILE).
	KeysRef    string
	KeysIsFile bool

	RedirectURL          string   // OAUTH_REDIRECT_URL
	AllowedReturnOrigins []string // ALLOWED_RETURN_ORIGINS, normalised scheme://host[:port]
	Scopes               []string // OAUTH_SCOPES (space or comma separated)

	SchedulerServiceAccount string // SCHEDULER_SERVICE_ACCOUNT
	SchedulerAudience       string // SCHEDULER_AUDIENCE

	SyncQuery       string        // SYNC_QUERY
	SyncConcurrency int           // SYNC_CONCURRENCY
	SyncDeadline    time.Duration // SYNC_DEADLINE

	// Gmail quota buckets of the sync, in quota units per minute.
	GmailQuotaUserPerMin    int // GMAIL_QUOTA_USER_PER_MIN (default 15000)
	GmailQuotaProjectPerMin int // GMAIL_QUOTA_PROJECT_PER_MIN (default 1200000)

	Store string // STORE: memory or firestore
	Port  string // PORT

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
}

// Error lists every problem found in a configuration.
type Error struct {
	Problems []string
}

func (e *Error) Error() string {
	return "invalid configuration: " + strings.Join(e.Problems, "; ")
}

// Load reads the configuration through getenv (os.Getenv in production) and
// validates it. A non-nil error is always a *Error listing all problems.
func Load(getenv func(string) string) (*Config, error) {
	var p []string
	bad := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }

	c := &Config{
		Project:                 get("GOOGLE_CLOUD_PROJECT"),
		SchedulerServiceAccount: get("SCHEDULER_SERVICE_ACCOUNT"),
		SchedulerAudience:       get("SCHEDULER_AUDIENCE"),
		SyncQuery:               get("SYNC_QUERY"),
		Port:                    get("PORT"),
	}
	if c.SyncQuery == "" {
		c.SyncQuery = "newer_than:30d"
	}
	if c.Port == "" {
		c.Port = "8080"
	} else if n, err := strconv.Atoi(c.Port); err != nil || n < 1 || n > 65535 {
		bad("PORT must be a port number, got %q", c.Port)
	}

	c.ClientSecretRef, c.ClientSecretIsFile = pickSecret(get, "OAUTH_CLIENT_SECRET", "OAUTH_CLIENT_SECRET_FILE", bad)
	c.KeysRef, c.KeysIsFile = pickSecret(get, "APP_KEYS_SECRET", "APP_KEYS_FILE", bad)
	needsProject := func(ref string, isFile bool) bool {
		return !isFile && ref != "" && !strings.HasPrefix(ref, "projects/")
	}
	if c.Project == "" && (needsProject(c.ClientSecretRef, c.ClientSecretIsFile) || needsProject(c.KeysRef, c.KeysIsFile)) {
		bad("GOOGLE_CLOUD_PROJECT is required to read secrets from Secret Manager")
	}

	c.RedirectURL = get("OAUTH_REDIRECT_URL")
	if c.RedirectURL == "" {
		bad("OAUTH_REDIRECT_URL is required (the OAuthCallback URL registered in the OAuth client)")
	} else if err := checkEndpoint(c.RedirectURL); err != nil {
		bad("OAUTH_REDIRECT_URL %v", err)
	}

	for _, o := range splitList(get("ALLOWED_RETURN_ORIGINS")) {
		n, err := NormalizeOrigin(o)
		if err != nil {
			bad("ALLOWED_RETURN_ORIGINS: %v", err)
			continue
		}
		if u, _ := url.Parse(n); u.Scheme == "http" && !isLoopback(u.Hostname()) {
			bad("ALLOWED_RETURN_ORIGINS: origin %q must use https (http only for localhost)", o)
			continue
		}
		c.AllowedReturnOrigins = append(c.AllowedReturnOrigins, n)
	}

	c.Scopes = splitList(strings.ReplaceAll(get("OAUTH_SCOPES"), " ", ","))
	if len(c.Scopes) == 0 {
		c.Scopes = append([]string(nil), DefaultScopes...)
	}
	if !slices.Contains(c.Scopes, "openid") {
		bad("OAUTH_SCOPES must include openid (the callback identifies users by the ID token)")
	}

	if (c.SchedulerServiceAccount == "") != (c.SchedulerAudience == "") {
		bad("SCHEDULER_SERVICE_ACCOUNT and SCHEDULER_AUDIENCE are set together or not at all")
	}
	if c.SchedulerAudience != "" {
		if err := checkEndpoint(c.SchedulerAudience); err != nil {
			bad("SCHEDULER_AUDIENCE %v", err)
		}
	}
	if c.SchedulerServiceAccount != "" && !strings.Contains(c.SchedulerServiceAccount, "@") {
		bad("SCHEDULER_SERVICE_ACCOUNT must be a service account email, got %q", c.SchedulerServiceAccount)
	}

	c.SyncConcurrency = 8
	if v := get("SYNC_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 256 {
			bad("SYNC_CONCURRENCY must be a whole number from 1 to 256, got %q", v)
		}
		c.SyncConcurrency = n
	}
	c.SyncDeadline = 8 * time.Minute
	if v := get("SYNC_DEADLINE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			bad("SYNC_DEADLINE must be a positive Go duration such as 8m, got %q", v)
		}
		c.SyncDeadline = d
	}
	quota := func(key string, def int, dst *int) {
		*dst = def
		if v := get(key); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 10 || n > 1_000_000_000 {
				bad("%s must be a whole number of quota units per minute from 10 to 1000000000, got %q", key, v)
			}
			*dst = n
		}
	}
	quota("GMAIL_QUOTA_USER_PER_MIN", 15_000, &c.GmailQuotaUserPerMin)
	quota("GMAIL_QUOTA_PROJECT_PER_MIN", 1_200_000, &c.GmailQuotaProjectPerMin)
	timeout := func(key string, def time.Duration, dst *time.Duration) {
		*dst = def
		if v := get(key); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 100*time.Millisecond || d > 10*time.Minute {
				bad("%s must be a Go duration from 100ms to 10m, got %q", key, v)
			}
			*dst = d
		}
	}
	timeout("REQUEST_TIMEOUT", 30*time.Second, &c.RequestTimeout)
	timeout("OUTBOUND_TIMEOUT", 10*time.Second, &c.OutboundTimeout)
	c.SessionTTL = time.Hour
	if v := get("SESSION_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute || d > 24*time.Hour {
			bad("SESSION_TTL must be a Go duration from 1m to 24h, got %q", v)
		}
		c.SessionTTL = d
	}

	c.Store = strings.ToLower(get("STORE"))
	switch c.Store {
	case "":
		c.Store = StoreMemory
		if c.Project != "" {
			c.Store = StoreFirestore
		}
	case StoreMemory:
	case StoreFirestore:
		if c.Project == "" {
			bad("STORE=firestore needs GOOGLE_CLOUD_PROJECT")
		}
	default:
		bad("STORE must be %q or %q, got %q", StoreFirestore, StoreMemory, c.Store)
	}

	endpoint := func(key, def string, dst *string) {
		*dst = get(key)
		if *dst == "" {
			*dst = def
			return
		}
		if err := checkEndpoint(*dst); err != nil {
			bad("%s %v", key, err)
		}
	}
	endpoint("GOOGLE_AUTH_URL", DefaultAuthURL, &c.AuthURL)
	endpoint("GOOGLE_TOKEN_URL", DefaultTokenURL, &c.TokenURL)
	endpoint("GOOGLE_REVOKE_URL", DefaultRevokeURL, &c.RevokeURL)
	endpoint("GOOGLE_ISSUER", DefaultIssuer, &c.Issuer)
	endpoint("GMAIL_API_URL", DefaultGmailURL, &c.GmailAPIURL)
	if !strings.HasSuffix(c.GmailAPIURL, "/") {
		c.GmailAPIURL += "/"
	}

	if len(p) > 0 {
		return nil, &Error{Problems: p}
	}
	return c, nil
}

// pickSecret takes exactly one of a Secret Manager reference and a file.
func pickSecret(get func(string) string, smKey, fileKey string, bad func(string, ...any)) (string, bool) {
	sm, file := get(smKey), get(fileKey)
	switch {
	case sm != "" && file != "":
		bad("set %s or %s, not both", smKey, fileKey)
	case file != "":
		return file, true
	case sm != "":
		if !strings.HasPrefix(sm, "projects/") || !strings.Contains(sm, "/secrets/") || !strings.Contains(sm, "/versions/") {
			bad("%s must be a Secret Manager version name projects/P/secrets/S/versions/V, got %q", smKey, sm)
		}
		return sm, false
	default:
		bad("%s (or %s for a local file) is required", smKey, fileKey)
	}
	return "", false
}

// checkEndpoint accepts absolute https URLs, and http only for loopback hosts
// (local runs and tests).
func checkEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("must be an absolute URL, got %q", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("must use https (http only for localhost), got %q", raw)
	}
	return fmt.Errorf("must be an http(s) URL, got %q", raw)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// NormalizeOrigin returns the origin scheme://host[:port] of raw, lower-cased,
// with default ports removed. It refuses anything that is not a bare http(s)
// origin (paths other than "/", queries, fragments, credentials).
func NormalizeOrigin(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("origin %q does not parse", raw)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("origin %q must be scheme://host[:port]", raw)
	}
	return Origin(u), nil
}

// Origin returns u's origin, lower-cased, without a default port.
func Origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		return scheme + "://" + host + ":" + port
	}
	return scheme + "://" + host
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
