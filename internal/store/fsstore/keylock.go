package fsstore

import (
	"context"
	"sync"
)

// keyLocks serialises, within one process, the transactions on one document.
// Firestore transactions are pessimistic: concurrent read-write transactions
// on one document take turns through aborts and backoff (the emulator even
// waits for a lock timeout of about 2 s), so contention that one instance can
// resolve locally costs seconds. Transactions from other instances still
// contend in Firestore, which keeps the guarantees; this only removes
// contention an instance would otherwise have with itself.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	ch   chan struct{} // holds a token while locked
	refs int           // holders and waiters; the entry goes when it drops to 0
}

// lock waits until key is free or ctx ends, and returns the function that
// frees key.
func (l *keyLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*keyLock{}
	}
	k := l.m[key]
	if k == nil {
		k = &keyLock{ch: make(chan struct{}, 1)}
		l.m[key] = k
	}
	k.refs++
	l.mu.Unlock()

	release := func() {
		l.mu.Lock()
		if k.refs--; k.refs == 0 {
			delete(l.m, key)
		}
		l.mu.Unlock()
	}
	select {
	case k.ch <- struct{}{}:
		return func() { <-k.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
