package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"example.com/gmailoauth/internal/config"
	"example.com/gmailoauth/internal/gmail"
	"example.com/gmailoauth/internal/weburl"
)

// env returns a getenv func backed by m; unset keys read as "".
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// minimal returns the smallest valid environment, as a fresh map the caller
// may change.
func minimal() map[string]string {
	return map[string]string{
		"OAUTH_CLIENT_SECRET_FILE": "/secrets/client.json",
		"APP_KEYS_FILE":            "/secrets/keys.json",
		"OAUTH_REDIRECT_URL":       "https://fn.example.com/callback",
	}
}

// problems returns the problem list of a *config.Error, failing the test when
// err is not one.
func problems(t *testing.T, err error) []string {
	t.Helper()
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("got error %T %v, want *config.Error", err, err)
	}
	return ce.Problems
}

func TestLoadDefaults(t *testing.T) {
	got, err := config.Load(env(minimal()))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := &config.Config{
		ClientSecretRef:         "/secrets/client.json",
		ClientSecretIsFile:      true,
		KeysRef:                 "/secrets/keys.json",
		KeysIsFile:              true,
		RedirectURL:             "https://fn.example.com/callback",
		Scopes:                  []string{"openid", "email", gmail.ScopeReadonly},
		SyncQuery:               "newer_than:30d",
		SyncConcurrency:         8,
		SyncDeadline:            8 * time.Minute,
		GmailQuotaUserPerMin:    6000,
		GmailQuotaProjectPerMin: 1200000,
		GmailQuotaProjectPerDay: 80_000_000,
		Store:                   config.StoreMemory,
		SessionTTL:              time.Hour,
		RequestTimeout:          30 * time.Second,
		OutboundTimeout:         10 * time.Second,
		AuthURL:                 config.DefaultAuthURL,
		TokenURL:                config.DefaultTokenURL,
		RevokeURL:               config.DefaultRevokeURL,
		Issuer:                  config.DefaultIssuer,
		GmailAPIURL:             config.DefaultGmailURL,
		Push:                    pushDefaults,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load mismatch (-want +got):\n%s", diff)
	}
	// DefaultScopes must not be aliased by the result.
	got.Scopes[0] = "changed"
	if config.DefaultScopes[0] != "openid" {
		t.Errorf("DefaultScopes[0] = %q after changing a Config, want openid", config.DefaultScopes[0])
	}
}

func TestLoadEveryVariable(t *testing.T) {
	m := map[string]string{
		"GOOGLE_CLOUD_PROJECT":        " proj-1 ",
		"OAUTH_CLIENT_SECRET":         "projects/proj-1/secrets/client/versions/3",
		"APP_KEYS_SECRET":             "projects/proj-1/secrets/keys/versions/latest",
		"OAUTH_REDIRECT_URL":          "https://europe-west1-proj-1.cloudfunctions.net/OAuthCallback",
		"ALLOWED_RETURN_ORIGINS":      "https://App.Example.com:443/, http://localhost:3000 ,https://[::1]:8443",
		"ALLOWED_RETURN_URLS":         "https://App.Example.com:443/oauth/done?tab=1, http://localhost:3000/app/*",
		"OAUTH_CLIENT_ID":             "123-abc.apps.googleusercontent.com",
		"OAUTH_SCOPES":                "openid email https://www.googleapis.com/auth/gmail.readonly",
		"SCHEDULER_SERVICE_ACCOUNT":   "sched@proj-1.iam.gserviceaccount.com",
		"SCHEDULER_AUDIENCE":          "https://europe-west1-proj-1.cloudfunctions.net/ListMessages",
		"SYNC_QUERY":                  "newer_than:7d",
		"SYNC_CONCURRENCY":            "16",
		"SYNC_DEADLINE":               "5m30s",
		"GMAIL_QUOTA_USER_PER_MIN":    "250",
		"GMAIL_QUOTA_PROJECT_PER_MIN": "600000",
		"GMAIL_QUOTA_PROJECT_PER_DAY": "1000000",
		"STORE":                       "FIRESTORE",
		"PORT":                        "9090",
		"SESSION_TTL":                 "30m",
		"REQUEST_TIMEOUT":             "45s",
		"OUTBOUND_TIMEOUT":            "2s",
		"GOOGLE_AUTH_URL":             "http://127.0.0.1:9000/auth",
		"GOOGLE_TOKEN_URL":            "http://localhost:9000/token",
		"GOOGLE_REVOKE_URL":           "http://[::1]:9000/revoke",
		"GOOGLE_ISSUER":               "https://issuer.example.com",
		"GMAIL_API_URL":               "http://127.0.0.1:9000",
	}
	got, err := config.Load(env(m))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := &config.Config{
		Project:              "proj-1",
		ClientSecretRef:      "projects/proj-1/secrets/client/versions/3",
		KeysRef:              "projects/proj-1/secrets/keys/versions/latest",
		RedirectURL:          "https://europe-west1-proj-1.cloudfunctions.net/OAuthCallback",
		AllowedReturnOrigins: []string{"https://app.example.com", "http://localhost:3000", "https://[::1]:8443"},
		AllowedReturnURLs: []weburl.ReturnURL{
			{Origin: "https://app.example.com", Path: "/oauth/done", Query: "?tab=1"},
			{Origin: "http://localhost:3000", Path: "/app/", Prefix: true},
		},
		ClientID:                "123-abc.apps.googleusercontent.com",
		Scopes:                  []string{"openid", "email", gmail.ScopeReadonly},
		SchedulerServiceAccount: "sched@proj-1.iam.gserviceaccount.com",
		SchedulerAudience:       "https://europe-west1-proj-1.cloudfunctions.net/ListMessages",
		SyncQuery:               "newer_than:7d",
		SyncConcurrency:         16,
		SyncDeadline:            5*time.Minute + 30*time.Second,
		GmailQuotaUserPerMin:    250,
		GmailQuotaProjectPerMin: 600000,
		GmailQuotaProjectPerDay: 1_000_000,
		Store:                   config.StoreFirestore,
		SessionTTL:              30 * time.Minute,
		RequestTimeout:          45 * time.Second,
		OutboundTimeout:         2 * time.Second,
		AuthURL:                 "http://127.0.0.1:9000/auth",
		TokenURL:                "http://localhost:9000/token",
		RevokeURL:               "http://[::1]:9000/revoke",
		Issuer:                  "https://issuer.example.com",
		GmailAPIURL:             "http://127.0.0.1:9000/",
		Push:                    pushDefaults,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load mismatch (-want +got):\n%s", diff)
	}
}

func TestLoadStoreDefault(t *testing.T) {
	tests := []struct {
		name, project, store, want string
	}{
		{"no project means memory", "", "", config.StoreMemory},
		{"project means firestore", "p", "", config.StoreFirestore},
		{"explicit memory with project", "p", "memory", config.StoreMemory},
		{"explicit firestore", "p", "firestore", config.StoreFirestore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := minimal()
			m["GOOGLE_CLOUD_PROJECT"] = tt.project
			m["STORE"] = tt.store
			c, err := config.Load(env(m))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.Store != tt.want {
				t.Errorf("Store: got %q, want %q", c.Store, tt.want)
			}
		})
	}
}

func TestLoadEmptyEnvListsEveryProblem(t *testing.T) {
	_, err := config.Load(env(nil))
	got := problems(t, err)
	want := []string{
		"OAUTH_CLIENT_SECRET (or OAUTH_CLIENT_SECRET_FILE for a local file) is required",
		"APP_KEYS_SECRET (or APP_KEYS_FILE for a local file) is required",
		"OAUTH_REDIRECT_URL is required (the OAuthCallback URL registered in the OAuth client)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems mismatch (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(err.Error(), "invalid configuration: ") {
		t.Errorf("Error() = %q, want the invalid configuration prefix", err.Error())
	}
}

func TestLoadBadEnvListsEveryProblem(t *testing.T) {
	m := map[string]string{
		"OAUTH_CLIENT_SECRET":         "client-secret-name",
		"APP_KEYS_SECRET":             "projects/p/secrets/k/versions/1",
		"APP_KEYS_FILE":               "/keys.json",
		"OAUTH_REDIRECT_URL":          "http://fn.example.com/callback",
		"ALLOWED_RETURN_ORIGINS":      "https://app.example.com/path,ftp://x.example.com,http://app.example.com",
		"ALLOWED_RETURN_URLS":         "http://app.example.com/done,https://app.example.com/done#,https://u:p@app.example.com/,https://app.example.com/app*,https://app.example.com/a/../b",
		"OAUTH_CLIENT_ID":             "two ids",
		"OAUTH_SCOPES":                "email",
		"SCHEDULER_SERVICE_ACCOUNT":   "not-an-email",
		"SYNC_CONCURRENCY":            "0",
		"SYNC_DEADLINE":               "-5m",
		"GMAIL_QUOTA_USER_PER_MIN":    "9",
		"GMAIL_QUOTA_PROJECT_PER_MIN": "lots",
		"GMAIL_QUOTA_PROJECT_PER_DAY": "-1",
		"SESSION_TTL":                 "48h",
		"REQUEST_TIMEOUT":             "1h",
		"OUTBOUND_TIMEOUT":            "10",
		"STORE":                       "redis",
		"PORT":                        "70000",
		"GOOGLE_AUTH_URL":             "https://user:pw@accounts.example.com/auth",
		"GOOGLE_TOKEN_URL":            "http://oauth2.example.com/token",
		"GOOGLE_REVOKE_URL":           "ftp://revoke.example.com",
		"GOOGLE_ISSUER":               "/relative",
		"GMAIL_API_URL":               "https://gmail.example.com/#frag",
	}
	_, err := config.Load(env(m))
	got := problems(t, err)
	want := []string{
		"OAUTH_CLIENT_ID must be an OAuth client id (visible ASCII, no commas, at most 256 characters)",
		`OAUTH_CLIENT_SECRET must be a Secret Manager version name projects/P/secrets/S/versions/V, got "client-secret-name"`,
		"set APP_KEYS_SECRET or APP_KEYS_FILE, not both",
		"GOOGLE_CLOUD_PROJECT is required to read secrets from Secret Manager",
		`OAUTH_REDIRECT_URL must use https (http only for localhost), got "http://fn.example.com/callback"`,
		`ALLOWED_RETURN_ORIGINS: origin "https://app.example.com/path" must be scheme://host[:port]`,
		`ALLOWED_RETURN_ORIGINS: origin "ftp://x.example.com" must be scheme://host[:port]`,
		`ALLOWED_RETURN_ORIGINS: origin "http://app.example.com" must use https (http only for localhost)`,
		"OAUTH_SCOPES must include openid (the callback identifies users by the ID token)",
		`ALLOWED_RETURN_URLS: return URL "http://app.example.com/done" must use https (http only for localhost)`,
		`ALLOWED_RETURN_URLS: return URL "https://app.example.com/done#" must not contain spaces, backslashes, control characters or a fragment (#)`,
		`ALLOWED_RETURN_URLS: return URL "https://u:p@app.example.com/" must not carry credentials`,
		`ALLOWED_RETURN_URLS: return URL "https://app.example.com/app*": a prefix ends in /* and has no query`,
		`ALLOWED_RETURN_URLS: return URL "https://app.example.com/a/../b" must not contain . or .. segments in its path`,
		"SCHEDULER_SERVICE_ACCOUNT and SCHEDULER_AUDIENCE are set together or not at all",
		`SCHEDULER_SERVICE_ACCOUNT must be a service account email, got "not-an-email"`,
		`SYNC_CONCURRENCY must be a whole number from 1 to 256, got "0"`,
		`SYNC_DEADLINE must be a positive Go duration such as 8m, got "-5m"`,
		`GMAIL_QUOTA_USER_PER_MIN must be a whole number of quota units per minute from 10 to 1000000000, got "9"`,
		`GMAIL_QUOTA_PROJECT_PER_MIN must be a whole number of quota units per minute from 10 to 1000000000, got "lots"`,
		`GMAIL_QUOTA_PROJECT_PER_DAY must be a whole number of quota units per day from 1000 to 1000000000000, got "-1"`,
		`REQUEST_TIMEOUT must be a Go duration from 100ms to 10m, got "1h"`,
		`OUTBOUND_TIMEOUT must be a Go duration from 100ms to 10m, got "10"`,
		`SESSION_TTL must be a Go duration from 1m to 24h, got "48h"`,
		`STORE must be "firestore" or "memory", got "redis"`,
		`GOOGLE_AUTH_URL must be an absolute URL, got "https://user:pw@accounts.example.com/auth"`,
		`GOOGLE_TOKEN_URL must use https (http only for localhost), got "http://oauth2.example.com/token"`,
		`GOOGLE_REVOKE_URL must be an http(s) URL, got "ftp://revoke.example.com"`,
		`GOOGLE_ISSUER must be an absolute URL, got "/relative"`,
		`GMAIL_API_URL must be an absolute URL, got "https://gmail.example.com/#frag"`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems mismatch (-want +got):\n%s", diff)
	}
}

func TestLoadSingleProblems(t *testing.T) {
	tests := []struct {
		name string
		set  map[string]string
		want []string // nil: valid
	}{
		{"store firestore without project", map[string]string{"STORE": "firestore"},
			[]string{"STORE=firestore needs GOOGLE_CLOUD_PROJECT"}},
		{"scheduler audience alone", map[string]string{"SCHEDULER_AUDIENCE": "https://fn.example.com/list"},
			[]string{"SCHEDULER_SERVICE_ACCOUNT and SCHEDULER_AUDIENCE are set together or not at all"}},
		{"scheduler audience http", map[string]string{"SCHEDULER_SERVICE_ACCOUNT": "s@p.iam.gserviceaccount.com", "SCHEDULER_AUDIENCE": "http://fn.example.com/list"},
			[]string{`SCHEDULER_AUDIENCE must use https (http only for localhost), got "http://fn.example.com/list"`}},
		// PORT is the local runner's, and Cloud Run's; the functions never
		// read it, so no value of it can make them answer 500.
		{"port is not the functions'", map[string]string{"PORT": "http"}, nil},
		{"concurrency too big", map[string]string{"SYNC_CONCURRENCY": "257"},
			[]string{`SYNC_CONCURRENCY must be a whole number from 1 to 256, got "257"`}},
		{"sync query by date", map[string]string{"SYNC_QUERY": "newer_than:2y after:2024/1/31"}, nil},
		{"sync query in seconds", map[string]string{"SYNC_QUERY": " after:1767225600 "}, nil},
		{"sync query by label", map[string]string{"SYNC_QUERY": "newer_than:30d in:inbox"},
			[]string{`SYNC_QUERY must select messages by date only (newer_than:30d, after:2026/01/31 or after:<Unix seconds>), got "newer_than:30d in:inbox": the frontend's listings are answered from what it selects`}},
		{"sync query upper bound", map[string]string{"SYNC_QUERY": "older_than:1y"},
			[]string{`SYNC_QUERY must select messages by date only (newer_than:30d, after:2026/01/31 or after:<Unix seconds>), got "older_than:1y": the frontend's listings are answered from what it selects`}},
		{"deadline not a duration", map[string]string{"SYNC_DEADLINE": "8"},
			[]string{`SYNC_DEADLINE must be a positive Go duration such as 8m, got "8"`}},
		{"session ttl too short", map[string]string{"SESSION_TTL": "30s"},
			[]string{`SESSION_TTL must be a Go duration from 1m to 24h, got "30s"`}},
		{"both client secrets", map[string]string{"OAUTH_CLIENT_SECRET": "projects/p/secrets/c/versions/1"},
			[]string{"set OAUTH_CLIENT_SECRET or OAUTH_CLIENT_SECRET_FILE, not both"}},
		{"scopes by comma", map[string]string{"OAUTH_SCOPES": "openid,email"}, nil},
		// A file client secret with a full Secret Manager name for the keys
		// needs no project: the name carries it.
		{"file secret and SM keys without project", map[string]string{"APP_KEYS_FILE": "", "APP_KEYS_SECRET": "projects/p/secrets/k/versions/1"}, nil},
		{"endpoint without host name", map[string]string{"GOOGLE_TOKEN_URL": "https://:443/token"},
			[]string{`GOOGLE_TOKEN_URL must be an absolute URL, got "https://:443/token"`}},
		{"https origin", map[string]string{"ALLOWED_RETURN_ORIGINS": "https://app.example.com"}, nil},
		{"http loopback origins", map[string]string{"ALLOWED_RETURN_ORIGINS": "http://localhost:3000,http://127.0.0.1:5173,http://[::1]"}, nil},
		{"origin with query", map[string]string{"ALLOWED_RETURN_ORIGINS": "https://app.example.com?x=1"},
			[]string{`ALLOWED_RETURN_ORIGINS: origin "https://app.example.com?x=1" must be scheme://host[:port]`}},
		{"return URLs on loopback over http", map[string]string{"ALLOWED_RETURN_URLS": "http://localhost:3000/,http://127.0.0.1:5173/app/*"}, nil},
		{"return URL prefix with a query", map[string]string{"ALLOWED_RETURN_URLS": "https://app.example.com/app/?x=1*"},
			[]string{`ALLOWED_RETURN_URLS: return URL "https://app.example.com/app/?x=1*": a prefix ends in /* and has no query`}},
		{"client id without the client JSON", map[string]string{"OAUTH_CLIENT_SECRET_FILE": "", "OAUTH_CLIENT_ID": "123.apps.googleusercontent.com"}, nil},
		{"neither client id nor client JSON", map[string]string{"OAUTH_CLIENT_SECRET_FILE": ""},
			[]string{"OAUTH_CLIENT_SECRET (or OAUTH_CLIENT_SECRET_FILE for a local file) is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := minimal()
			for k, v := range tt.set {
				m[k] = v
			}
			_, err := config.Load(env(m))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Load: got %v, want no error", err)
				}
				return
			}
			if diff := cmp.Diff(tt.want, problems(t, err)); diff != "" {
				t.Errorf("problems mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestReturnOriginsOfABadConfiguration: the valid allow-listed origins are
// known even when the configuration as a whole is refused.
func TestReturnOriginsOfABadConfiguration(t *testing.T) {
	e := env(map[string]string{"ALLOWED_RETURN_ORIGINS": "HTTP://LOCALHOST:8081/, localhost:3000, http://app.example.com, https://app.example.com", "STORE": "postgres"})
	if _, err := config.Load(e); err == nil {
		t.Fatal("Load accepted a bad configuration")
	}
	want := []string{"http://localhost:8081", "https://app.example.com"}
	if diff := cmp.Diff(want, config.ReturnOrigins(e)); diff != "" {
		t.Errorf("ReturnOrigins mismatch (-want +got):\n%s", diff)
	}
}

// TestQuotaLimits: a project still on the pre-2026 limits raises the
// user's budget.
func TestQuotaLimits(t *testing.T) {
	c, err := config.Load(env(map[string]string{
		"OAUTH_CLIENT_SECRET_FILE": "c.json", "APP_KEYS_FILE": "k.json",
		"OAUTH_REDIRECT_URL": "http://localhost:8080/callback", "GMAIL_QUOTA_USER_PER_MIN": "15000",
	}))
	if err != nil || c.GmailQuotaUserPerMin != gmail.LegacyUserUnitsPerMinute {
		t.Fatalf("GMAIL_QUOTA_USER_PER_MIN=15000: %+v, %v", c, err)
	}
}
