package app_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"example.com/gmailoauth/internal/app"
	"example.com/gmailoauth/internal/logging"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestMisconfigured: a missing or malformed setting answers 500 misconfigured
// on every function, logs one clear line naming every problem, and never
// panics or leaks the secret's value.
func TestMisconfigured(t *testing.T) {
	dir := t.TempDir()
	badClient := filepath.Join(dir, "client.json")
	if err := os.WriteFile(badClient, []byte(`{"web":{"client_id":"x","client_secret":"fake-supersecretvalue"`), 0o600); err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(dir, "keys.json")
	if err := os.WriteFile(keys, []byte(`{"encryption":{"primary":"k","keys":{"k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}},"session":{"primary":"s","keys":{"s":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		env      map[string]string
		wantLogs []string
	}{
		{"empty environment", map[string]string{}, []string{"OAUTH_CLIENT_SECRET", "APP_KEYS_SECRET", "OAUTH_REDIRECT_URL"}},
		{"bad values", map[string]string{
			"OAUTH_CLIENT_SECRET_FILE": badClient, "APP_KEYS_FILE": keys, "OAUTH_REDIRECT_URL": "ftp://x",
			"ALLOWED_RETURN_ORIGINS": "https://a.example.com/path", "SYNC_CONCURRENCY": "zero", "STORE": "redis",
		}, []string{"OAUTH_REDIRECT_URL", "ALLOWED_RETURN_ORIGINS", "SYNC_CONCURRENCY", "STORE"}},
		{"malformed client JSON", map[string]string{
			"OAUTH_CLIENT_SECRET_FILE": badClient, "APP_KEYS_FILE": keys, "OAUTH_REDIRECT_URL": "https://fn.example.com/callback",
		}, []string{"client.json"}},
		{"both secrets wrong", map[string]string{
			"OAUTH_CLIENT_SECRET_FILE": filepath.Join(dir, "missing.json"), "APP_KEYS_FILE": badClient, "OAUTH_REDIRECT_URL": "https://fn.example.com/callback",
		}, []string{"OAUTH_CLIENT_SECRET_FILE", "missing.json", "APP_KEYS_FILE", "keyset"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &syncBuffer{}
			a := app.New(app.Options{Getenv: func(k string) string { return tc.env[k] }, Logger: logging.New(logs, "", slog.LevelInfo)})
			for i, h := range []http.HandlerFunc{a.Authorize, a.OAuthCallback, a.ListMessages, a.Authorize} {
				rec := httptest.NewRecorder()
				h(rec, httptest.NewRequest(http.MethodGet, "/?x=1", nil))
				var body struct {
					Error struct{ Code string } `json:"error"`
				}
				_ = json.Unmarshal(rec.Body.Bytes(), &body)
				if rec.Code != http.StatusInternalServerError || body.Error.Code != "misconfigured" {
					t.Errorf("request %d: got %d %s, want 500 misconfigured", i, rec.Code, rec.Body)
				}
			}
			out := logs.String()
			if n := strings.Count(out, "instance cannot serve"); n != 1 {
				t.Errorf("got %d 'instance cannot serve' lines, want exactly 1:\n%s", n, out)
			}
			for _, w := range tc.wantLogs {
				if !strings.Contains(out, w) {
					t.Errorf("log does not name %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "supersecretvalue") {
				t.Errorf("log leaks the client secret:\n%s", out)
			}
		})
	}
}

// TestMethodNotAllowed: unknown methods get 405 with an Allow header.
func TestMethodNotAllowed(t *testing.T) {
	a := newTestApp(t)
	for _, tc := range []struct {
		name      string
		h         http.HandlerFunc
		method    string
		wantAllow string
	}{
		{"Authorize PUT", a.Authorize, http.MethodPut, "GET, POST, DELETE, OPTIONS"},
		{"OAuthCallback POST", a.OAuthCallback, http.MethodPost, "GET, OPTIONS"},
		{"ListMessages PATCH", a.ListMessages, http.MethodPatch, "GET, POST, OPTIONS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tc.h(rec, httptest.NewRequest(tc.method, "/", nil))
			if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != tc.wantAllow {
				t.Errorf("got %d Allow=%q, want 405 Allow=%q", rec.Code, rec.Header().Get("Allow"), tc.wantAllow)
			}
		})
	}
}

// TestMisconfiguredAnswersCORS: a misconfigured instance still answers its
// allow-listed frontends with CORS headers (the preflight succeeds, the
// error carries Access-Control-Allow-Origin), so the page can show
// "misconfigured" instead of a network error; other origins get nothing.
func TestMisconfiguredAnswersCORS(t *testing.T) {
	env := map[string]string{
		"ALLOWED_RETURN_ORIGINS": "http://localhost:8081, localhost:3000", // the second is the mistake
		"OAUTH_REDIRECT_URL":     "http://localhost:8080/callback",
	}
	a := app.New(app.Options{Getenv: func(k string) string { return env[k] }, Logger: logging.New(&syncBuffer{}, "", slog.LevelInfo)})
	for _, tc := range []struct {
		origin     string
		wantACAO   string
		wantStatus int
	}{
		{"http://localhost:8081", "http://localhost:8081", http.StatusNoContent},
		{"https://evil.example.com", "", http.StatusForbidden},
	} {
		pre := httptest.NewRequest(http.MethodOptions, "/", nil)
		pre.Header.Set("Origin", tc.origin)
		pre.Header.Set("Access-Control-Request-Method", "POST")
		pre.Header.Set("Access-Control-Request-Headers", "content-type")
		rec := httptest.NewRecorder()
		a.Authorize(rec, pre)
		if rec.Code != tc.wantStatus || rec.Header().Get("Access-Control-Allow-Origin") != tc.wantACAO {
			t.Errorf("preflight from %s: got %d ACAO=%q, want %d ACAO=%q", tc.origin, rec.Code,
				rec.Header().Get("Access-Control-Allow-Origin"), tc.wantStatus, tc.wantACAO)
		}
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{}`))
		req.Header.Set("Origin", tc.origin)
		req.Header.Set("Content-Type", "application/json")
		rec = httptest.NewRecorder()
		a.Authorize(rec, req)
		if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), `"misconfigured"`) ||
			rec.Header().Get("Access-Control-Allow-Origin") != tc.wantACAO {
			t.Errorf("POST from %s: got %d %s ACAO=%q, want 500 misconfigured ACAO=%q", tc.origin, rec.Code, rec.Body,
				rec.Header().Get("Access-Control-Allow-Origin"), tc.wantACAO)
		}
	}
}
