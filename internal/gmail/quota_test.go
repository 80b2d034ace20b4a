package gmail

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		method, path, want string
		cost               int
	}{
		{"GET", "/gmail/v1/users/me/messages", MethodMessagesList, 5},
		{"GET", "/gmail/v1/users/me/messages/abc", MethodMessagesGet, 5},
		{"GET", "/gmail/v1/users/me/history", MethodHistoryList, 2},
		{"GET", "/gmail/v1/users/me/profile", MethodGetProfile, 1},
		{"GET", "/gmail/v1/users/me/labels", MethodLabelsList, 1},
		{"POST", "/batch/gmail/v1", MethodOther, 5},
	} {
		if m, cost := Classify(c.method, c.path); m != c.want || cost != c.cost {
			t.Errorf("Classify(%s %s) = %s %d, want %s %d", c.method, c.path, m, cost, c.want, c.cost)
		}
	}
}

// answers is a Gmail stand-in without a network: the i-th request gets the
// i-th answer (the last one repeats). Inside a synctest bubble its time is
// the bubble's, so waits cost nothing and are measured exactly.
type answers struct {
	calls atomic.Int32
	list  []func(w http.ResponseWriter)
}

func (a *answers) RoundTrip(r *http.Request) (*http.Response, error) {
	i := int(a.calls.Add(1)) - 1
	rec := httptest.NewRecorder()
	a.list[min(i, len(a.list)-1)](rec)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

func get(t *testing.T, tr http.RoundTripper, ctx context.Context) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://gmail.example/gmail/v1/users/me/messages/x", nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestRetries: 429 with Retry-After, 503 and 403 rateLimitExceeded are
// retried, never sooner than Retry-After; 403 insufficientPermissions is
// not; attempts are bounded.
func TestRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &answers{list: []func(w http.ResponseWriter){
			func(w http.ResponseWriter) { w.Header().Set("Retry-After", "1"); w.WriteHeader(429) },
			func(w http.ResponseWriter) { w.WriteHeader(503) },
			func(w http.ResponseWriter) {
				w.WriteHeader(403)
				io.WriteString(w, `{"error":{"code":403,"errors":[{"reason":"userRateLimitExceeded"}]}}`)
			},
			func(w http.ResponseWriter) { io.WriteString(w, `{"ok":true}`) },
		}}
		tr := &Transport{Base: a, Retry: Retry{BaseDelay: time.Millisecond}}
		var c Counter
		start := time.Now()
		resp := get(t, tr, WithCounter(WithUser(context.Background(), "u1"), &c))
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != `{"ok":true}` {
			t.Fatalf("got %d %q, want 200 {\"ok\":true}", resp.StatusCode, body)
		}
		if waited := time.Since(start); waited < time.Second {
			t.Fatalf("answered after %v: Retry-After: 1 was not honoured", waited)
		}
		if c.Calls.Load() != 4 || c.Retries.Load() != 3 || c.RateLimited.Load() != 2 || c.Units.Load() != 20 {
			t.Fatalf("counter calls=%d retries=%d limited=%d units=%d", c.Calls.Load(), c.Retries.Load(), c.RateLimited.Load(), c.Units.Load())
		}
	})
	t.Run("not a rate limit", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			a := &answers{list: []func(w http.ResponseWriter){func(w http.ResponseWriter) {
				w.WriteHeader(403)
				io.WriteString(w, `{"error":{"code":403,"errors":[{"reason":"insufficientPermissions"}]}}`)
			}}}
			resp := get(t, &Transport{Base: a}, context.Background())
			if resp.StatusCode != 403 || a.calls.Load() != 1 {
				t.Fatalf("403 insufficientPermissions: %d after %d calls, want 403 after 1", resp.StatusCode, a.calls.Load())
			}
			if b, _ := io.ReadAll(resp.Body); !strings.Contains(string(b), "insufficientPermissions") {
				t.Fatalf("403 body lost: %q", b)
			}
		})
	})
	t.Run("bounded", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			a := &answers{list: []func(w http.ResponseWriter){func(w http.ResponseWriter) { w.WriteHeader(503) }}}
			resp := get(t, &Transport{Base: a, Retry: Retry{BaseDelay: time.Millisecond, MaxAttempts: 3}}, context.Background())
			if resp.StatusCode != 503 || a.calls.Load() != 3 {
				t.Fatalf("always 503: %d after %d calls, want 503 after 3", resp.StatusCode, a.calls.Load())
			}
		})
	})
}

// TestWithRetryOverridesTheTransport: a request's context can ask for fewer
// attempts than the shared Transport's, so a frontend call gives up sooner
// than a sweep on the same transport (and project bucket).
func TestWithRetryOverridesTheTransport(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want int32
	}{
		{"transport's attempts", context.Background(), 6},
		{"request's attempts", WithRetry(context.Background(), Retry{MaxAttempts: 2}), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a := &answers{list: []func(w http.ResponseWriter){func(w http.ResponseWriter) { w.WriteHeader(503) }}}
				tr := &Transport{Base: a, Retry: Retry{MaxAttempts: 6, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}}
				resp := get(t, tr, tc.ctx)
				resp.Body.Close()
				if got := a.calls.Load(); got != tc.want || resp.StatusCode != http.StatusServiceUnavailable {
					t.Errorf("got %d calls and status %d, want %d calls and 503", got, resp.StatusCode, tc.want)
				}
			})
		})
	}
}

// TestBucketsSpendGmailsUnits: with 60 units a minute for the user (1 a
// second, a burst of 5), twelve 5-unit calls take 55 s: the first is served
// from the burst, each later one waits 5 s for its units.
func TestBucketsSpendGmailsUnits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &answers{list: []func(w http.ResponseWriter){func(w http.ResponseWriter) { io.WriteString(w, `{}`) }}}
		tr := &Transport{Base: a, UserUnitsPerMinute: 60}
		ctx := WithUser(context.Background(), "u1")
		start := time.Now()
		for range 12 {
			get(t, tr, ctx).Body.Close()
		}
		if got, want := time.Since(start), 55*time.Second; got != want {
			t.Errorf("12 calls of 5 units at 1 unit/s took %v, want %v", got, want)
		}
	})
}
