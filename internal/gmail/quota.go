package gmail

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Gmail's limits for projects created since 2026-05-01 (QuotaPage) and the
// transport's defaults.
const (
	// DefaultUserUnitsPerMinute is Gmail's per-user limit, per minute and
	// per project.
	DefaultUserUnitsPerMinute = 6_000
	// LegacyUserUnitsPerMinute is the per-user limit of projects that used
	// the Gmail API between November 2025 and April 2026: they keep it
	// until Google's Standard Tier limits reach every project on 2027-04-01.
	LegacyUserUnitsPerMinute = 15_000
	// DefaultProjectUnitsPerMinute is Gmail's per-project limit.
	DefaultProjectUnitsPerMinute = 1_200_000
	// DefaultProjectUnitsPerDay is Gmail's daily billing threshold per
	// project: usage above it is billed.
	DefaultProjectUnitsPerDay = 80_000_000

	DefaultMaxAttempts = 6
	DefaultBaseDelay   = 200 * time.Millisecond
	DefaultMaxDelay    = 32 * time.Second

	// DefaultPatience is how long a call a person waits on (the frontend's)
	// may wait for the budget before it is answered rate_limited: a few
	// seconds, so a page that cannot be served now says so at once with a
	// Retry-After instead of hanging.
	DefaultPatience = 2 * time.Second
	// DefaultConcurrentPerUser bounds the frontend requests of one user in
	// flight at once on an instance: a person with a few tabs open, and a
	// quarter of a function instance's 20 concurrent requests at most.
	DefaultConcurrentPerUser = 5

	// userMargin is the part of a user's minute the user's bucket does not
	// release at once: calls may reach Gmail later than the bucket released
	// them, and a call that arrives early must still find Gmail's
	// allowance.
	userMargin = time.Second
	// projectBurst is what the project bucket releases at once. Instances
	// do not share it, so each keeps its bursts small.
	projectBurst = time.Second
	// maxBufferedBody is the largest request body kept for a retry.
	maxBufferedBody = 1 << 20
	// idleBucket: a user's bucket unused this long is full again, so it may
	// be dropped (equivalent to a new one) to keep memory flat.
	idleBucket = 2 * time.Minute
	// personActive is how long after a person's call (Service.DoCost) the
	// user counts as using the app: backfill leaves them the reserve.
	personActive = 2 * time.Minute
)

// MetadataPageCost is what a page of n messages with their metadata
// costs: one messages.list and n messages.get (format=metadata).
func MetadataPageCost(n int) int {
	return Costs[MethodMessagesList].Units + n*Costs[MethodMessagesGet].Units
}

// DefaultReserve is what calls made with Backfill leave in a user's budget
// for the others: one frontend page of 100 messages with their metadata
// (2,005 units).
var DefaultReserve = MetadataPageCost(100)

type ctxKey int

const (
	userKey ctxKey = iota
	counterKey
	retryKey
	patienceKey
	backfillKey
	prepaidKey
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
	Units       atomic.Int64 // quota units spent by those requests
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

// WithPatience returns ctx whose Gmail requests wait at most d for the
// budget (the user's, the project's, or a pause Gmail asked for); a
// request that would wait longer fails at once with a *BudgetError. 0
// means as long as the context's deadline allows.
func WithPatience(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, patienceKey, d)
}

func patienceFrom(ctx context.Context) time.Duration {
	d, _ := ctx.Value(patienceKey).(time.Duration)
	return d
}

// Backfill returns ctx whose Gmail requests yield to a person: while the
// user is using the app (a frontend call in the last two minutes), they
// leave the Transport's Reserve in the user's budget, so the person's next
// page is served at once while older mail is being synced. When nobody is
// waiting, backfill goes at the budget's full pace.
func Backfill(ctx context.Context) context.Context {
	return context.WithValue(ctx, backfillKey, true)
}

func isBackfill(ctx context.Context) bool {
	b, _ := ctx.Value(backfillKey).(bool)
	return b
}

// Limit names the budget a *BudgetError ran into.
type Limit string

// Limits a *BudgetError names.
const (
	// LimitUser is the user's per-minute budget (Transport.UserUnitsPerMinute).
	LimitUser Limit = "user"
	// LimitProject is the instance's share of the project's per-minute budget.
	LimitProject Limit = "project"
	// LimitConcurrency is the number of the user's requests in flight at once.
	LimitConcurrency Limit = "concurrency"
	// LimitGmail is a pause Gmail asked for: it answered rate-limited
	// (429, or 403 rateLimitExceeded/userRateLimitExceeded).
	LimitGmail Limit = "gmail"
)

// BudgetError means a Gmail call was not sent: the budget named by Limit
// would not have let it go within the caller's patience or deadline. Wait
// is when it would. Only LimitGmail comes from an answer of Gmail's; the
// others are the functions' own accounting, made so that Gmail never has
// to refuse.
type BudgetError struct {
	Limit Limit
	Wait  time.Duration
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("gmail budget: %s limit; ready in %s", e.Limit, e.Wait.Round(time.Millisecond))
}

// Transport is an http.RoundTripper for the Gmail API that spends quota
// units the way Gmail counts them (Costs) and backs off when Gmail says no.
//
// Before a request is sent, its cost is taken from two token buckets on
// the transport's clock: the user's (see WithUser) and the project's,
// shared by every request of the instance. A user's bucket refills at the
// per-minute limit spread over the minute and holds the minute's units
// less one second's worth, so a user can spend most of a minute at once
// (a page of metadata, the newest mail of a first sync) and then goes at
// the limit's pace; the project's bucket releases one second's worth at
// once. Answers 429, 5xx and 403 rateLimitExceeded/userRateLimitExceeded
// are retried with exponential backoff and full jitter, never sooner than
// a Retry-After asks, for a bounded number of attempts; a user who got a
// rate-limit answer is paused as a whole, so a storm does not keep hitting
// Gmail.
//
// A request that would have to wait longer than its patience (WithPatience)
// or its deadline for the budget is not sent: RoundTrip fails with a
// *BudgetError saying which budget and how long. Requests made with
// Backfill leave Reserve units in the user's bucket for a person using the
// app.
//
// Set the fields, then use it; it is safe for concurrent use. One Transport
// per instance, so the project bucket is shared.
type Transport struct {
	// Base sends the requests; nil means http.DefaultTransport.
	Base http.RoundTripper
	// UserUnitsPerMinute and ProjectUnitsPerMinute are the limits the
	// buckets keep to; 0 means Gmail's defaults, negative means unlimited.
	UserUnitsPerMinute    float64
	ProjectUnitsPerMinute float64
	// Reserve is what Backfill requests leave in a user's bucket; 0 means
	// DefaultReserve.
	Reserve int
	// Retry is the default retry shape (zero fields: the Default* values).
	Retry Retry
	// Budget, when set, is told every unit spent (the project's daily
	// tally).
	Budget *Budget
	// Now is the clock of the buckets, pauses and Retry-After dates; nil
	// means time.Now. Context deadlines are always read on the wall clock.
	Now func() time.Time

	once    sync.Once
	mu      sync.Mutex
	project *bucket
	users   map[string]*bucket
	nextGC  time.Time
}

// bucket is a token bucket: rate units a second, at most capacity at once.
// Tokens below zero are units promised to requests that wait their turn.
// A nil *bucket is unlimited.
type bucket struct {
	rate, capacity float64
	tokens         float64
	at             time.Time
	pauseTill      time.Time // set by a Gmail rate-limit answer
	lastUse        time.Time
	lastPerson     time.Time // the last prepaid (frontend) call
}

func newBucket(perMinute, def float64, burst func(rate float64) float64, now time.Time) *bucket {
	switch {
	case perMinute == 0:
		perMinute = def
	case perMinute < 0:
		return nil
	}
	rate := perMinute / 60
	c := burst(rate)
	return &bucket{rate: rate, capacity: c, tokens: c, at: now}
}

func (b *bucket) fill(now time.Time) {
	if b == nil {
		return
	}
	d := now.Sub(b.at).Seconds()
	if d > 0 {
		b.tokens = math.Min(b.capacity, b.tokens+d*b.rate)
	}
	// A clock that stepped back counts on from where it is now: otherwise
	// the bucket would not refill until the clock is back where it was.
	b.at = now
}

// readyIn returns how long until the bucket holds n units above floor.
func (b *bucket) readyIn(n, floor float64) time.Duration {
	if b == nil {
		return 0
	}
	short := n + floor - b.tokens
	if short <= 0 {
		return 0
	}
	return time.Duration(math.Ceil(short / b.rate * float64(time.Second)))
}

func (b *bucket) take(n float64) {
	if b != nil {
		b.tokens -= n
	}
}

func (b *bucket) give(n float64) {
	if b != nil {
		b.tokens = math.Min(b.capacity, b.tokens+n)
	}
}

func (t *Transport) init() {
	t.once.Do(func() {
		t.project = newBucket(t.ProjectUnitsPerMinute, DefaultProjectUnitsPerMinute,
			func(rate float64) float64 { return math.Max(rate*projectBurst.Seconds(), 1) }, t.now())
		t.users = map[string]*bucket{}
	})
}

func (t *Transport) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func (t *Transport) reserve() float64 {
	if t.Reserve > 0 {
		return float64(t.Reserve)
	}
	return float64(DefaultReserve)
}

// UserBurst returns how many units one user may spend at once: the
// capacity of a user's bucket (0 when users are unlimited). A request
// that costs more can never be served at once.
func (t *Transport) UserBurst() int {
	t.init()
	b := t.newUserBucket(t.now())
	if b == nil {
		return 0
	}
	return int(b.capacity)
}

func (t *Transport) newUserBucket(now time.Time) *bucket {
	return newBucket(t.UserUnitsPerMinute, DefaultUserUnitsPerMinute,
		func(rate float64) float64 { return math.Max(rate*(time.Minute-userMargin).Seconds(), 1) }, now)
}

// userBucket returns the user's bucket, creating it; idle buckets are
// dropped now and then so memory does not grow with the number of users
// ever seen. t.mu must be held; nil means unlimited.
func (t *Transport) userBucket(user string, now time.Time) *bucket {
	if user == "" {
		return nil
	}
	b, ok := t.users[user]
	if !ok {
		if len(t.users) >= 1024 && now.After(t.nextGC) {
			for k, v := range t.users {
				if v == nil {
					delete(t.users, k)
					continue
				}
				v.fill(now)
				if now.Sub(v.lastUse) > idleBucket && v.tokens >= v.capacity && now.After(v.pauseTill) {
					delete(t.users, k)
				}
			}
			t.nextGC = now.Add(10 * time.Second)
		}
		b = t.newUserBucket(now)
		t.users[user] = b
	}
	if b != nil {
		b.lastUse = now
	}
	return b
}

func (t *Transport) pause(user string, until time.Time) {
	t.mu.Lock()
	if b := t.users[user]; b != nil && until.After(b.pauseTill) {
		b.pauseTill = until
	}
	t.mu.Unlock()
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

// acquire waits until the user is not paused and both buckets hold cost,
// and takes it; it fails with a *BudgetError when that would take longer
// than the request's patience or deadline. A Backfill request waits until
// the user's bucket holds cost above the reserve, and takes nothing
// before; the others take their cost at once (the buckets may go below
// zero) and wait for their turn, so requests are served in order.
func (t *Transport) acquire(ctx context.Context, user string, cost float64) error {
	patience, backfill := patienceFrom(ctx), isBackfill(ctx)
	for {
		now := t.now()
		t.mu.Lock()
		ub := t.userBucket(user, now)
		ub.fill(now)
		t.project.fill(now)
		var wait time.Duration
		limit := LimitUser
		if ub != nil && ub.pauseTill.After(now) {
			wait, limit = ub.pauseTill.Sub(now), LimitGmail
		}
		// A backfill request waits for its cost above the reserve without
		// taking anything, so others go first; one that costs more than a
		// bucket holds can only wait its turn like the others.
		yield := backfill && ub != nil && now.Sub(ub.lastPerson) < personActive &&
			cost <= ub.capacity && (t.project == nil || cost <= t.project.capacity)
		floor := 0.0
		if yield {
			floor = math.Max(0, math.Min(t.reserve(), ub.capacity-cost))
		}
		if w := ub.readyIn(cost, floor); w > wait {
			wait, limit = w, LimitUser
		}
		if w := t.project.readyIn(cost, 0); w > wait {
			wait, limit = w, LimitProject
		}
		if err := tooLong(ctx, wait, patience, limit); err != nil {
			t.mu.Unlock()
			return err
		}
		if wait > 0 && (yield || limit == LimitGmail) {
			t.mu.Unlock() // nothing taken: look again once the wait is over
			if err := sleep(ctx, wait); err != nil {
				return err
			}
			continue
		}
		ub.take(cost)
		t.project.take(cost)
		t.mu.Unlock()
		if err := sleep(ctx, wait); err != nil {
			t.refund(user, cost)
			return err
		}
		return nil
	}
}

// tooLong returns a *BudgetError when wait is beyond the patience or the
// context's deadline (read on the wall clock, as every deadline).
func tooLong(ctx context.Context, wait, patience time.Duration, limit Limit) error {
	if wait <= 0 {
		return nil
	}
	if patience > 0 && wait > patience {
		return &BudgetError{Limit: limit, Wait: wait}
	}
	if dl, ok := ctx.Deadline(); ok && wait > time.Until(dl) {
		return &BudgetError{Limit: limit, Wait: wait}
	}
	return nil
}

// refund gives units back to the user's and the project's buckets.
func (t *Transport) refund(user string, units float64) {
	if units <= 0 {
		return
	}
	now := t.now()
	t.mu.Lock()
	ub := t.userBucket(user, now)
	ub.fill(now)
	ub.give(units)
	t.project.fill(now)
	t.project.give(units)
	t.mu.Unlock()
}

// readyIn returns how long until the user's and the project's buckets
// could serve units.
func (t *Transport) readyIn(user string, units float64) time.Duration {
	t.init()
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	ub := t.userBucket(user, now)
	ub.fill(now)
	t.project.fill(now)
	wait := max(ub.readyIn(units, 0), t.project.readyIn(units, 0))
	if ub != nil && ub.pauseTill.After(now) {
		wait = max(wait, ub.pauseTill.Sub(now))
	}
	return wait
}

// prepaid is units taken from the buckets at once for the requests of one
// call (Service.DoCost); those requests draw on it before the buckets.
type prepaid struct {
	mu   sync.Mutex
	left float64
}

func (p *prepaid) draw(n float64) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.left < n {
		return false
	}
	p.left -= n
	return true
}

func (p *prepaid) rest() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.left
	p.left = 0
	return n
}

// prepay takes units from the user's and the project's buckets at once,
// within ctx's patience, for the requests made with the returned context;
// done gives back what they did not use.
func (t *Transport) prepay(ctx context.Context, user string, units int) (_ context.Context, done func(), err error) {
	t.init()
	t.mu.Lock()
	if ub := t.userBucket(user, t.now()); ub != nil {
		ub.lastPerson = t.now()
	}
	t.mu.Unlock()
	if err := t.acquire(ctx, user, float64(units)); err != nil {
		return nil, nil, err
	}
	p := &prepaid{left: float64(units)}
	return context.WithValue(ctx, prepaidKey, p), func() { t.refund(user, p.rest()) }, nil
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.init()
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	ctx := req.Context()
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
	cost, err := costOf(req, getBody)
	if err != nil {
		return nil, err
	}
	pre, _ := ctx.Value(prepaidKey).(*prepaid)
	for attempt := 1; ; attempt++ {
		if attempt > 1 || !pre.draw(float64(cost)) {
			if err := t.acquire(ctx, user, float64(cost)); err != nil {
				return nil, err
			}
		}
		r, err := requestFor(req, attempt, getBody)
		if err != nil {
			return nil, err
		}
		cnt.add(cost, attempt > 1)
		t.Budget.Spend(cost)
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
		if limited && user != "" {
			t.pause(user, t.now().Add(d))
		}
		if p := patienceFrom(ctx); limited && p > 0 && d > p {
			return resp, err // a person is waiting: Gmail's answer (and its Retry-After) now
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d { // deadlines are on the wall clock
			return resp, err // the answer now beats a retry that cannot happen
		}
		if resp != nil {
			drain(resp.Body)
		}
		if err := sleep(ctx, d); err != nil {
			return nil, err
		}
	}
}

// costOf returns what req costs: its method's price, or for a batch the
// sum of its calls' prices.
func costOf(req *http.Request, getBody func() (io.ReadCloser, error)) (int, error) {
	name, cost := Classify(req.Method, req.URL)
	if name != MethodBatch || getBody == nil {
		return cost, nil
	}
	b, err := getBody()
	if err != nil {
		return 0, err
	}
	defer b.Close()
	data, err := io.ReadAll(io.LimitReader(b, maxBufferedBody))
	if err != nil {
		return 0, err
	}
	return BatchCost(req.Header.Get("Content-Type"), data)
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
