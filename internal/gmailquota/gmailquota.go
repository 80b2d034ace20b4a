// Package gmailquota is an http.RoundTripper for the Gmail API that spends
// quota units the way Gmail counts them and backs off when Gmail says no.
//
// Every request is classified from its method and path into a Gmail method
// and its cost in quota units (messages.list 5, messages.get 5, history.list
// 2, getProfile 1, labels 1, anything else 5). Before it is sent, the cost is
// taken from two token buckets (golang.org/x/time/rate): one per user (the
// user comes from the request's context, see WithUser: the transport cannot
// see who an access token belongs to) and one for the whole project, shared
// by every request of the instance. Answers 429, 5xx and 403
// rateLimitExceeded/userRateLimitExceeded are retried with exponential
// backoff and full jitter, never sooner than a Retry-After header asks, for a
// bounded number of attempts; a user who got a 429 is paused as a whole (all
// of that user's requests wait), so a storm does not keep hitting Gmail.
//
// Counters (calls, units, rate-limit answers, retries) are kept for the
// instance and, when the context carries one (WithCounter), for the caller.
package gmailquota

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Gmail's published limits, the defaults.
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
)

// Method names and costs in quota units.
const (
	MethodMessagesList = "messages.list"
	MethodMessagesGet  = "messages.get"
	MethodHistoryList  = "history.list"
	MethodGetProfile   = "getProfile"
	MethodLabelsList   = "labels.list"
	MethodLabelsGet    = "labels.get"
	MethodOther        = "other"
)

// Classify returns the Gmail method of a request and its cost in quota units.
func Classify(method, path string) (string, int) {
	i := strings.Index(path, "/gmail/v1/users/")
	if i < 0 || method != http.MethodGet {
		return MethodOther, 5
	}
	rest := path[i+len("/gmail/v1/users/"):]
	parts := strings.Split(strings.Trim(rest, "/"), "/") // {userId}/messages/{id}
	switch {
	case len(parts) == 2 && parts[1] == "messages":
		return MethodMessagesList, 5
	case len(parts) == 3 && parts[1] == "messages":
		return MethodMessagesGet, 5
	case len(parts) == 2 && parts[1] == "history":
		return MethodHistoryList, 2
	case len(parts) == 2 && parts[1] == "profile":
		return MethodGetProfile, 1
	case len(parts) == 2 && parts[1] == "labels":
		return MethodLabelsList, 1
	case len(parts) == 3 && parts[1] == "labels":
		return MethodLabelsGet, 1
	}
	return MethodOther, 5
}

type ctxKey int

const (
	userKey ctxKey = iota
	counterKey
	retryKey
)

// WithUser returns ctx whose Gmail requests are charged to userID's bucket.
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

// WithCounter returns ctx whose Gmail requests are also counted in c.
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
// with different patience (a user waiting on a page, a background sweep) can
// share one Transport and so one project bucket.
func WithRetry(ctx context.Context, r Retry) context.Context {
	return context.WithValue(ctx, retryKey, r)
}

// Stats is a snapshot of an instance's counters.
type Stats struct {
	Calls       int64
	Units       int64
	RateLimited int64
	Retries     int64
	ByMethod    map[string]int64
}

// Transport is the quota-aware RoundTripper. Set the fields, then use it; it
// is safe for concurrent use. One Transport per instance, so the project
// bucket is shared by every request.
type Transport struct {
	// Base sends the requests; nil means http.DefaultTransport.
	Base http.RoundTripper
	// UserUnitsPerMinute and ProjectUnitsPerMinute are the buckets' rates;
	// 0 means Gmail's defaults, negative means unlimited.
	UserUnitsPerMinute    float64
	ProjectUnitsPerMinute float64
	// MaxAttempts bounds the tries of one request (0 = DefaultMaxAttempts).
	MaxAttempts int
	// BaseDelay and MaxDelay shape the exponential backoff.
	BaseDelay, MaxDelay time.Duration

	once    sync.Once
	project *rate.Limiter

	mu      sync.Mutex
	users   map[string]*userBucket
	nextGC  time.Time
	total   Counter
	methods sync.Map // method -> *atomic.Int64
}

type userBucket struct {
	lim       *rate.Limiter
	pauseTill time.Time // set by a 429/Retry-After; guarded by Transport.mu
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

// Stats returns the instance's counters.
func (t *Transport) Stats() Stats {
	s := Stats{Calls: t.total.Calls.Load(), Units: t.total.Units.Load(), RateLimited: t.total.RateLimited.Load(),
		Retries: t.total.Retries.Load(), ByMethod: map[string]int64{}}
	t.methods.Range(func(k, v any) bool {
		s.ByMethod[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return s
}

// bucket returns the user's bucket, creating it; idle buckets (full again,
// so equivalent to new ones) are dropped now and then so memory does not
// grow with the number of users ever seen.
func (t *Transport) bucket(user string, now time.Time) *userBucket {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.users[user]
	if b == nil {
		if len(t.users) >= 1024 && now.After(t.nextGC) {
			idle := 2 * time.Minute
			for k, v := range t.users {
				if now.Sub(v.lastUse) > idle && now.After(v.pauseTill) {
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

// acquire waits until the user is not paused and both buckets hold cost.
func (t *Transport) acquire(ctx context.Context, user string, cost int) error {
	if user != "" {
		b := t.bucket(user, time.Now())
		for {
			until := t.pausedUntil(user)
			if d := time.Until(until); d > 0 {
				if err := sleep(ctx, d); err != nil {
					return err
				}
				continue
			}
			break
		}
		if err := b.lim.WaitN(ctx, cost); err != nil {
			return err
		}
	}
	return t.project.WaitN(ctx, cost)
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.init()
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	ctx := req.Context()
	method, cost := Classify(req.Method, req.URL.Path)
	user := UserFrom(ctx)
	cnt := counterFrom(ctx)
	attempts := t.MaxAttempts
	baseDelay, maxDelay := t.BaseDelay, t.MaxDelay
	if r, ok := ctx.Value(retryKey).(Retry); ok {
		if r.MaxAttempts > 0 {
			attempts = r.MaxAttempts
		}
		if r.BaseDelay > 0 {
			baseDelay = r.BaseDelay
		}
		if r.MaxDelay > 0 {
			maxDelay = r.MaxDelay
		}
	}
	if attempts <= 0 {
		attempts = DefaultMaxAttempts
	}
	if baseDelay <= 0 {
		baseDelay = DefaultBaseDelay
	}
	if maxDelay <= 0 {
		maxDelay = DefaultMaxDelay
	}

	// A body is replayable through GetBody, or buffered when small.
	getBody := req.GetBody
	if req.Body != nil && req.Body != http.NoBody && getBody == nil {
		data, err := io.ReadAll(io.LimitReader(req.Body, maxBufferedBody+1))
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		if len(data) > maxBufferedBody {
			attempts = 1 // too big to keep: no retry
		}
		getBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	}

	for attempt := 1; ; attempt++ {
		if err := t.acquire(ctx, user, cost); err != nil {
			return nil, err
		}
		r := req
		if attempt > 1 || getBody != nil && req.GetBody == nil {
			r = req.Clone(ctx)
			if getBody != nil {
				b, err := getBody()
				if err != nil {
					return nil, err
				}
				r.Body = b
			}
		}
		t.count(cnt, method, cost, attempt > 1)
		resp, err := base.RoundTrip(r)
		retry, limited, wait := false, false, time.Duration(0)
		if err != nil {
			// Network errors: retry only when nothing was sent that could
			// have had an effect (Gmail reads are idempotent; so is any GET).
			retry = ctx.Err() == nil && (req.Method == http.MethodGet || req.Method == http.MethodHead)
		} else {
			retry, limited = retryable(resp)
			wait = retryAfter(resp.Header.Get("Retry-After"))
		}
		if limited {
			t.total.RateLimited.Add(1)
			if cnt != nil {
				cnt.RateLimited.Add(1)
			}
		}
		if !retry || attempt >= attempts {
			return resp, err
		}
		d := backoff(attempt, baseDelay, maxDelay)
		if wait > 0 {
			d = wait + time.Duration(rand.Int64N(int64(baseDelay)))
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			return resp, err // the answer now beats a retry that cannot happen
		}
		if resp != nil {
			drain(resp.Body)
		}
		if limited && user != "" {
			t.pause(user, time.Now().Add(d))
		}
		if serr := sleep(ctx, d); serr != nil {
			return nil, serr
		}
	}
}

func (t *Transport) count(cnt *Counter, method string, cost int, retry bool) {
	for _, c := range []*Counter{&t.total, cnt} {
		if c == nil {
			continue
		}
		c.Calls.Add(1)
		c.Units.Add(int64(cost))
		if retry {
			c.Retries.Add(1)
		}
	}
	v, ok := t.methods.Load(method)
	if !ok {
		v, _ = t.methods.LoadOrStore(method, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

// backoff is exponential with full jitter: a random delay in
// [d/2, d) with d = base * 2^(attempt-1), capped at max.
func backoff(attempt int, base, max time.Duration) time.Duration {
	d := base << min(attempt-1, 20)
	if d <= 0 || d > max {
		d = max
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// retryable reports whether resp is worth another try, and whether it is a
// rate-limit answer. A 403 is read (and its body restored) to see its reason.
func retryable(resp *http.Response) (retry, limited bool) {
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return true, true
	case resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
		return true, false
	case resp.StatusCode == http.StatusForbidden:
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
		if json.Unmarshal(data, &body) == nil {
			for _, e := range body.Error.Errors {
				if e.Reason == "rateLimitExceeded" || e.Reason == "userRateLimitExceeded" {
					return true, true
				}
			}
		}
	}
	return false, false
}

// retryAfter parses Retry-After (seconds or an HTTP date).
func retryAfter(s string) time.Duration {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if at, err := http.ParseTime(s); err == nil {
		return max(0, time.Until(at))
	}
	return 0
}

func drain(b io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(b, 64<<10))
	b.Close()
}
