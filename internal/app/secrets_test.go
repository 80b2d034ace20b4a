package app_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/googleapis/gax-go/v2"

	"example.com/gmailoauth/internal/app"
	"example.com/gmailoauth/internal/keyset"
	"example.com/gmailoauth/internal/logging"
	"example.com/gmailoauth/internal/secrets"
	"example.com/gmailoauth/internal/secrets/smtest"
	"example.com/gmailoauth/internal/store/memstore"
)

// TestSecretManagerUnavailableAtColdStart: while Secret Manager is down a
// new instance answers 503 with Retry-After (not 500 misconfigured, not a
// panic); once it is back the instance serves, reading each secret once.
func TestSecretManagerUnavailableAtColdStart(t *testing.T) {
	const clientRef = "projects/p/secrets/oauth-client/versions/latest"
	const keysRef = "projects/p/secrets/app-keys/versions/3"
	keys, _ := keyset.Generate("t")
	client, _ := json.Marshal(map[string]any{"web": map[string]any{"client_id": "id.apps.googleusercontent.com", "client_secret": "s3cr3t-value", "redirect_uris": []string{"https://fn.example.com/callback"}}})
	fake, opts := smtest.Start(t)
	fake.AddVersion("projects/p/secrets/oauth-client", string(client))
	fake.AddVersion("projects/p/secrets/app-keys", "unused version 1")
	fake.AddVersion("projects/p/secrets/app-keys", "unused version 2")
	if v := fake.AddVersion("projects/p/secrets/app-keys", string(keys)); v != keysRef {
		t.Fatalf("app keys added as %s, want %s", v, keysRef)
	}
	fake.SetDown(true)

	src := secrets.NewSecretManagerSource(opts...).
		WithCallOptions(gax.WithTimeout(500 * time.Millisecond))
	t.Cleanup(func() { src.Close() })
	env := map[string]string{
		"GOOGLE_CLOUD_PROJECT": "p", "OAUTH_CLIENT_SECRET": clientRef, "APP_KEYS_SECRET": keysRef,
		"OAUTH_REDIRECT_URL": "https://fn.example.com/callback", "STORE": "memory",
	}
	now := time.Now()
	var offset atomic.Int64
	logs := &syncBuffer{}
	a := app.New(app.Options{Getenv: func(k string) string { return env[k] }, Secrets: src, Store: memstore.New(),
		Now: func() time.Time { return now.Add(time.Duration(offset.Load())) }, Logger: logging.New(logs, "", slog.LevelInfo)})

	get := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/?login_hint=a@example.com", nil)
		req.Header.Set("Accept", "application/json")
		a.Authorize(rec, req)
		return rec
	}
	rec := get()
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("Secret Manager down: got %d (Retry-After %q) %s, want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	fake.SetDown(false)
	offset.Store(int64(11 * time.Second)) // past the retry window
	before := fake.TotalCalls()
	for i := 0; i < 20; i++ {
		if rec := get(); rec.Code != http.StatusOK {
			t.Fatalf("after recovery, request %d: got %d %s, want 200", i, rec.Code, rec.Body)
		}
	}
	if got := fake.TotalCalls() - before; got != 2 {
		t.Errorf("Secret Manager calls for 20 requests = %d, want 2 (each secret once)", got)
	}
	if out := logs.String(); len(out) == 0 || strings.Contains(out, "s3cr3t-value") {
		t.Errorf("logs empty or leak the client secret:\n%s", out)
	}
}

// TestColdStartOutlivesAClientThatHangsUp: the instance's setup runs under
// its own context. A first request whose client hangs up while Secret
// Manager is slow (200 ms) does not fail the setup: the next request is
// served at once, and 20 concurrent cold-start requests share one setup
// (each secret read once).
func TestColdStartOutlivesAClientThatHangsUp(t *testing.T) {
	const clientRef = "projects/p/secrets/oauth-client/versions/1"
	const keysRef = "projects/p/secrets/app-keys/versions/1"
	keys, _ := keyset.Generate("t")
	client, _ := json.Marshal(map[string]any{"web": map[string]any{"client_id": "id.apps.googleusercontent.com", "client_secret": "s", "redirect_uris": []string{"https://fn.example.com/callback"}}})
	fake, opts := smtest.Start(t)
	fake.AddVersion("projects/p/secrets/oauth-client", string(client))
	fake.AddVersion("projects/p/secrets/app-keys", string(keys))
	fake.SetOnCall(func(ctx context.Context, name string) { time.Sleep(200 * time.Millisecond) })
	env := map[string]string{
		"GOOGLE_CLOUD_PROJECT": "p", "OAUTH_CLIENT_SECRET": clientRef, "APP_KEYS_SECRET": keysRef,
		"OAUTH_REDIRECT_URL": "https://fn.example.com/callback", "STORE": "memory",
	}
	newApp := func() *app.App {
		src := secrets.NewSecretManagerSource(opts...)
		t.Cleanup(func() { src.Close() })
		return app.New(app.Options{Getenv: func(k string) string { return env[k] }, Secrets: src, Store: memstore.New(),
			Logger: logging.New(&syncBuffer{}, "", slog.LevelInfo)})
	}
	get := func(a *app.App, ctx context.Context) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/?login_hint=a@example.com", nil)
		req.Header.Set("Accept", "application/json")
		a.Authorize(rec, req)
		return rec
	}

	a := newApp()
	hungUp, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if rec := get(a, hungUp); rec.Code == http.StatusOK {
		t.Fatalf("a request whose client hung up after 50 ms was answered 200; the setup takes 400 ms")
	}
	if rec := get(a, context.Background()); rec.Code != http.StatusOK {
		t.Fatalf("the request after a client hung up during the cold start: got %d %s, want 200", rec.Code, rec.Body)
	}

	a = newApp()
	before := fake.TotalCalls()
	var wg sync.WaitGroup
	codes := make([]int, 20)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = get(a, context.Background()).Code
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("concurrent cold-start request %d: got %d, want 200", i, c)
		}
	}
	if got := fake.TotalCalls() - before; got != 2 {
		t.Errorf("Secret Manager calls for 20 concurrent cold-start requests = %d, want 2 (one setup)", got)
	}
}
