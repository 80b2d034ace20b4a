package devserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"example.com/gmailoauth/internal/local/devtest"
	"example.com/gmailoauth/internal/local/sandbox"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/fsstore/fstest"
	"example.com/gmailoauth/internal/store/memstore"
)

// Load sizes, from the issue: 200 users through the full flow at once, then
// 1,000 concurrent ListMessages calls (5 per user) after their access tokens
// expired.
const (
	loadUsers        = 200
	loadCallsPerUser = 5
)

// TestLoad drives one local instance (functions + sandbox on one port) with
// loadUsers concurrent OAuth flows and then loadUsers*loadCallsPerUser
// concurrent ListMessages calls that all need a token refresh. It asserts
// correctness only (no 5xx, every credential stored once, exactly one refresh
// per user); latency and memory are printed figures, not assertions.
// `make load` runs it without -race for clean figures.
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test; skipped under -short")
	}
	t.Run("memory", func(t *testing.T) { testLoad(t, "memory", memstore.New()) })
	t.Run("firestore", func(t *testing.T) { testLoad(t, "firestore", fstest.NewStore(t)) })
}

func testLoad(t *testing.T, storeName string, st store.Store) {
	race, env := "", map[string]string{}
	if raceEnabled() {
		// The race detector makes everything 5-10x slower, and more on a
		// busy CI machine: the production timeouts (10 s per outbound call,
		// 30 s per request) would turn that slowness into 503s, a timed
		// assertion in disguise. `make load` (no -race) keeps the defaults.
		race = " (-race)"
		env["OUTBOUND_TIMEOUT"] = "1m"
		env["REQUEST_TIMEOUT"] = "3m"
	}
	// No push: the figures are the frontend's own calls, without the first
	// syncs GmailPush would run in the background after every connect.
	s := devtest.Start(t, devtest.Options{Store: st, Env: env, NoPush: true})
	client := newLoadClient(t)

	emails := make([]string, loadUsers)
	for i := range emails {
		emails[i] = fmt.Sprintf("load-%03d@example.com", i)
	}

	// Phase 1: every user runs the browser flow at once.
	type conn struct {
		session, userID, email string
	}
	conns := make([]conn, loadUsers)
	mem := startMemSampler()
	res1 := runConcurrent(loadUsers, func(i int) (int, error) {
		session, userID, status, err := connectFlow(client, s.URL, emails[i])
		conns[i] = conn{session, userID, emails[i]}
		return status, err
	})
	mem1 := mem.stop()
	dials1 := client.dials.Load()
	res1.check(t, "phase 1 (connect)")

	// Exactly loadUsers credentials, one per user, each active with a refresh token.
	creds := listAllCredentials(t, st)
	wantIDs := map[string]string{} // user id → email
	for _, c := range conns {
		if c.userID != "" {
			wantIDs[c.userID] = c.email
		}
	}
	checkCredentials(t, "after phase 1", creds, wantIDs, time.Time{})
	if t.Failed() {
		t.FailNow()
	}

	// Phase 2: expire every access token but not the sessions, then
	// loadCallsPerUser calls per user at once. Access tokens live 3599 s and
	// are refreshed 2 min early, so any advance from 57m59s expires them all;
	// sessions live 1 h, so 58 min leaves a slow (-race) run 2 min to finish.
	s.Clock.Advance(58 * time.Minute)
	expiredAt := s.Clock.Now()
	s.Sandbox.ResetStats()
	calls := loadUsers * loadCallsPerUser
	mem = startMemSampler()
	res2 := runConcurrent(calls, func(i int) (int, error) {
		c := conns[i%loadUsers]
		return listMessages(client, s.URL, c.session)
	})
	mem2 := mem.stop()
	res2.check(t, "phase 2 (list-messages)")

	stats := s.Sandbox.Stats()
	if got := stats.TokenCalls["refresh_token"]; got != loadUsers {
		t.Errorf("token endpoint refresh_token grants = %d, want exactly %d (one per user)", got, loadUsers)
	}
	for _, e := range emails {
		if got := stats.RefreshCalls[e]; got != 1 {
			t.Errorf("refreshes for %s = %d, want exactly 1", e, got)
		}
	}
	if len(stats.RefreshCalls) != loadUsers {
		t.Errorf("sandbox saw refreshes for %d users, want %d", len(stats.RefreshCalls), loadUsers)
	}
	if got := stats.GmailCalls["messages.list"]; got != calls {
		t.Errorf("gmail messages.list calls = %d, want %d", got, calls)
	}
	// Still loadUsers credentials, none lost or duplicated, each refreshed once.
	checkCredentials(t, "after phase 2", listAllCredentials(t, st), wantIDs, expiredAt)
	// Nothing went wrong quietly either: no warning or error was logged.
	var bad []string
	for line := range strings.Lines(s.Logs.String()) {
		if strings.Contains(line, `"severity":"ERROR"`) || strings.Contains(line, `"severity":"WARNING"`) {
			bad = append(bad, line)
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d warnings or errors logged under load; first: %s", len(bad), strings.Join(bad[:min(3, len(bad))], ""))
	}

	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	maxRSS := ru.Maxrss * 1024 // KiB on Linux
	rows := []loadRow{
		{phase: fmt.Sprintf("connect x%d", loadUsers), res: res1, mem: mem1, dials: dials1},
		{phase: fmt.Sprintf("list x%d", calls), res: res2, mem: mem2, dials: client.dials.Load() - dials1},
	}
	table := formatLoadTable(storeName+race, rows, maxRSS, stats.TokenCalls["refresh_token"])
	t.Logf("\n%s", table)
	fmt.Print(table)
}

// loadClient is the browser side: a client that does not follow redirects,
// with enough idle connections for the whole burst. Go's default transport
// keeps only 2 idle connections per host, so 1,000 concurrent calls would
// close and re-dial almost every connection; here every connection opened by
// the burst stays reusable, and dials are counted.
type loadClient struct {
	*http.Client
	dials atomic.Int64
}

func newLoadClient(t *testing.T) *loadClient {
	lc := &loadClient{}
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 0 // no overall limit
	tr.MaxIdleConnsPerHost = loadUsers * loadCallsPerUser
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		lc.dials.Add(1)
		return d.DialContext(ctx, network, addr)
	}
	lc.Client = &http.Client{
		Transport:     tr,
		Timeout:       2 * time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(tr.CloseIdleConnections)
	return lc
}

// callResult is one timed request (or flow).
type callResult struct {
	status  int // the worst HTTP status seen (0 = transport error)
	err     error
	latency time.Duration
}

type loadResult struct {
	calls []callResult
	wall  time.Duration
}

// runConcurrent runs fn(0..n-1) in n goroutines released together by a
// start barrier, timing each call.
func runConcurrent(n int, fn func(i int) (int, error)) loadResult {
	out := make([]callResult, n)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			began := time.Now()
			status, err := fn(i)
			out[i] = callResult{status: status, err: err, latency: time.Since(began)}
		}()
	}
	ready.Wait()
	began := time.Now()
	close(start)
	done.Wait()
	return loadResult{calls: out, wall: time.Since(began)}
}

// check fails t on any transport error, 5xx or other non-200 answer,
// reporting counts and the first few failures.
func (r loadResult) check(t *testing.T, phase string) {
	t.Helper()
	var fivexx, other, errs int
	var samples []string
	for i, c := range r.calls {
		switch {
		case c.err != nil && c.status == 0:
			errs++
		case c.status >= 500:
			fivexx++
		case c.status != http.StatusOK || c.err != nil:
			other++
		default:
			continue
		}
		if len(samples) < 5 {
			samples = append(samples, fmt.Sprintf("#%d: status %d: %v", i, c.status, c.err))
		}
	}
	if fivexx+other+errs > 0 {
		t.Errorf("%s: %d of %d failed: %d 5xx, %d other non-200, %d transport errors; first: %s",
			phase, fivexx+other+errs, len(r.calls), fivexx, other, errs, strings.Join(samples, "; "))
	}
}

// do sends one request and reads the whole answer.
func (c *loadClient) do(rawURL string, header http.Header) (int, []byte, http.Header, error) {
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, b, resp.Header, nil
}

// connectFlow is devtest.Stack.Connect without testing.T (it runs in many
// goroutines): authorize (JSON) → sandbox consent → callback JSON. It
// returns the worst status seen on the way.
func connectFlow(c *loadClient, base, email string) (session, userID string, status int, err error) {
	status, body, _, err := c.do(base+"/authorize?login_hint="+url.QueryEscape(email), http.Header{"Accept": {"application/json"}})
	if err != nil || status != http.StatusOK {
		return "", "", status, fmt.Errorf("authorize: %d %s %w", status, body, err)
	}
	var a struct {
		URL string `json:"authorization_url"`
	}
	if err := json.Unmarshal(body, &a); err != nil || a.URL == "" {
		return "", "", http.StatusOK, fmt.Errorf("authorize: bad answer %s", body)
	}
	status, body, h, err := c.do(a.URL, nil)
	if err != nil || status != http.StatusFound || h.Get("Location") == "" {
		return "", "", status, fmt.Errorf("consent: %d %s %w", status, body, err)
	}
	status, body, _, err = c.do(h.Get("Location"), nil)
	if err != nil || status != http.StatusOK {
		return "", "", status, fmt.Errorf("callback: %d %s %w", status, body, err)
	}
	var res struct {
		Session string `json:"session"`
		UserID  string `json:"user_id"`
		Email   string `json:"email"`
	}
	if err := json.Unmarshal(body, &res); err != nil || res.Session == "" || res.UserID == "" {
		return "", "", status, fmt.Errorf("callback: bad answer %s", body)
	}
	if res.Email != email || res.UserID != sandbox.SubFor(email) {
		return "", "", status, fmt.Errorf("callback for %s answered user %s (%s), want %s", email, res.UserID, res.Email, sandbox.SubFor(email))
	}
	return res.Session, res.UserID, status, nil
}

// listMessages is the frontend's GET /list-messages with a session.
func listMessages(c *loadClient, base, session string) (int, error) {
	status, body, _, err := c.do(base+"/list-messages?max_results=10", devtest.Bearer(session))
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK {
		return status, fmt.Errorf("%s", body)
	}
	var page listPage
	if err := json.Unmarshal(body, &page); err != nil {
		return status, fmt.Errorf("decode %s: %w", body, err)
	}
	if len(page.Messages) == 0 {
		return status, errors.New("no messages listed")
	}
	return status, nil
}

// listAllCredentials pages through every stored credential.
func listAllCredentials(t *testing.T, st store.Store) []*store.Credential {
	t.Helper()
	var all []*store.Credential
	after := ""
	for {
		page, err := st.ListCredentials(context.Background(), "", after, 37)
		if err != nil {
			t.Fatalf("ListCredentials(after %q): %v", after, err)
		}
		all = append(all, page...)
		if len(page) < 37 {
			return all
		}
		after = page[len(page)-1].UserID
	}
}

// checkCredentials asserts that creds are exactly the users of want (user id
// → email), once each, active, with a refresh token; with refreshedAfter set,
// that each was refreshed after it and holds an access token valid beyond it.
func checkCredentials(t *testing.T, when string, creds []*store.Credential, want map[string]string, refreshedAfter time.Time) {
	t.Helper()
	if len(want) != loadUsers {
		t.Errorf("%s: %d distinct users connected, want %d", when, len(want), loadUsers)
	}
	if len(creds) != len(want) {
		t.Errorf("%s: store holds %d credentials, want %d", when, len(creds), len(want))
	}
	seen := map[string]bool{}
	for _, c := range creds {
		switch {
		case seen[c.UserID]:
			t.Errorf("%s: credential %s listed twice", when, c.UserID)
		case want[c.UserID] == "":
			t.Errorf("%s: unexpected credential %s (%s)", when, c.UserID, c.Email)
		case c.Email != want[c.UserID]:
			t.Errorf("%s: credential %s has email %q, want %q", when, c.UserID, c.Email, want[c.UserID])
		case c.Status != store.StatusActive || c.RefreshToken.IsZero():
			t.Errorf("%s: credential %s: status %q, refresh token stored %v; want active with one", when, c.UserID, c.Status, !c.RefreshToken.IsZero())
		case !refreshedAfter.IsZero() && (c.LastRefreshAt.Before(refreshedAfter) || !c.AccessTokenExpiry.After(refreshedAfter) || c.AccessToken.IsZero()):
			t.Errorf("%s: credential %s: last refresh %v, access token expiry %v; want a refresh after %v", when, c.UserID, c.LastRefreshAt, c.AccessTokenExpiry, refreshedAfter)
		case c.RefreshLeaseOwner != "":
			t.Errorf("%s: credential %s still holds a refresh lease (%s)", when, c.UserID, c.RefreshLeaseOwner)
		}
		seen[c.UserID] = true
	}
}

// memSampler samples the Go heap every few milliseconds until stopped.
type memSampler struct {
	stopc chan struct{}
	done  chan memPeak
}

type memPeak struct {
	baseHeap, peakHeap, peakSys uint64
	samples                     int
}

func startMemSampler() *memSampler {
	runtime.GC()
	runtime.GC() // the second one empties sync.Pool victim caches (http's bufio pools)
	m := &memSampler{stopc: make(chan struct{}), done: make(chan memPeak, 1)}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	p := memPeak{baseHeap: ms.HeapAlloc, peakHeap: ms.HeapAlloc, peakSys: ms.Sys}
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-m.stopc:
				m.done <- p
				return
			case <-tick.C:
			}
			runtime.ReadMemStats(&ms)
			p.peakHeap = max(p.peakHeap, ms.HeapAlloc)
			p.peakSys = max(p.peakSys, ms.Sys)
			p.samples++
		}
	}()
	return m
}

func (m *memSampler) stop() memPeak {
	close(m.stopc)
	return <-m.done
}

type loadRow struct {
	phase string
	res   loadResult
	mem   memPeak
	dials int64 // new client connections
}

// formatLoadTable renders the figures as plain text.
func formatLoadTable(label string, rows []loadRow, maxRSS int64, refreshes int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "LOAD store=%s users=%d calls=%d GOMAXPROCS=%d %s\n", label, loadUsers, loadUsers*loadCallsPerUser, runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Fprintf(&b, "%-12s %6s %9s %8s %9s %9s %9s %9s %10s %10s %9s %6s\n",
		"phase", "n", "wall", "req/s", "p50", "p90", "p99", "max", "heap0 MiB", "heapPk MiB", "sysPk MiB", "dials")
	for _, r := range rows {
		lat := make([]time.Duration, len(r.res.calls))
		for i, c := range r.res.calls {
			lat[i] = c.latency
		}
		slices.Sort(lat)
		pct := func(p float64) time.Duration {
			if len(lat) == 0 {
				return 0
			}
			return lat[min(len(lat)-1, int(float64(len(lat))*p))]
		}
		fmt.Fprintf(&b, "%-12s %6d %9s %8.0f %9s %9s %9s %9s %10.1f %10.1f %9.1f %6d\n",
			r.phase, len(lat), r.res.wall.Round(time.Millisecond),
			float64(len(lat))/r.res.wall.Seconds(),
			pct(0.50).Round(100*time.Microsecond), pct(0.90).Round(100*time.Microsecond),
			pct(0.99).Round(100*time.Microsecond), lat[len(lat)-1].Round(100*time.Microsecond),
			mib(r.mem.baseHeap), mib(r.mem.peakHeap), mib(r.mem.peakSys), r.dials)
	}
	fmt.Fprintf(&b, "process max RSS %.1f MiB; refresh_token grants in list phase %d\n", mib(uint64(maxRSS)), refreshes)
	fmt.Fprintf(&b, "(connect = authorize+consent+callback per user; heap0 = live heap before the phase; sysPk and RSS are process-wide)\n")
	return b.String()
}

// raceEnabled reports whether the test binary was built with -race.
func raceEnabled() bool {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" {
				return s.Value == "true"
			}
		}
	}
	return false
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }
