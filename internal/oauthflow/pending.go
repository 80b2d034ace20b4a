package oauthflow

import (
	"fmt"
	"sync"
	"time"

	"example.com/gmailoauth/internal/apperr"
)

// Default bounds of the authorizations an instance starts (see
// PendingStates). A few hundred people connecting at once from one
// corporate address, each perhaps twice, stay well under the per-address
// bound.
const (
	DefaultPendingPerAddress = 1000
	DefaultPendingTotal      = 20000
)

// pendingBuckets is how many one-minute buckets cover a state's lifetime:
// a state made in minute m is pending until m+1+10 at the latest.
const pendingBuckets = int64(stateTTL/time.Minute) + 1

// PendingStates bounds the authorizations this instance starts that may
// still be pending: states made in the last stateTTL, per client address
// and in all. Starting an authorization needs no login, so without a bound
// anyone could make the store hold any number of states. Counts are kept
// in one-minute buckets, so memory follows the addresses seen in the last
// ten minutes, not the states. It is safe for concurrent use.
type PendingStates struct {
	perAddress, total int

	mu      sync.Mutex
	all     window
	byAddr  map[string]*window
	sweepAt int // len(byAddr) at which admit next drops idle addresses
}

// NewPendingStates returns bounds of perAddress states per client address
// and total in all (0 = the defaults).
func NewPendingStates(perAddress, total int) *PendingStates {
	if perAddress <= 0 {
		perAddress = DefaultPendingPerAddress
	}
	if total <= 0 {
		total = DefaultPendingTotal
	}
	return &PendingStates{perAddress: perAddress, total: total, byAddr: map[string]*window{}}
}

// window counts states in one-minute buckets.
type window struct {
	minute [pendingBuckets]int64 // the minute (Unix minutes) each bucket counts
	n      [pendingBuckets]int
}

// count returns the states made in the buckets still live at now, and when
// the oldest of those buckets stops counting.
func (w *window) count(now int64) (n int, oldestEnds int64) {
	oldestEnds = -1
	for i := range w.n {
		if w.n[i] > 0 && now-w.minute[i] < pendingBuckets {
			n += w.n[i]
			if end := w.minute[i] + pendingBuckets; oldestEnds < 0 || end < oldestEnds {
				oldestEnds = end
			}
		}
	}
	return n, oldestEnds
}

func (w *window) add(now int64) {
	i := now % pendingBuckets
	if w.minute[i] != now {
		w.minute[i], w.n[i] = now, 0
	}
	w.n[i]++
}

// admit counts one more state for addr at now, or refuses it with 429
// rate_limited and a Retry-After when addr's or the instance's bound is
// reached. An empty addr counts against the total only.
func (p *PendingStates) admit(addr string, at time.Time) error {
	if p == nil {
		return nil
	}
	now := at.Unix() / 60
	p.mu.Lock()
	defer p.mu.Unlock()
	if n, ends := p.all.count(now); n >= p.total {
		return pendingErr("this service", ends, at)
	}
	w := p.byAddr[addr]
	if addr != "" {
		if w == nil {
			p.sweepLocked(now)
			w = &window{}
			p.byAddr[addr] = w
		}
		if n, ends := w.count(now); n >= p.perAddress {
			return pendingErr("your network address", ends, at)
		}
		w.add(now)
	}
	p.all.add(now)
	return nil
}

// sweepLocked drops addresses with nothing pending once the map has doubled
// since the last sweep, so it holds at most about twice the addresses of
// the last ten minutes.
func (p *PendingStates) sweepLocked(now int64) {
	if len(p.byAddr) < max(p.sweepAt, 1024) {
		return
	}
	for a, w := range p.byAddr {
		if n, _ := w.count(now); n == 0 {
			delete(p.byAddr, a)
		}
	}
	p.sweepAt = 2 * len(p.byAddr)
}

// pendingErr is the answer of a refused authorization: retry once the
// oldest counted minute has passed.
func pendingErr(who string, endsMinute int64, at time.Time) *apperr.Error {
	wait := time.Unix(endsMinute*60, 0).Sub(at)
	wait = max(wait.Round(time.Second), time.Second)
	return &apperr.Error{Code: apperr.RateLimited, RetryAfter: wait,
		Message: fmt.Sprintf("too many authorizations were started from %s in the last %s; try again in %s", who, stateTTL, wait)}
}
