package syncer_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"example.com/gmailoauth/internal/gmail"
	"example.com/gmailoauth/internal/local/sandbox"
	"example.com/gmailoauth/internal/local/testenv"
	"example.com/gmailoauth/internal/oauthflow"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/fsstore/fstest"
	"example.com/gmailoauth/internal/store/memstore"
	"example.com/gmailoauth/internal/syncer"
)

// storeKind names the stores the tests run on.
type storeKind string

const (
	memStore storeKind = "memstore"
	fsStore  storeKind = "firestore"
)

// newStore returns a fresh store of kind; the Firestore one skips locally
// (fails in CI) without the emulator.
func newStore(t testing.TB, kind storeKind) store.Store {
	t.Helper()
	if kind == fsStore {
		return fstest.NewStore(t)
	}
	return memstore.New()
}

// forEachStore runs fn on the memstore and, when the emulator is there, on
// Firestore.
func forEachStore(t *testing.T, fn func(t *testing.T, kind storeKind)) {
	for _, k := range []storeKind{memStore, fsStore} {
		t.Run(string(k), func(t *testing.T) {
			if k == fsStore && os.Getenv(fstest.EnvHost) == "" {
				fstest.EmulatorHost(t) // skips locally, fails in CI
			}
			fn(t, k)
		})
	}
}

// env is a thin view of a testenv.Env (the sandbox and the functions'
// own wiring, app.Build) for the sync tests.
type env struct {
	te     *testenv.Env
	sb     *sandbox.Sandbox
	store  store.Store // the store the flow and the syncer were built on
	flow   *oauthflow.Flow
	syncer *syncer.Syncer // env.Deps.Syncer: tests set its fields
}

type envOpts struct {
	mailboxSize int     // default mailbox size of the sandbox (0 = sandbox default, <0 = empty)
	userQuota   float64 // units/minute of the client's per-user bucket (0 = Gmail's default, <0 = unlimited here and at the sandbox)
	projQuota   float64 // units/minute of the client's project bucket (0 = Gmail's default, <0 = unlimited here and at the sandbox)
	logger      *slog.Logger
}

// quotaSetting turns an envOpts quota into a GMAIL_QUOTA_* value.
func quotaSetting(v float64) string {
	if v < 0 {
		return strconv.Itoa(testenv.Unlimited)
	}
	return strconv.FormatInt(int64(v), 10)
}

func newEnv(t testing.TB, kind storeKind, o envOpts) *env {
	t.Helper()
	cfg := map[string]string{"SYNC_CONCURRENCY": "8"}
	if o.userQuota != 0 {
		cfg["GMAIL_QUOTA_USER_PER_MIN"] = quotaSetting(o.userQuota)
	}
	if o.projQuota != 0 {
		cfg["GMAIL_QUOTA_PROJECT_PER_MIN"] = quotaSetting(o.projQuota)
	}
	te := testenv.New(t, testenv.Options{Store: newStore(t, kind), MailboxSize: o.mailboxSize, Env: cfg, Logger: o.logger})
	// A client told that a limit is unlimited meets a Gmail without it.
	var lim sandbox.QuotaLimits
	if o.userQuota < 0 {
		lim.UserPerMinute = -1
	}
	if o.projQuota < 0 {
		lim.ProjectPerMinute = -1
	}
	te.Sandbox.SetQuotaLimits(lim)
	sy := te.Deps.Syncer
	// The tests' defaults: every message (config would say newer_than:30d),
	// no sweep deadline other than the context's, quick backoff.
	sy.Query = ""
	sy.MetadataConcurrency = 10
	sy.Deadline = 0
	sy.Gmail.Retry = gmail.Retry{BaseDelay: 50 * time.Millisecond}
	return &env{te: te, sb: te.Sandbox, store: te.Store, flow: te.Deps.Flow, syncer: sy}
}

// connect takes email through the real OAuth flow (Flow.Begin, the
// sandbox's consent, Flow.Callback) and returns the user id (sub).
func (e *env) connect(t testing.TB, email string) string {
	t.Helper()
	uid, _ := e.te.Connect(t, email)
	return uid
}

// connectMany connects n users user0000@…, concurrently, and returns their ids.
func (e *env) connectMany(t testing.TB, prefix string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ids[i] = e.connect(t, fmt.Sprintf("%s%05d@example.com", prefix, i))
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return ids
}

// stored returns the ids of userID's stored messages, sorted.
func (e *env) stored(t testing.TB, userID string) []string {
	t.Helper()
	var out []string
	after := ""
	for {
		page, err := e.store.ListMailboxMessages(context.Background(), userID, after, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			out = append(out, m.ID)
		}
		if len(page) < 500 {
			return out
		}
		after = page[len(page)-1].ID
	}
}

// plainHTTP sends the tests' own Gmail calls: no quota buckets, no retries.
var plainHTTP = &http.Client{Timeout: 30 * time.Second}

// gmailIDs lists every message id of userID in the sandbox (as Gmail sees it
// for the syncer's query, spam and trash included), sorted, through the
// Gmail API.
func (e *env) gmailIDs(t testing.TB, userID string) []string {
	t.Helper()
	ctx := context.Background()
	at, err := e.flow.AccessToken(ctx, userID)
	if err != nil {
		t.Fatal(err)
	}
	c, err := gmail.NewClient(ctx, e.sb.GmailURL(), plainHTTP, at, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	q := gmail.ListQuery{Q: e.syncer.Query, MaxResults: gmail.MaxPageSize, IncludeSpamTrash: true}
	for {
		page, err := c.ListMessages(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Messages {
			out = append(out, m.ID)
		}
		if q.PageToken = page.NextPageToken; q.PageToken == "" {
			break
		}
	}
	sort.Strings(out)
	return out
}

func (e *env) gmailCalls() int {
	n := 0
	for _, v := range e.sb.Stats().GmailCalls {
		n += v
	}
	return n
}

func (e *env) mailbox(t testing.TB, userID string) *store.Mailbox {
	t.Helper()
	mb, err := e.store.GetMailbox(context.Background(), userID)
	if err != nil {
		t.Fatalf("GetMailbox(%s): %v", userID, err)
	}
	return mb
}

// countingStore counts the writes of a sync.
type countingStore struct {
	store.Store
	mu    sync.Mutex
	saves int
	rows  int
}

func (c *countingStore) SaveSync(ctx context.Context, userID string, mb *store.Mailbox, up []*store.MessageMeta, del []string) error {
	c.mu.Lock()
	c.saves++
	c.rows += len(up) + len(del)
	c.mu.Unlock()
	return c.Store.SaveSync(ctx, userID, mb, up, del)
}

func (c *countingStore) writes() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.saves, c.rows
}
