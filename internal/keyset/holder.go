package keyset

import (
	"context"
	"regexp"
	"sync"
	"sync/atomic"
	"time"
)

// idRE is the format of key ids: what Generate and Rotate make ("enc-…",
// "sess-…") and what a hand-written keyset uses ("k1", "s1").
var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidID reports whether id has the format of a key id: 1 to 64 letters,
// digits, '.', '_' or '-', starting with a letter or digit. Parse refuses
// keysets with other ids, so no reload can ever find one.
func ValidID(id string) bool { return idRE.MatchString(id) }

// Has reports whether the keyset holds a key (of either kind) with id.
func (k *Keyset) Has(id string) bool {
	_, enc := k.enc[id]
	_, sess := k.sess[id]
	return enc || sess
}

// DefaultReloadInterval is how often, at most, a Holder re-reads the
// keyset for key ids it lacks.
const DefaultReloadInterval = 30 * time.Second

// reloadTimeout bounds one reload, which outlives the caller that started it.
const reloadTimeout = 30 * time.Second

// Holder holds an instance's keyset and reads it again when a session or a
// ciphertext names a key id it lacks (another instance may have started
// using a rotated keyset). Anyone can send a token naming any key id, so
// one policy bounds what that costs: a key id not of the keyset's format
// (ValidID) is refused before any reload, concurrent reloads are one, and
// a new reload starts at most once per interval; key ids still unknown
// meanwhile are refused. It is safe for concurrent use.
type Holder struct {
	load     func(context.Context) (*Keyset, error)
	interval time.Duration
	now      func() time.Time

	cur atomic.Pointer[Keyset]

	mu      sync.Mutex // guards the fields below; never held across a load
	last    time.Time  // when the last reload started
	running *reload    // the reload in flight, if any
}

// reload is one read of the keyset; err is set before done is closed.
type reload struct {
	done chan struct{}
	err  error
}

// NewHolder returns a Holder of ks that reads a new keyset with load, at
// most once per interval (0 = DefaultReloadInterval) on now's clock.
func NewHolder(ks *Keyset, load func(context.Context) (*Keyset, error), interval time.Duration, now func() time.Time) *Holder {
	if interval <= 0 {
		interval = DefaultReloadInterval
	}
	if now == nil {
		now = time.Now
	}
	h := &Holder{load: load, interval: interval, now: now}
	h.cur.Store(ks)
	return h
}

// Keys returns the current keyset.
func (h *Holder) Keys() *Keyset { return h.cur.Load() }

// ReloadFor reads the keyset again because kid is not in it, when the
// policy allows, and returns nil once the keyset holds kid. It returns
// ErrUnknownKey when kid is malformed, when a reload ran less than an
// interval ago, or when the new keyset lacks kid too, and the load's error
// when the keyset could not be read.
func (h *Holder) ReloadFor(ctx context.Context, kid string) error {
	if !ValidID(kid) {
		return ErrUnknownKey
	}
	if h.Keys().Has(kid) {
		return nil // reloaded meanwhile
	}
	// Deciding and joining are one step under mu: a caller that finds a
	// reload running joins it, one that finds a recent reload ended is
	// refused, and only one that finds neither starts a reload.
	h.mu.Lock()
	refused := h.running == nil && !h.last.IsZero() && h.now().Sub(h.last) < h.interval
	var r *reload
	if !refused {
		r = h.startLocked(ctx)
	}
	h.mu.Unlock()
	if refused {
		if h.Keys().Has(kid) {
			return nil // a reload that just ended brought it
		}
		return ErrUnknownKey
	}
	if err := wait(ctx, r); err != nil {
		return err
	}
	if !h.Keys().Has(kid) {
		return ErrUnknownKey
	}
	return nil
}

// Reload reads the keyset now, whatever the interval (an operator's
// rotation, tests), sharing a reload already in flight. The load runs
// under a deadline of its own: a caller that gives up stops waiting, not
// the reload.
func (h *Holder) Reload(ctx context.Context) error {
	h.mu.Lock()
	r := h.startLocked(ctx)
	h.mu.Unlock()
	return wait(ctx, r)
}

// startLocked returns the reload in flight, or starts one. h.mu is held.
func (h *Holder) startLocked(ctx context.Context) *reload {
	if h.running != nil {
		return h.running
	}
	r := &reload{done: make(chan struct{})}
	h.running, h.last = r, h.now()
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reloadTimeout)
	go func() {
		defer cancel()
		ks, err := h.load(lctx)
		if err == nil {
			h.cur.Store(ks)
		}
		h.mu.Lock()
		r.err, h.running = err, nil
		h.mu.Unlock()
		close(r.done)
	}()
	return r
}

// wait waits for r to end, or for ctx.
func wait(ctx context.Context, r *reload) error {
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}
