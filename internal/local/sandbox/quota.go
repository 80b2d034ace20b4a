package sandbox

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"example.com/gmailoauth/internal/gmail"
)

// QuotaLimits are the Gmail limits the sandbox enforces, per user and per
// project (the sandbox is one project), charging every call what
// gmail.Costs says, as Gmail does since 2026-05-01.
//
// Google publishes the limits per minute but not how it meters them. The
// sandbox meters each as a one-minute allowance that refills continuously:
// it holds at most a minute's units (the limit) and gains the limit/60
// every second, so a user can spend a minute's worth at once and then the
// limit's pace, what Google's older quota page called "a moving average
// (allows short bursts)". A call the allowance cannot pay for is refused
// and costs nothing: over the user's limit with 429 userRateLimitExceeded
// (RESOURCE_EXHAUSTED), over the project's with 403 rateLimitExceeded, as
// Gmail's quota table names the two, each with a Retry-After in seconds.
type QuotaLimits struct {
	// UserPerMinute and ProjectPerMinute are the limits in quota units per
	// minute; 0 means Gmail's (gmail.DefaultUserUnitsPerMinute and
	// gmail.DefaultProjectUnitsPerMinute), negative means unlimited.
	UserPerMinute    float64
	ProjectPerMinute float64
	// Window is how much of the limit the allowance holds at once, as a
	// time: 0 means a minute (the limit itself). Tests that want an
	// allowance to refill within a second set a second.
	Window time.Duration
}

// withDefaults returns l with its zero fields filled.
func (l QuotaLimits) withDefaults() QuotaLimits {
	if l.UserPerMinute == 0 {
		l.UserPerMinute = gmail.DefaultUserUnitsPerMinute
	}
	if l.ProjectPerMinute == 0 {
		l.ProjectPerMinute = gmail.DefaultProjectUnitsPerMinute
	}
	if l.Window <= 0 {
		l.Window = time.Minute
	}
	return l
}

// allowance is one limit's state: units available at at.
type allowance struct {
	units float64
	at    time.Time
	used  bool // units and at are set
}

// charge takes cost from the allowance of perMinute (holding window's
// worth) at now; when it cannot, it takes nothing and returns how long
// until it could.
func (a *allowance) charge(perMinute float64, window time.Duration, cost float64, now time.Time) (ok bool, wait time.Duration) {
	if perMinute < 0 {
		return true, 0
	}
	rate := perMinute / 60
	capacity := math.Max(rate*window.Seconds(), 1)
	switch {
	case !a.used:
		a.units, a.at, a.used = capacity, now, true
	case now.After(a.at):
		a.units += now.Sub(a.at).Seconds() * rate
		a.at = now
	default:
		a.at = now // a clock that stepped back counts on from now
	}
	a.units = math.Min(a.units, capacity) // also when the limits were lowered
	if a.units >= cost {
		a.units -= cost
		return true, 0
	}
	return false, time.Duration(math.Ceil((cost - a.units) / rate * float64(time.Second)))
}

// refund gives back cost taken by charge.
func (a *allowance) refund(cost float64) { a.units += cost }

// chargeLocked charges u's and the project's allowances for cost. When one
// refuses, it writes Gmail's answer and returns false. s.mu must be held.
func (s *Sandbox) chargeLocked(w http.ResponseWriter, u *user, cost int, now time.Time) bool {
	l := s.quotaLimits
	ok, wait := u.quota.charge(l.UserPerMinute, l.Window, float64(cost), now)
	if !ok {
		s.bumpStat(func(st *Stats) { st.RateLimited++ })
		retryAfter(w, wait)
		msg := "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user' of service " +
			"'gmail.googleapis.com' for consumer 'project_number:sandbox'."
		gmailError(w, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", msg,
			gErrItem{Message: msg, Domain: "usageLimits", Reason: "userRateLimitExceeded"})
		return false
	}
	if ok, wait := s.projectQuota.charge(l.ProjectPerMinute, l.Window, float64(cost), now); !ok {
		u.quota.refund(float64(cost))
		s.bumpStat(func(st *Stats) { st.RateLimited++; st.RateLimitedProject++ })
		retryAfter(w, wait)
		gmailError(w, http.StatusForbidden, "PERMISSION_DENIED", "Rate Limit Exceeded",
			gErrItem{Message: "Rate Limit Exceeded", Domain: "usageLimits", Reason: "rateLimitExceeded"})
		return false
	}
	return true
}

func retryAfter(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
}

// SetQuotaLimits replaces the limits the sandbox enforces (zero fields:
// Gmail's). Allowances already in use keep what they hold.
func (s *Sandbox) SetQuotaLimits(l QuotaLimits) {
	s.mu.Lock()
	s.quotaLimits = l.withDefaults()
	s.mu.Unlock()
}

// QuotaLimits returns the limits the sandbox enforces.
func (s *Sandbox) QuotaLimits() QuotaLimits {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.quotaLimits
}
