package gmail

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"example.com/gmailoauth/internal/apperr"
)

// fakeTokens hands out a fixed token and counts the reads.
type fakeTokens struct{ reads atomic.Int32 }

func (f *fakeTokens) AccessToken(context.Context, string) (string, error) {
	f.reads.Add(1)
	return "ya29.test", nil
}
func (f *fakeTokens) ExpireAccessToken(context.Context, string) error   { return nil }
func (f *fakeTokens) MarkRevoked(context.Context, string, string) error { return nil }

// profileAnswer answers every call like users.getProfile.
func profileAnswer(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"historyId":"7"}`)
}

func newTestService(a *answers, perMinute float64, tok *fakeTokens) *Service {
	tr := &Transport{Base: a, UserUnitsPerMinute: perMinute}
	return &Service{BaseURL: "https://gmail.example/", HTTP: &http.Client{Transport: tr}, Tokens: tok,
		Patience: 2 * time.Second, MaxConcurrentPerUser: 2}
}

// oneCall makes one messages.get (format=metadata): 20 units.
func oneCall(ctx context.Context, c *Client) error {
	_, err := c.Metadata(ctx, "m1")
	return err
}

// TestDoCostRefusesWithRetryAfter: a call whose cost the user's budget
// cannot hold within the patience is answered rate_limited at once, with
// the budget's wait as Retry-After and a message that does not blame
// Gmail; nothing is sent and no token is read. What a call did not use
// is given back.
func TestDoCostRefusesWithRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &answers{list: []func(w http.ResponseWriter){profileAnswer}}
		tok := &fakeTokens{}
		s := newTestService(a, 60, tok) // the bucket holds 59 units, then 1 a second
		ctx := context.Background()
		if err := s.DoCost(ctx, "u1", 50, oneCall); err != nil { // uses 20 of 50: 30 come back
			t.Fatalf("first call: %v", err)
		}
		if err := s.DoCost(ctx, "u1", 39, oneCall); err != nil { // 39 left only if the 30 came back
			t.Fatalf("second call: %v (the first call's unused units were not given back)", err)
		}
		reads, calls := tok.reads.Load(), a.calls.Load()
		start := time.Now()
		err := s.DoCost(ctx, "u1", 59, oneCall) // 19 left: 40 s away
		e := apperr.As(err)
		if e == nil || e.Code != apperr.RateLimited || e.RetryAfter != 40*time.Second {
			t.Fatalf("over budget: got %v, want rate_limited with Retry-After 40s", err)
		}
		if strings.Contains(e.Message, "Gmail's") {
			t.Errorf("message %q blames Gmail for the app's own budget", e.Message)
		}
		if time.Since(start) != 0 || tok.reads.Load() != reads || a.calls.Load() != calls {
			t.Errorf("refused after %v with %d token reads and %d calls more, want at once and nothing",
				time.Since(start), tok.reads.Load()-reads, a.calls.Load()-calls)
		}
		var be *BudgetError
		if !errors.As(err, &be) || be.Limit != LimitUser {
			t.Errorf("the cause is %v, want a *BudgetError of the user's budget", err)
		}
		// Another user has a budget of their own.
		if err := s.DoCost(ctx, "u2", 59, oneCall); err != nil {
			t.Errorf("another user: %v", err)
		}
	})
}

// TestConcurrentCallsPerUser: with two calls of a user in flight, a third
// waits for the patience, then is answered rate_limited; another user is
// served meanwhile.
func TestConcurrentCallsPerUser(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &answers{list: []func(w http.ResponseWriter){profileAnswer}}
		s := newTestService(a, 6000, &fakeTokens{})
		ctx := context.Background()
		hold := make(chan struct{})
		errs := make(chan error, 2)
		for range 2 {
			go func() {
				errs <- s.Do(ctx, "u1", func(ctx context.Context, c *Client) error { <-hold; return nil })
			}()
		}
		synctest.Wait()
		start := time.Now()
		err := s.Do(ctx, "u1", func(context.Context, *Client) error { return nil })
		e := apperr.As(err)
		if e == nil || e.Code != apperr.RateLimited || e.RetryAfter < time.Second {
			t.Fatalf("third concurrent call: %v, want rate_limited with a Retry-After", err)
		}
		if got := time.Since(start); got != s.Patience {
			t.Errorf("refused after %v, want after the patience (%v)", got, s.Patience)
		}
		if err := s.Do(ctx, "u2", func(context.Context, *Client) error { return nil }); err != nil {
			t.Errorf("another user: %v", err)
		}
		close(hold)
		for range 2 {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		if err := s.Do(ctx, "u1", func(context.Context, *Client) error { return nil }); err != nil {
			t.Errorf("after the two ended: %v", err)
		}
		if n := len(s.slots); n != 0 {
			t.Errorf("%d users' slots kept after their calls ended", n)
		}
	})
}

// TestAppErrorNamesWhoseLimit: the app's own budget and Gmail's answer are
// both rate_limited, and the message says which.
func TestAppErrorNamesWhoseLimit(t *testing.T) {
	for _, tc := range []struct {
		err        error
		gmails     bool
		retryAfter time.Duration
	}{
		{&BudgetError{Limit: LimitUser, Wait: 1500 * time.Millisecond}, false, 1500 * time.Millisecond},
		{&BudgetError{Limit: LimitProject, Wait: 100 * time.Millisecond}, false, time.Second},
		{&BudgetError{Limit: LimitConcurrency, Wait: time.Second}, false, time.Second},
		{&BudgetError{Limit: LimitGmail, Wait: 30 * time.Second}, true, 30 * time.Second},
		{&Error{Kind: KindRateLimited, Status: 429, RetryAfter: 7 * time.Second}, true, 7 * time.Second},
	} {
		e := apperr.As(AppError(tc.err))
		if e == nil || e.Code != apperr.RateLimited || e.RetryAfter != tc.retryAfter {
			t.Errorf("AppError(%v) = %v, want rate_limited with Retry-After %v", tc.err, e, tc.retryAfter)
			continue
		}
		if got := strings.Contains(e.Message, "Gmail's"); got != tc.gmails {
			t.Errorf("AppError(%v) message %q: names Gmail = %v, want %v", tc.err, e.Message, got, tc.gmails)
		}
	}
}
