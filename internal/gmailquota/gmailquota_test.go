package gmailquota

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
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

// TestRetries: 429 with Retry-After, 503 and 403 rateLimitExceeded are
// retried; 403 insufficientPermissions is not; attempts are bounded.
func TestRetries(t *testing.T) {
	var n atomic.Int32
	answers := []func(w http.ResponseWriter){
		func(w http.ResponseWriter) { w.Header().Set("Retry-After", "1"); w.WriteHeader(429) },
		func(w http.ResponseWriter) { w.WriteHeader(503) },
		func(w http.ResponseWriter) {
			w.WriteHeader(403)
			io.WriteString(w, `{"error":{"code":403,"errors":[{"reason":"userRateLimitExceeded"}]}}`)
		},
		func(w http.ResponseWriter) { io.WriteString(w, `{"ok":true}`) },
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		answers[min(i, len(answers)-1)](w)
	}))
	defer srv.Close()
	tr := &Transport{BaseDelay: time.Millisecond}
	var c Counter
	ctx := WithCounter(WithUser(context.Background(), "u1"), &c)
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/gmail/v1/users/me/messages/x", nil)
	start := time.Now()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("resp %v err %v", resp, err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != `{"ok":true}` {
		t.Fatalf("body %q", body)
	}
	if time.Since(start) < time.Second {
		t.Fatalf("Retry-After: 1 was not honoured")
	}
	if c.Calls.Load() != 4 || c.Retries.Load() != 3 || c.RateLimited.Load() != 2 || c.Units.Load() != 20 {
		t.Fatalf("counter calls=%d retries=%d limited=%d units=%d", c.Calls.Load(), c.Retries.Load(), c.RateLimited.Load(), c.Units.Load())
	}

	// Not a rate limit: answered as is, body intact.
	n.Store(0)
	answers = []func(w http.ResponseWriter){func(w http.ResponseWriter) {
		w.WriteHeader(403)
		io.WriteString(w, `{"error":{"code":403,"errors":[{"reason":"insufficientPermissions"}]}}`)
	}}
	resp, err = (&http.Client{Transport: tr}).Do(req)
	if err != nil || resp.StatusCode != 403 || n.Load() != 1 {
		t.Fatalf("403 insufficientPermissions: %v %v after %d calls", resp, err, n.Load())
	}
	if b, _ := io.ReadAll(resp.Body); len(b) == 0 {
		t.Fatalf("403 body lost")
	}

	// Bounded: a server that always answers 503.
	n.Store(0)
	answers = []func(w http.ResponseWriter){func(w http.ResponseWriter) { w.WriteHeader(503) }}
	tr2 := &Transport{BaseDelay: time.Millisecond, MaxAttempts: 3}
	resp, err = (&http.Client{Transport: tr2}).Do(req)
	if err != nil || resp.StatusCode != 503 || n.Load() != 3 {
		t.Fatalf("bounded: %v %v after %d calls", resp, err, n.Load())
	}
}

// TestWithRetryOverridesTheTransport: a request's context can ask for fewer
// attempts than the shared Transport's, so a frontend call gives up sooner
// than a sweep on the same transport (and project bucket).
func TestWithRetryOverridesTheTransport(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	tr := &Transport{MaxAttempts: 6, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want int32
	}{
		{"transport's attempts", context.Background(), 6},
		{"request's attempts", WithRetry(context.Background(), Retry{MaxAttempts: 2}), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls.Store(0)
			req, _ := http.NewRequestWithContext(tc.ctx, "GET", srv.URL+"/gmail/v1/users/me/messages", nil)
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := calls.Load(); got != tc.want || resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("got %d calls and status %d, want %d calls and 503", got, resp.StatusCode, tc.want)
			}
		})
	}
}
