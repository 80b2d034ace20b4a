package syncer

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/api/gmail/v1"
	"google.golang.org/api/option"

	"example.com/gmailoauth/internal/gmailquota"
	"example.com/gmailoauth/internal/keyset"
	"example.com/gmailoauth/internal/oauthflow"
	"example.com/gmailoauth/internal/local/sandbox"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/fsstore/fstest"
	"example.com/gmailoauth/internal/store/memstore"
)

const (
	testClientID     = "sync-test.apps.googleusercontent.com"
	testClientSecret = "sync-test-secret"
	testRedirect     = "http://127.0.0.1:9/callback"
)

var (
	keyOnce sync.Once
	rsaKey  *rsa.PrivateKey
	ksOnce  sync.Once
	testKS  *keyset.Keyset
)

func sharedRSA() *rsa.PrivateKey {
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaKey = k
	})
	return rsaKey
}

func sharedKeyset(t testing.TB) *keyset.Keyset {
	ksOnce.Do(func() {
		data, err := keyset.Generate("t1")
		if err != nil {
			panic(err)
		}
		if testKS, err = keyset.Parse(data); err != nil {
			panic(err)
		}
	})
	return testKS
}

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

// env is a sandbox, a store, an OAuth flow and a Syncer wired as in production.
type env struct {
	sb     *sandbox.Sandbox
	srv    interface{ Close() }
	store  store.Store
	flow   *oauthflow.Flow
	quota  *gmailquota.Transport
	syncer *Syncer
	oauth  *oauth2.Config
	hc     *http.Client
	emails map[string]string // sub -> email
	mu     sync.Mutex
}

type envOpts struct {
	mailboxSize int // default mailbox size of the sandbox (0 = sandbox default)
	userQuota   float64
	projQuota   float64
	logger      *slog.Logger
}

func newEnv(t testing.TB, kind storeKind, o envOpts) *env {
	t.Helper()
	sb, srv, err := sandbox.StartServer(sandbox.Config{
		ClientID: testClientID, ClientSecret: testClientSecret,
		RedirectURIs: []string{testRedirect}, SigningKey: sharedRSA(), MailboxSize: max(0, o.mailboxSize),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	if o.mailboxSize < 0 {
		sb.SetDefaultMailboxSize(0)
	}
	st := newStore(t, kind)
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConns = 4096
	base.MaxIdleConnsPerHost = 4096
	hc := &http.Client{Timeout: 30 * time.Second, Transport: base,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ks := sharedKeyset(t)
	log := o.logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	oc := &oauth2.Config{
		ClientID: testClientID, ClientSecret: testClientSecret, RedirectURL: testRedirect,
		Scopes:   []string{sandbox.ScopeGmailReadonly},
		Endpoint: oauth2.Endpoint{AuthURL: sb.AuthURL(), TokenURL: sb.TokenURL(), AuthStyle: oauth2.AuthStyleInParams},
	}
	flow := &oauthflow.Flow{
		Store: st, OAuth: oc, RevokeURL: sb.RevokeURL(), Issuer: sb.Issuer(), HTTPClient: hc,
		Keys: func() *keyset.Keyset { return ks }, Now: time.Now, Log: log, InstanceID: "test",
	}
	qt := &gmailquota.Transport{Base: base, UserUnitsPerMinute: o.userQuota, ProjectUnitsPerMinute: o.projQuota,
		BaseDelay: 50 * time.Millisecond}
	sy := &Syncer{
		Store: st, Tokens: flow, GmailURL: sb.GmailURL(),
		Client: &http.Client{Timeout: 2 * time.Minute, Transport: qt},
		Log:    log, Query: "", UserConcurrency: 8, MetadataConcurrency: 10,
	}
	return &env{sb: sb, srv: srv, store: st, flow: flow, quota: qt, syncer: sy, oauth: oc, hc: hc, emails: map[string]string{}}
}

// connect runs the authorization-code flow (offline, consent, PKCE) against
// the sandbox for email and stores the grant as the callback does: tokens
// sealed with the user id as associated data. It returns the user id (sub).
func (e *env) connect(t testing.TB, email string) string {
	t.Helper()
	v := oauth2.GenerateVerifier()
	u := e.oauth.AuthCodeURL("st", oauth2.AccessTypeOffline, oauth2.SetAuthURLParam("prompt", "consent"),
		oauth2.SetAuthURLParam("login_hint", email), oauth2.S256ChallengeOption(v))
	resp, err := e.hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %d %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, e.hc)
	tok, err := e.oauth.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	sub := sandbox.SubFor(email)
	ks := sharedKeyset(t)
	rt, err := ks.Seal([]byte(tok.RefreshToken), sub, oauthflow.FieldRefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	at, err := ks.Seal([]byte(tok.AccessToken), sub, oauthflow.FieldAccessToken)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	_, err = e.store.UpdateCredential(context.Background(), sub, func(*store.Credential) (*store.Credential, error) {
		return &store.Credential{Email: email, RefreshToken: rt, AccessToken: at, AccessTokenExpiry: tok.Expiry,
			Scopes: []string{sandbox.ScopeGmailReadonly}, Status: store.StatusActive, CreatedAt: now, UpdatedAt: now, LastRefreshAt: now}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	e.emails[sub] = email
	e.mu.Unlock()
	return sub
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

// gmailIDs lists every message id of email in the sandbox (as Gmail sees it
// for the syncer's query), sorted, through the Gmail API.
func (e *env) gmailIDs(t testing.TB, userID string) []string {
	t.Helper()
	ctx := context.Background()
	at, err := e.flow.AccessToken(ctx, userID)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := newPlainService(ctx, e.sb.GmailURL(), at)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	call := svc.Users.Messages.List("me").MaxResults(500)
	if e.syncer.Query != "" {
		call = call.Q(e.syncer.Query)
	}
	err = call.Pages(ctx, func(r *gmailListResponse) error {
		for _, m := range r.Messages {
			out = append(out, m.Id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
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

type gmailListResponse = gmail.ListMessagesResponse

func newPlainService(ctx context.Context, baseURL, accessToken string) (*gmail.Service, error) {
	hc := oauth2.NewClient(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: accessToken}))
	return gmail.NewService(ctx, option.WithEndpoint(baseURL), option.WithHTTPClient(hc))
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
