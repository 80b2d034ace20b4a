package gmail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

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
		// Four messages.get without a format (full): 60 units each.
		if c.Calls.Load() != 4 || c.Retries.Load() != 3 || c.RateLimited.Load() != 2 || c.Units.Load() != 240 {
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
// second; the bucket holds the minute less one second: 59 units), twelve
// 20-unit calls (messages.get, format=metadata) take (240 - 59) / 1 = 181 s:
// the first two are served from the burst, each later one waits for its
// units.
func TestBucketsSpendGmailsUnits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &answers{list: []func(w http.ResponseWriter){func(w http.ResponseWriter) { io.WriteString(w, `{}`) }}}
		tr := &Transport{Base: a, UserUnitsPerMinute: 60}
		ctx := WithUser(context.Background(), "u1")
		start := time.Now()
		for range 12 {
			getMeta(t, tr, ctx).Body.Close()
		}
		if got, want := time.Since(start), 181*time.Second; got != want {
			t.Errorf("12 calls of 20 units at 1 unit/s took %v, want %v", got, want)
		}
	})
}

// getMeta sends one messages.get with format=metadata (20 units).
func getMeta(t *testing.T, tr http.RoundTripper, ctx context.Context) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://gmail.example/gmail/v1/users/me/messages/x?format=metadata", nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func tryMeta(tr http.RoundTripper, ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://gmail.example/gmail/v1/users/me/messages/x?format=metadata", nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err == nil {
		resp.Body.Close()
	}
	return err
}

func ok(w http.ResponseWriter) { io.WriteString(w, `{}`) }

// TestPatienceRefusesAtOnce: a request that would wait longer than its
// patience (or its deadline) for the user's budget is not sent, fails at
// once with a *BudgetError saying how long the budget needs, and takes
// nothing from the budget.
func TestPatienceRefusesAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctx  func(context.Context) (context.Context, context.CancelFunc)
	}{
		{"patience", func(ctx context.Context) (context.Context, context.CancelFunc) {
			return WithPatience(ctx, 2*time.Second), func() {}
		}},
		{"deadline", func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, 2*time.Second)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a := &answers{list: []func(w http.ResponseWriter){ok}}
				tr := &Transport{Base: a, UserUnitsPerMinute: 60} // 59 units at once, then 1 a second
				ctx, cancel := tc.ctx(WithUser(context.Background(), "u1"))
				defer cancel()
				for range 2 {
					if err := tryMeta(tr, ctx); err != nil {
						t.Fatalf("within the burst: %v", err)
					}
				}
				start := time.Now()
				err := tryMeta(tr, ctx) // needs 20, 19 left: 1 s, within patience
				if err != nil || time.Since(start) != time.Second {
					t.Fatalf("third call: %v after %v, want success after 1s", err, time.Since(start))
				}
				start = time.Now()
				err = tryMeta(tr, ctx) // needs 20 s
				var be *BudgetError
				if !errors.As(err, &be) || be.Limit != LimitUser || be.Wait != 20*time.Second {
					t.Fatalf("fourth call: got %v, want a *BudgetError of the user's budget, ready in 20s", err)
				}
				if waited := time.Since(start); waited != 0 {
					t.Errorf("refused after %v, want at once", waited)
				}
				if got := a.calls.Load(); got != 3 {
					t.Errorf("Gmail got %d calls, want 3 (the refused one is not sent)", got)
				}
				if KindOf(err) != KindRateLimited {
					t.Errorf("KindOf = %v, want rate_limited", KindOf(err))
				}
				time.Sleep(20 * time.Second) // the refused call took nothing: 20 units are there
				if err := tryMeta(tr, WithPatience(WithUser(context.Background(), "u1"), time.Millisecond)); err != nil {
					t.Errorf("after 20 s: %v, want the units back", err)
				}
			})
		})
	}
}

// TestBackfillYields: while a person uses the app, a backfill call waits
// while the user's bucket holds less than its cost above the reserve, and
// the person's call made meanwhile goes first. Nobody using the app, it
// takes the bucket's last units.
func TestBackfillYields(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var order []string
		var mu sync.Mutex
		a := &answers{list: []func(w http.ResponseWriter){ok}}
		tr := &Transport{Base: recordOrder(a, &mu, &order), UserUnitsPerMinute: 60, Reserve: 30}
		user := WithUser(context.Background(), "u1")
		send := func(ctx context.Context, name string) {
			req, _ := http.NewRequestWithContext(ctx, "GET", "https://gmail.example/gmail/v1/users/me/messages/"+name+"?format=metadata", nil)
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		}
		_, done0, err := tr.prepay(user, "u1", 1) // a person's call: 59 → 58, then 1 back
		if err != nil {
			t.Fatal(err)
		}
		done0()
		send(Backfill(user), "b1") // 59 → 39
		done := make(chan struct{})
		go func() { send(Backfill(user), "b2"); close(done) }() // needs 20 above 30: waits
		synctest.Wait()
		send(user, "p1") // a person: 39 → 19 at once
		<-done
		mu.Lock()
		defer mu.Unlock()
		if want := []string{"b1", "p1", "b2"}; !slices.Equal(order, want) {
			t.Errorf("order = %v, want %v", order, want)
		}
		mu.Unlock()
		time.Sleep(personActive) // nobody used the app since: the bucket is full (59)
		for i := range 2 {
			start := time.Now()
			send(Backfill(user), fmt.Sprint("n", i)) // 59 → 39 → 19: no reserve kept
			if time.Since(start) != 0 {
				t.Errorf("backfill with nobody waiting waited %v", time.Since(start))
			}
		}
		mu.Lock()
	})
}

// recordOrder records the message ids requested, in order.
func recordOrder(next http.RoundTripper, mu *sync.Mutex, order *[]string) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		*order = append(*order, path.Base(r.URL.Path))
		mu.Unlock()
		return next.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestGmailRateLimitWithinPatience: Gmail answers 429 with a Retry-After
// longer than the caller's patience: the answer comes back at once (no
// retry), and the user is paused, so the next call fails at once too,
// named as Gmail's limit.
func TestGmailRateLimitWithinPatience(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &answers{list: []func(w http.ResponseWriter){
			func(w http.ResponseWriter) {
				w.Header().Set("Retry-After", "30")
				w.WriteHeader(429)
				io.WriteString(w, `{"error":{"code":429,"errors":[{"reason":"userRateLimitExceeded"}]}}`)
			},
			ok,
		}}
		tr := &Transport{Base: a, Retry: Retry{BaseDelay: time.Millisecond}}
		ctx := WithPatience(WithUser(context.Background(), "u1"), 2*time.Second)
		start := time.Now()
		resp := getMeta(t, tr, ctx)
		resp.Body.Close()
		if resp.StatusCode != 429 || a.calls.Load() != 1 || time.Since(start) != 0 {
			t.Fatalf("got %d after %d calls and %v, want Gmail's 429 at once", resp.StatusCode, a.calls.Load(), time.Since(start))
		}
		err := tryMeta(tr, ctx)
		var be *BudgetError
		if !errors.As(err, &be) || be.Limit != LimitGmail || be.Wait < 29*time.Second {
			t.Fatalf("next call: %v, want a *BudgetError naming Gmail's pause of about 30s", err)
		}
		if a.calls.Load() != 1 {
			t.Errorf("the paused call was sent")
		}
	})
}

// TestBatchIsChargedCallByCall: a batch of three messages.get (two with
// format=metadata, one full) costs 20 + 20 + 60, as Google counts it.
func TestBatchIsChargedCallByCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &answers{list: []func(w http.ResponseWriter){ok}}
		tr := &Transport{Base: a}
		var c Counter
		body := batchBody("b0", []string{
			"GET /gmail/v1/users/me/messages/a?format=metadata",
			"GET /gmail/v1/users/me/messages/b?format=metadata HTTP/1.1",
			"GET /gmail/v1/users/me/messages/c",
		})
		req, _ := http.NewRequestWithContext(WithCounter(WithUser(context.Background(), "u1"), &c), "POST",
			"https://gmail.example/batch/gmail/v1", strings.NewReader(body))
		req.Header.Set("Content-Type", "multipart/mixed; boundary=b0")
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if c.Units.Load() != 100 || c.Calls.Load() != 1 {
			t.Errorf("batch: %d units in %d requests, want 100 units in 1", c.Units.Load(), c.Calls.Load())
		}
	})
}

func batchBody(boundary string, lines []string) string {
	var b strings.Builder
	for i, l := range lines {
		fmt.Fprintf(&b, "--%s\r\nContent-Type: application/http\r\nContent-ID: <item%d>\r\n\r\n%s\r\n\r\n", boundary, i, l)
	}
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return b.String()
}

// TestBucketAfterTheClockSteppedBack: units taken while the clock was ahead
// come back at the bucket's rate once it has stepped back, not only once
// the clock has caught up again (tests move one clock both ways).
func TestBucketAfterTheClockSteppedBack(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	b := newBucket(6000, 6000, func(rate float64) float64 { return 60 * rate }, t0)
	ahead := t0.Add(59 * time.Minute)
	b.fill(ahead)
	b.take(6000)
	b.fill(t0) // the clock steps back 59 minutes
	b.fill(t0.Add(10 * time.Second))
	if got, want := b.tokens, 1000.0; math.Abs(got-want) > 1e-6 {
		t.Errorf("10 s after the clock stepped back: %.1f units, want %.1f (100 units/s)", got, want)
	}
}
