package gmail

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Gmail's published limits and the transport's retry defaults.
const (
	DefaultUserUnitsPerMinute    = 15_000
	DefaultProjectUnitsPerMinute = 1_200_000
	DefaultMaxAttempts           = 6
	DefaultBaseDelay             = 200 * time.Millisecond
	DefaultMaxDelay              = 32 * time.Second
	// burstSeconds is how many seconds of a bucket's rate may be spent at
	// once. Half a second leaves slack for requests that reach Gmail later
	// than the bucket released them (Gmail's own per-user bucket allows
	// about one second's worth).
	burstSeconds = 0.5
	// maxBufferedBody is the largest request body kept for a retry.
	maxBufferedBody = 1 << 20
	// idleBucket: a user's bucket unused this long is full again, so it is
	// dropped (equivalent to a new one) to keep memory flat.
	idleBucket = 2 * time.Minute
)

type ctxKey int

const (
	userKey ctxKey = iota
	counterKey
	retryKey
)

// WithUser returns ctx whose Gmail requests are charged to userID's bucket.
// The transport cannot tell from an access token whose it is.
func WithUser(ctx context.Context, userID string) context.Context {
	return context.WithValue(ctx, userKey, userID)
}

// UserFrom returns the user set by WithUser, or "".
func UserFrom(ctx context.Context) string {
	s, _ := ctx.Value(userKey).(string)
	return s
}

// Counter accumulates what requests made with a context cost. Safe for
// concurrent use; the zero value is ready.
type Counter struct {
	Calls       atomic.Int64 // requests sent to Gmail (retries included)
	Units       atomic.Int64 // quota units taken from the buckets
	RateLimited atomic.Int64 // 429 and 403 rate-limit answers received
	Retries     atomic.Int64 // attempts after the first
}

// WithCounter returns ctx whose Gmail requests are counted in c.
func WithCounter(ctx context.Context, c *Counter) context.Context {
	return context.WithValue(ctx, counterKey, c)
}

func counterFrom(ctx context.Context) *Counter {
	c, _ := ctx.Value(counterKey).(*Counter)
	return c
}

// Retry shapes the retries of one request; zero fields keep the
// Transport's settings.
type Retry struct {
	MaxAttempts         int
	BaseDelay, MaxDelay time.Duration
}

// WithRetry returns ctx whose Gmail requests retry as r says, so callers
// with different patience (a person waiting on a page, a background sweep)
// share one Transport and so one project bucket.
func WithRetry(ctx context.Context, r Retry) context.Context {
	return context.WithValue(ctx, retryKey, r)
}

// Transport is an http.RoundTripper for the Gmail API that spends quota
// units the way Gmail counts them (Costs) and backs off when Gmail says no.
//
// Before a request is sent, its cost is taken from two token buckets
// (golang.org/x/time/rate): the user's (see WithUser) and the project's,
// shared by every request of the instance. Answers 429, 5xx and 403
// rateLimitExceeded/userRateLimitExceeded are retried with exponential
// backoff and full jitter, never sooner than a Retry-After asks, for a
// bounded number of attempts; a user who got a rate-limit answer is paused
// as a whole, so a storm does not keep hitting Gmail.
//
// Set the fields, then use it; it is safe for concurrent use. One Transport
// per instance, so the project bucket is shared.
type Transport struct {
	// Base sends the requests; nil means http.DefaultTransport.
	Base http.RoundTripper
	// UserUnitsPerMinute and ProjectUnitsPerMinute are the buckets' rates;
	// 0 means Gmail's defaults, negative means unlimited.
	UserUnitsPerMinute    float64
	ProjectUnitsPerMinute float64
	// Retry is the default retry shape (zero fields: the Default* values).
	Retry Retry
	// Now is the clock of the buckets, pauses and Retry-After dates; nil
	// means time.Now. Context deadlines are always read on the wall clock.
	Now func() time.Time

	once    sync.Once
	project *rate.Limiter

	mu     sync.Mutex
	users  map[string]*userBucket
	nextGC time.Time
}

type userBucket struct {
	lim       *rate.Limiter
	pauseTill time.Time // set by a rate-limit answer; guarded by Transport.mu
	lastUse   time.Time
}

func perSecond(perMinute, def float64) rate.Limit {
	switch {
	case perMinute == 0:
		perMinute = def
	case perMinute < 0:
		return rate.Inf
	}
	return rate.Limit(perMinute / 60)
}

func newLimiter(r rate.Limit) *rate.Limiter {
	if r == rate.Inf {
		return rate.NewLimiter(rate.Inf, 0)
	}
	// The burst must hold the costliest call.
	return rate.NewLimiter(r, max(5, int(float64(r)*burstSeconds)))
}

func (t *Transport) init() {
	t.once.Do(func() {
		t.project = newLimiter(perSecond(t.ProjectUnitsPerMinute, DefaultProjectUnitsPerMinute))
		t.users = map[string]*userBucket{}
	})
}

func (t *Transport) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// retryFor merges the request's retry shape over the transport's and the
// defaults.
func (t *Transport) retryFor(ctx context.Context) Retry {
	r := Retry{MaxAttempts: DefaultMaxAttempts, BaseDelay: DefaultBaseDelay, MaxDelay: DefaultMaxDelay}
	over := func(o Retry) {
		if o.MaxAttempts > 0 {
			r.MaxAttempts = o.MaxAttempts
		}
		if o.BaseDelay > 0 {
			r.BaseDelay = o.BaseDelay
		}
		if o.MaxDelay > 0 {
			r.MaxDelay = o.MaxDelay
		}
	}
	over(t.Retry)
	if o, ok := ctx.Value(retryKey).(Retry); ok {
		over(o)
	}
	return r
}

// bucket returns the user's bucket, creating it; idle buckets are dropped
// now and then so memory does not grow with the number of users ever seen.
func (t *Transport) bucket(user string, now time.Time) *userBucket {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.users[user]
	if b == nil {
		if len(t.users) >= 1024 && now.After(t.nextGC) {
			for k, v := range t.users {
				if now.Sub(v.lastUse) > idleBucket && now.After(v.pauseTill) {
					delete(t.users, k)
				}
			}
			t.nextGC = now.Add(10 * time.Second)
		}
		b = &userBucket{lim: newLimiter(perSecond(t.UserUnitsPerMinute, DefaultUserUnitsPerMinute))}
		t.users[user] = b
	}
	b.lastUse = now
	return b
}

func (t *Transport) pause(user string, until time.Time) {
	t.mu.Lock()
	if b := t.users[user]; b != nil && until.After(b.pauseTill) {
		b.pauseTill = until
	}
	t.mu.Unlock()
}

func (t *Transport) pausedUntil(user string) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	if b := t.users[user]; b != nil {
		return b.pauseTill
	}
	return time.Time{}
}

// sleep waits d, or returns ctx's error.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// take waits until lim holds n tokens on the transport's clock, or ctx ends.
func (t *Transport) take(ctx context.Context, lim *rate.Limiter, n int) error {
	r := lim.ReserveN(t.now(), n)
	if !r.OK() {
		return context.DeadlineExceeded // n exceeds the burst: cannot ever be served
	}
	d := r.DelayFrom(t.now())
	if dl, ok := ctx.Deadline(); ok && d > time.Until(dl) { // deadlines are on the wall clock
		r.CancelAt(t.now())
		return context.DeadlineExceeded
	}
	if err := sleep(ctx, d); err != nil {
		r.CancelAt(t.now())
		return err
	}
	return nil
}

// acquire waits until the user is not paused and both buckets hold cost.
func (t *Transport) acquire(ctx context.Context, user string, cost int) error {
	if user != "" {
		b := t.bucket(user, t.now())
		for {
			d := t.pausedUntil(user).Sub(t.now())
			if d <= 0 {
				break
			}
			if err := sleep(ctx, d); err != nil {
				return err
			}
		}
		if err := t.take(ctx, b.lim, cost); err != nil {
			return err
		}
	}
	return t.take(ctx, t.project, cost)
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.init()
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	ctx := req.Context()
	_, cost := Classify(req.Method, req.URL.Path)
	user := UserFrom(ctx)
	cnt := counterFrom(ctx)
	retry := t.retryFor(ctx)
	getBody, replayable, err := replayableBody(req)
	if err != nil {
		return nil, err
	}
	if !replayable {
		retry.MaxAttempts = 1
	}
	for attempt := 1; ; attempt++ {
		if err := t.acquire(ctx, user, cost); err != nil {
			return nil, err
		}
		r, err := requestFor(req, attempt, getBody)
		if err != nil {
			return nil, err
		}
		cnt.add(cost, attempt > 1)
		resp, err := base.RoundTrip(r)
		again, limited, wait := t.judge(req, resp, err)
		if limited {
			cnt.limited()
		}
		if !again || attempt >= retry.MaxAttempts {
			return resp, err
		}
		d := backoff(attempt, retry.BaseDelay, retry.MaxDelay)
		if wait > 0 {
			d = wait + time.Duration(rand.Int64N(int64(retry.BaseDelay)))
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d { // deadlines are on the wall clock
			return resp, err // the answer now beats a retry that cannot happen
		}
		if resp != nil {
			drain(resp.Body)
		}
		if limited && user != "" {
			t.pause(user, t.now().Add(d))
		}
		if err := sleep(ctx, d); err != nil {
			return nil, err
		}
	}
}

// replayableBody returns how to get req's body again for a retry: GetBody,
// or a buffer when the body is small. replayable is false for a body too
// big to keep.
func replayableBody(req *http.Request) (getBody func() (io.ReadCloser, error), replayable bool, err error) {
	if req.Body == nil || req.Body == http.NoBody || req.GetBody != nil {
		return req.GetBody, true, nil
	}
	data, err := io.ReadAll(io.LimitReader(req.Body, maxBufferedBody+1))
	req.Body.Close()
	if err != nil {
		return nil, false, err
	}
	getBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	return getBody, len(data) <= maxBufferedBody, nil
}

// requestFor returns the request to send for attempt: req itself the first
// time (unless its body was buffered), else a clone with a fresh body.
func requestFor(req *http.Request, attempt int, getBody func() (io.ReadCloser, error)) (*http.Request, error) {
	if attempt == 1 && (getBody == nil || req.GetBody != nil) {
		return req, nil
	}
	r := req.Clone(req.Context())
	if getBody != nil {
		b, err := getBody()
		if err != nil {
			return nil, err
		}
		r.Body = b
	}
	return r, nil
}

// judge decides whether an attempt's outcome is worth another try, whether
// it was a rate-limit answer, and how long Gmail asked to wait.
func (t *Transport) judge(req *http.Request, resp *http.Response, err error) (again, limited bool, wait time.Duration) {
	if err != nil {
		// Network errors: retry only when nothing was sent that could have
		// had an effect (Gmail reads are idempotent; so is any GET).
		return req.Context().Err() == nil && (req.Method == http.MethodGet || req.Method == http.MethodHead), false, 0
	}
	switch k := classifyStatus(resp.StatusCode, reasonsOf(resp)); {
	case k == KindRateLimited:
		return true, true, ParseRetryAfter(resp.Header.Get("Retry-After"), t.now())
	case k == KindUnavailable && resp.StatusCode != http.StatusNotImplemented:
		return true, false, ParseRetryAfter(resp.Header.Get("Retry-After"), t.now())
	}
	return false, false, 0
}

// reasonsOf reads the error reasons of a 403 answer (restoring its body);
// other answers need none to be classified.
func reasonsOf(resp *http.Response) []string {
	if resp.StatusCode != http.StatusForbidden {
		return nil
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(data))
	var body struct {
		Error struct {
			Errors []struct {
				Reason string `json:"reason"`
			} `json:"errors"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &body) != nil {
		return nil
	}
	out := make([]string, 0, len(body.Error.Errors))
	for _, e := range body.Error.Errors {
		out = append(out, e.Reason)
	}
	return out
}

func (c *Counter) add(cost int, retry bool) {
	if c == nil {
		return
	}
	c.Calls.Add(1)
	c.Units.Add(int64(cost))
	if retry {
		c.Retries.Add(1)
	}
}

func (c *Counter) limited() {
	if c != nil {
		c.RateLimited.Add(1)
	}
}

// backoff is exponential with full jitter: a random delay in [d/2, d) with
// d = base * 2^(attempt-1), capped at max.
func backoff(attempt int, base, max time.Duration) time.Duration {
	d := base << min(attempt-1, 20)
	if d <= 0 || d > max {
		d = max
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func drain(b io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(b, 64<<10))
	b.Close()
}
