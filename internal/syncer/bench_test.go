package syncer_test

// Benchmarks of the sync against the sandbox with injected Gmail latency,
// under Gmail's 2026 quota model (model=2026: every call charged
// gmail.Costs, 6,000 units per user-minute and 1,200,000 per
// project-minute, enforced by the sandbox as Gmail would). They print
// figures (b.ReportMetric) next to the physical bound of each, and assert
// nothing; .ci/bench runs them once each and formats a table:
//
//	go test -run='^$' -bench=. -benchtime=1x -timeout=90m ./internal/syncer/
//
// The Firestore variants run when FIRESTORE_EMULATOR_HOST is set. The
// 10,000-user sweep runs only with SYNC_BENCH_BIG=1 (memstore) or
// SYNC_BENCH_BIG_FS=1 (both stores): it takes minutes, bound by the
// project's quota.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"example.com/gmailoauth/internal/gmail"
	"example.com/gmailoauth/internal/local/sandbox"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/fsstore/fstest"
)

const benchLatency = 50 * time.Millisecond

// Gmail's 2026 limits, as rates: what the bounds below are made of.
const (
	userPerSecond    = gmail.DefaultUserUnitsPerMinute / 60.0    // 100 units/s
	projectPerSecond = gmail.DefaultProjectUnitsPerMinute / 60.0 // 20,000 units/s
)

func benchStores(b *testing.B) []storeKind {
	kinds := []storeKind{memStore}
	if os.Getenv(fstest.EnvHost) != "" {
		kinds = append(kinds, fsStore)
	}
	return kinds
}

// userBound is the least time Gmail needs to admit units of one user: a
// minute's allowance (6,000) at once, then 100 units/s.
func userBound(units int64) float64 {
	return max(0, float64(units)-gmail.DefaultUserUnitsPerMinute) / userPerSecond
}

// BenchmarkMetadata syncs N new messages of one user (an incremental sync:
// history.list pages of 100, then one messages.get with format=metadata
// per message, 20 units each). Bound: Gmail admits the user's minute (6,000
// units) at once, then 100 units/s, so N × 20 units need
// (N × 20 + history − 6,000) / 100 s. efficiency = bound / time (1 = the
// bound itself); 429s counts Gmail's rate-limit answers (none reach the
// caller: the sync returns no error).
func BenchmarkMetadata(b *testing.B) {
	const n = 500
	for _, kind := range benchStores(b) {
		b.Run(fmt.Sprintf("model=2026/N=%d/%s", n, kind), func(b *testing.B) {
			e := newEnv(b, kind, envOpts{mailboxSize: -1})
			email := "meta@example.com"
			uid := e.connect(b, email)
			ctx := context.Background()
			if _, err := e.syncer.SyncUser(ctx, uid); err != nil {
				b.Fatal(err)
			}
			var total time.Duration
			var limited, calls int
			var units int64
			for b.Loop() {
				e.sb.SetGmailFaults(sandbox.GmailFaults{})
				e.sb.AddMessages(email, n)
				time.Sleep(1100 * time.Millisecond) // both allowances full again (6 units spent so far)
				e.sb.SetGmailFaults(sandbox.GmailFaults{Latency: benchLatency})
				e.sb.ResetStats()
				start := time.Now()
				res, err := e.syncer.SyncUser(ctx, uid)
				if err != nil || res.Added != n {
					b.Fatalf("sync: %+v, %v", res, err)
				}
				total += time.Since(start)
				st := e.sb.Stats()
				limited += st.RateLimited
				units += st.QuotaUnits
				for _, v := range st.GmailCalls {
					calls += v
				}
			}
			runs := float64(b.N)
			secs := total.Seconds() / runs
			bound := userBound(int64(float64(units) / runs))
			b.ReportMetric(secs, "s")
			b.ReportMetric(bound, "bound_s")
			b.ReportMetric(bound/secs, "efficiency")
			b.ReportMetric(float64(units)/runs, "units")
			b.ReportMetric(float64(limited)/runs, "429s")
			b.ReportMetric(float64(calls)/runs, "calls")
		})
	}
}

// firstSaves records when the first SaveSync with messages happened and
// how many it held.
type firstSaves struct {
	store.Store
	mu    sync.Mutex
	start time.Time
	first time.Duration
	n     int
}

func (f *firstSaves) SaveSync(ctx context.Context, userID string, mb *store.Mailbox, up []*store.MessageMeta, del []string) error {
	err := f.Store.SaveSync(ctx, userID, mb, up, del)
	f.mu.Lock()
	if err == nil && f.n == 0 && len(up) > 0 {
		f.first, f.n = time.Since(f.start), len(up)
	}
	f.mu.Unlock()
	return err
}

// BenchmarkFirstSync runs a new user's first sync of a 500-message mailbox
// (481 listed: the seeded spam and trash are not):
// getProfile, then pages of 100 ids newest first, each page's metadata
// saved before the next is listed. first_page_s is when the newest 100
// messages were in the store (bound: they fit in the user's minute, so
// only latency: 1 profile + 1 list + 10 rounds of 10 messages.get ≈ 0.6 s);
// s is the whole sync against the user's bound, as in BenchmarkMetadata.
func BenchmarkFirstSync(b *testing.B) {
	const n = 500
	for _, kind := range benchStores(b) {
		b.Run(fmt.Sprintf("model=2026/N=%d/%s", n, kind), func(b *testing.B) {
			e := newEnv(b, kind, envOpts{mailboxSize: -1})
			fs := &firstSaves{Store: e.syncer.Store}
			e.syncer.Store = fs
			var total, first time.Duration
			var units int64
			var limited, added int
			i := 0
			for b.Loop() {
				email := fmt.Sprintf("first%d@example.com", i)
				i++
				if err := e.sb.SetMailboxSize(email, n); err != nil {
					b.Fatal(err)
				}
				uid := e.connect(b, email)
				e.sb.SetGmailFaults(sandbox.GmailFaults{Latency: benchLatency})
				e.sb.ResetStats()
				fs.mu.Lock()
				fs.start, fs.n = time.Now(), 0
				fs.mu.Unlock()
				res, err := e.syncer.SyncUser(context.Background(), uid)
				if err != nil || res.Added < n*9/10 || !res.Complete { // the seeded spam and trash are not listed
					b.Fatalf("first sync: %+v, %v", res, err)
				}
				added = res.Added
				total += time.Since(fs.start)
				fs.mu.Lock()
				first += fs.first
				if fs.n != gmail.SyncPageSize {
					b.Fatalf("the first save held %d messages, want the newest %d", fs.n, gmail.SyncPageSize)
				}
				fs.mu.Unlock()
				st := e.sb.Stats()
				units += st.QuotaUnits
				limited += st.RateLimited
				e.sb.SetGmailFaults(sandbox.GmailFaults{})
			}
			runs := float64(b.N)
			secs := total.Seconds() / runs
			bound := userBound(int64(float64(units) / runs))
			b.ReportMetric(float64(added), "messages")
			b.ReportMetric(first.Seconds()/runs, "first_page_s")
			b.ReportMetric(secs, "s")
			b.ReportMetric(bound, "bound_s")
			b.ReportMetric(bound/secs, "efficiency")
			b.ReportMetric(float64(units)/runs, "units")
			b.ReportMetric(float64(limited)/runs, "429s")
		})
	}
}

// BenchmarkMetadataCalls compares the ways of getting the fields the store
// keeps (labels, snippet, Subject, From, Date) for 100 messages, each way
// for a fresh user, under the 2026 prices, with 50 ms of latency a
// request: messages.get with format=metadata, metadataHeaders and fields
// (the sync's choice), without fields, without either, format=full,
// format=minimal (no headers: it does not yield the fields), and batches
// of 50 of the first. 10 calls at once, or the two batches at once.
// units and requests are measured; KB is the answers' size; quota_s is
// what Gmail's rate alone imposes on 10,000 messages past the user's
// first minute (units per message × 10,000 − 6,000) / 100 per second.
func BenchmarkMetadataCalls(b *testing.B) {
	const n = 100
	e := newEnv(b, memStore, envOpts{mailboxSize: -1})
	ctx := context.Background()
	type way struct {
		name  string
		fetch func(ctx context.Context, c *http.Client, base string, ids []string) error
	}
	get := func(query string) func(ctx context.Context, c *http.Client, base string, ids []string) error {
		return func(ctx context.Context, c *http.Client, base string, ids []string) error {
			g, gctx := errgroup.WithContext(ctx)
			g.SetLimit(gmail.DefaultMetadataConcurrency)
			for _, id := range ids {
				g.Go(func() error { return fetchOne(gctx, c, base+"gmail/v1/users/me/messages/"+id+query) })
			}
			return g.Wait()
		}
	}
	const ours = "?format=metadata&metadataHeaders=Subject&metadataHeaders=From&metadataHeaders=Date" +
		"&fields=id,threadId,labelIds,snippet,historyId,internalDate,payload/headers"
	ways := []way{
		{"metadata+headers+fields", get(ours)},
		{"metadata+headers", get("?format=metadata&metadataHeaders=Subject&metadataHeaders=From&metadataHeaders=Date")},
		{"metadata", get("?format=metadata")},
		{"full", get("?format=full")},
		{"minimal(no_headers)", get("?format=minimal")},
		{"batch50(metadata+headers+fields)", func(ctx context.Context, c *http.Client, base string, ids []string) error {
			g, gctx := errgroup.WithContext(ctx)
			for i := 0; i < len(ids); i += 50 {
				part := ids[i:min(i+50, len(ids))]
				g.Go(func() error { return fetchBatch(gctx, c, base, part, ours) })
			}
			return g.Wait()
		}},
	}
	for i, w := range ways {
		b.Run("model=2026/"+w.name, func(b *testing.B) {
			email := fmt.Sprintf("way%d@example.com", i)
			uid := e.connect(b, email)
			ids := e.sb.AddMessages(email, n)
			at, err := e.flow.AccessToken(ctx, uid)
			if err != nil {
				b.Fatal(err)
			}
			c := &http.Client{Timeout: time.Minute, Transport: bearerTransport{at}}
			e.sb.SetGmailFaults(sandbox.GmailFaults{Latency: benchLatency})
			var d time.Duration
			var st sandbox.Stats
			for b.Loop() {
				e.sb.ResetStats()
				start := time.Now()
				if err := w.fetch(ctx, c, e.sb.GmailURL(), ids); err != nil {
					b.Fatal(err)
				}
				d = time.Since(start)
				st = e.sb.Stats()
			}
			e.sb.SetGmailFaults(sandbox.GmailFaults{})
			requests := 0
			for _, v := range st.GmailCalls {
				requests += v
			}
			if st.GmailCalls[gmail.MethodBatch] > 0 {
				requests = st.GmailCalls[gmail.MethodBatch]
			}
			perMsg := float64(st.QuotaUnits) / n
			b.ReportMetric(float64(st.QuotaUnits), "units")
			b.ReportMetric(float64(requests), "requests")
			b.ReportMetric(float64(st.GmailBytes)/1024, "KB")
			b.ReportMetric(d.Seconds(), "s")
			b.ReportMetric(max(0, perMsg*10_000-gmail.DefaultUserUnitsPerMinute)/userPerSecond, "quota_s_per_10k")
			b.ReportMetric(float64(st.RateLimited), "429s")
		})
	}
}

// bearerTransport sends an access token with every request.
type bearerTransport struct{ token string }

func (t bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+t.token)
	return http.DefaultTransport.RoundTrip(r)
}

func fetchOne(ctx context.Context, c *http.Client, u string) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %d", u, resp.StatusCode)
	}
	return nil
}

// fetchBatch sends one batch of messages.get calls and checks every part
// answered 200.
func fetchBatch(ctx context.Context, c *http.Client, base string, ids []string, query string) error {
	var body bytes.Buffer
	for i, id := range ids {
		fmt.Fprintf(&body, "--B\r\nContent-Type: application/http\r\nContent-ID: <%d>\r\n\r\nGET /gmail/v1/users/me/messages/%s%s\r\n\r\n", i, id, query)
	}
	body.WriteString("--B--\r\n")
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"batch/gmail/v1", &body)
	req.Header.Set("Content-Type", "multipart/mixed; boundary=B")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || resp.StatusCode != 200 {
		return fmt.Errorf("batch: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(resp.Body, params["boundary"])
	parts := 0
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		head, _ := io.ReadAll(io.LimitReader(p, 64))
		if !strings.HasPrefix(string(head), "HTTP/1.1 200") {
			return fmt.Errorf("batch part %d: %q", parts, head)
		}
		_, _ = io.Copy(io.Discard, p)
		parts++
	}
	if parts != len(ids) {
		return fmt.Errorf("batch: %d answers for %d calls", parts, len(ids))
	}
	return nil
}

// heapSampler records the peak live heap (as marked by each GC) while it
// runs. The GC runs at GOGC=20 meanwhile, so cycles are frequent and the
// figure is the live working set, not garbage awaiting collection.
type heapSampler struct {
	peak atomic.Uint64
	gogc int
	stop chan struct{}
	done sync.WaitGroup
}

func heapNow() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func startHeapSampler() *heapSampler {
	h := &heapSampler{stop: make(chan struct{})}
	h.gogc = debug.SetGCPercent(20)
	h.done.Add(1)
	go func() {
		defer h.done.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			if v := heapNow(); v > h.peak.Load() {
				h.peak.Store(v)
			}
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) Stop() uint64 {
	close(h.stop)
	h.done.Wait()
	debug.SetGCPercent(h.gogc)
	return h.peak.Load()
}

func settledHeap() uint64 {
	runtime.GC()
	runtime.GC()
	return heapNow()
}

const mb = 1 << 20

// sweepSetup connects n users with empty mailboxes, syncs them once (no
// latency), then delivers perUser new messages to each.
func sweepSetup(b *testing.B, kind storeKind, prefix string, n, perUser int) *env {
	e := newEnv(b, kind, envOpts{mailboxSize: -1})
	e.connectMany(b, prefix, n)
	e.syncer.UserConcurrency = 128
	sum, err := e.syncer.Sweep(context.Background())
	if err != nil || sum.Synced != n {
		b.Fatalf("initial sweep: %+v, %v", sum, err)
	}
	for i := range n {
		e.sb.AddMessages(fmt.Sprintf("%s%05d@example.com", prefix, i), perUser)
	}
	e.sb.SetGmailFaults(sandbox.GmailFaults{Latency: benchLatency})
	time.Sleep(2 * time.Second) // let the project bucket refill
	return e
}

// projectBound is the least time the transport's project bucket needs for
// units: one second's worth (20,000) at once, then 20,000 units/s
// (Gmail's 1,200,000 a minute). Gmail's own allowance would admit a
// minute at once; the transport paces the project at its sustained rate
// (see gmail.Transport), so this is the bound a sweep meets.
func projectBound(units int64) float64 {
	return max(0, float64(units)-projectPerSecond) / projectPerSecond
}

// BenchmarkSweep syncs users × 20 new messages each with 128 users at once,
// then sweeps again with no new mail. Per user: 1 history.list (2 units) +
// 20 messages.get (400 units), so 1,000 users are 402,000 units: the
// project's rate (20,000 units/s) bounds the sweep at ~19 s, ~50 users/s.
// users/s of a sequential sweep (UserConcurrency 1) is measured on 100
// users and gives the speed-up. The idle sweep costs one history.list
// (2 units) a user.
func BenchmarkSweep(b *testing.B) {
	const perUser = 20
	for _, kind := range benchStores(b) {
		seqUPS := 0.0
		b.Run("model=2026/"+string(kind)+"/sequential_100", func(b *testing.B) {
			e := sweepSetup(b, kind, "seq", 100, perUser)
			e.syncer.UserConcurrency = 1
			var d time.Duration
			for b.Loop() {
				start := time.Now()
				sum, err := e.syncer.Sweep(context.Background())
				if err != nil || sum.Synced != 100 {
					b.Fatalf("%+v %v", sum, err)
				}
				d = time.Since(start)
			}
			seqUPS = 100 / d.Seconds()
			b.ReportMetric(seqUPS, "users/s")
		})
		sizes := []int{1000}
		if os.Getenv("SYNC_BENCH_BIG_FS") != "" || kind == memStore && os.Getenv("SYNC_BENCH_BIG") != "" {
			sizes = append(sizes, 10_000)
		}
		for _, n := range sizes {
			b.Run(fmt.Sprintf("model=2026/%s/users=%d", kind, n), func(b *testing.B) {
				e := sweepSetup(b, kind, "u", n, perUser)
				ctx := context.Background()
				for b.Loop() {
					e.sb.ResetStats()
					base := settledHeap()
					hs := startHeapSampler()
					start := time.Now()
					sum, err := e.syncer.Sweep(ctx)
					elapsed := time.Since(start)
					peak := hs.Stop()
					retained := settledHeap()
					if err != nil || sum.Synced != n || sum.MessagesAdded != int64(n*perUser) {
						b.Fatalf("sweep: %+v, %v", sum, err)
					}
					st := e.sb.Stats()
					ups := float64(n) / elapsed.Seconds()
					bound := projectBound(st.QuotaUnits)
					b.ReportMetric(elapsed.Seconds(), "s")
					b.ReportMetric(bound, "bound_s")
					b.ReportMetric(bound/elapsed.Seconds(), "efficiency")
					b.ReportMetric(ups, "users/s")
					if seqUPS > 0 {
						b.ReportMetric(ups/seqUPS, "speedup")
					}
					b.ReportMetric(float64(sum.GmailCalls)/float64(n), "calls/user")
					b.ReportMetric(float64(st.QuotaUnits)/float64(n), "units/user")
					b.ReportMetric(float64(st.RateLimited), "429s")
					b.ReportMetric(float64(peak-min(peak, base))/mb, "peak_heap_MB")
					b.ReportMetric(float64(peak-min(peak, retained))/mb, "sweep_heap_MB")
					b.ReportMetric(float64(retained-min(retained, base))/mb, "retained_MB")

					// Again, with no new mail.
					e.sb.ResetStats()
					start = time.Now()
					sum, err = e.syncer.Sweep(ctx)
					elapsed = time.Since(start)
					if err != nil || sum.Synced != n || sum.MessagesAdded != 0 {
						b.Fatalf("second sweep: %+v, %v", sum, err)
					}
					st = e.sb.Stats()
					b.ReportMetric(elapsed.Seconds(), "idle_s")
					b.ReportMetric(float64(sum.GmailCalls)/float64(n), "idle_calls/user")
					b.ReportMetric(float64(st.QuotaUnits)/float64(n), "idle_units/user")
				}
			})
		}
	}
}
