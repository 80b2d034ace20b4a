package app_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"example.com/gmailoauth/internal/app"
	"example.com/gmailoauth/internal/keyset"
	"example.com/gmailoauth/internal/logging"
	"example.com/gmailoauth/internal/secrets"
	"example.com/gmailoauth/internal/store/memstore"
)

// newTestApp returns an App with valid configuration, its secrets in
// memory and a memory store; it talks to no provider unless a request gets
// that far.
func newTestApp(t testing.TB) *app.App {
	t.Helper()
	keys, err := keyset.Generate("f")
	if err != nil {
		t.Fatal(err)
	}
	src := secrets.Memory{
		"client": []byte(`{"web":{"client_id":"id.apps.googleusercontent.com","client_secret":"s","redirect_uris":["https://fn.example.com/callback"]}}`),
		"keys":   keys,
	}
	env := map[string]string{"OAUTH_CLIENT_SECRET_FILE": "client", "APP_KEYS_FILE": "keys",
		"OAUTH_REDIRECT_URL": "https://fn.example.com/callback", "ALLOWED_RETURN_ORIGINS": "https://app.example.com",
		"GOOGLE_TOKEN_URL": "http://127.0.0.1:1/token", "GOOGLE_ISSUER": "http://127.0.0.1:1", "OUTBOUND_TIMEOUT": "200ms", "STORE": "memory"}
	return app.New(app.Options{Getenv: func(k string) string { return env[k] }, Store: memstore.New(), Secrets: src,
		Logger: logging.New(&syncBuffer{}, "", slog.LevelError)})
}

// FuzzCallback sends arbitrary query strings to OAuthCallback: it never
// panics, never answers 500, and always answers the contract's JSON error
// (or a redirect) with the safe headers.
func FuzzCallback(f *testing.F) {
	for _, q := range []string{
		"", "state=", "code=abc", "state=AAAAAAAAAAAAAAAAAAAAAA&code=4/0abc",
		"error=access_denied&state=AAAAAAAAAAAAAAAAAAAAAA", "error=%00&state=%ff",
		"state=a&state=b", "state=" + string(make([]byte, 300)), "%zz", "code=;;;&state=<script>",
	} {
		f.Add(q)
	}
	a := newTestApp(f)
	f.Fuzz(func(t *testing.T, rawQuery string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL.RawQuery = rawQuery
		rec := httptest.NewRecorder()
		a.OAuthCallback(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("query %q: got %d %s, want a 4xx", rawQuery, rec.Code, rec.Body)
		}
		if rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Referrer-Policy") != "no-referrer" {
			t.Fatalf("query %q: safe headers missing", rawQuery)
		}
		if rec.Code != http.StatusFound {
			var body struct {
				Error struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error.Code == "" {
				t.Fatalf("query %q: body %s is not the contract's error JSON", rawQuery, rec.Body)
			}
		}
	})
}
