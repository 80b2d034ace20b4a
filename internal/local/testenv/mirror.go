package testenv

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"example.com/gmailoauth/internal/store"
)

// CountingStore is a store.Store that counts the document reads Firestore
// would bill for the calls made through it: one per document a get or a
// query returns (one for a query that returns none), one per 1,000 entries
// a count aggregation counts (at least one). Writes are not counted.
type CountingStore struct {
	store.Store
	reads atomic.Int64
}

// Reads returns the reads counted so far.
func (c *CountingStore) Reads() int64 { return c.reads.Load() }

func (c *CountingStore) add(n int) { c.reads.Add(int64(max(1, n))) }

// GetCredential implements store.Store.
func (c *CountingStore) GetCredential(ctx context.Context, userID string) (*store.Credential, error) {
	c.add(1)
	return c.Store.GetCredential(ctx, userID)
}

// UpdateCredential implements store.Store (the transaction reads the document).
func (c *CountingStore) UpdateCredential(ctx context.Context, userID string, fn store.UpdateFunc) (*store.Credential, error) {
	c.add(1)
	return c.Store.UpdateCredential(ctx, userID, fn)
}

// ListCredentials implements store.Store.
func (c *CountingStore) ListCredentials(ctx context.Context, status, after string, limit int) ([]*store.Credential, error) {
	out, err := c.Store.ListCredentials(ctx, status, after, limit)
	c.add(len(out))
	return out, err
}

// GetMailbox implements store.Store.
func (c *CountingStore) GetMailbox(ctx context.Context, userID string) (*store.Mailbox, error) {
	c.add(1)
	return c.Store.GetMailbox(ctx, userID)
}

// ListMailboxMessages implements store.Store.
func (c *CountingStore) ListMailboxMessages(ctx context.Context, userID, after string, limit int) ([]*store.MessageMeta, error) {
	out, err := c.Store.ListMailboxMessages(ctx, userID, after, limit)
	c.add(len(out))
	return out, err
}

// GetMailboxMessages implements store.Store.
func (c *CountingStore) GetMailboxMessages(ctx context.Context, userID string, ids []string) ([]*store.MessageMeta, error) {
	c.add(len(ids))
	return c.Store.GetMailboxMessages(ctx, userID, ids)
}

// ListMirror implements store.Store.
func (c *CountingStore) ListMirror(ctx context.Context, userID string, q store.MirrorQuery) ([]*store.MessageMeta, error) {
	out, err := c.Store.ListMirror(ctx, userID, q)
	c.add(len(out))
	return out, err
}

// CountMirror implements store.Store.
func (c *CountingStore) CountMirror(ctx context.Context, userID string, q store.MirrorQuery) (int, error) {
	n, err := c.Store.CountMirror(ctx, userID, q)
	c.add((n + 999) / 1000)
	return n, err
}

// Clock is a settable clock for an Env (Options.Now = clock.Now): it stands
// still until a test moves it, so messages the sandbox delivers at once
// share their internal date.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock showing t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Sync runs the offline sync of userID once, as the scheduler would.
func (e *Env) Sync(t testing.TB, userID string) {
	t.Helper()
	if _, err := e.Deps.Syncer.SyncUser(context.Background(), userID); err != nil {
		t.Fatalf("sync %s: %v", userID, err)
	}
}

// GmailCalls returns the number of Gmail calls the sandbox has answered.
func (e *Env) GmailCalls() int {
	n := 0
	for _, c := range e.Sandbox.Stats().GmailCalls {
		n += c
	}
	return n
}

// Serve sends one request through the functions' HTTP handlers (one App
// over this Env, made on first use) and returns the recorded answer.
func (e *Env) Serve(r *http.Request) *httptest.ResponseRecorder {
	e.mu.Lock()
	if e.app == nil {
		e.app = e.NewApp()
	}
	a := e.app
	e.mu.Unlock()
	w := httptest.NewRecorder()
	switch r.URL.Path {
	case "/authorize":
		a.Authorize(w, r)
	case "/callback":
		a.OAuthCallback(w, r)
	default:
		a.ListMessages(w, r)
	}
	return w
}
