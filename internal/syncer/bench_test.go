package syncer_test

// Benchmarks of the sync against the sandbox with injected Gmail latency.
// They print figures (b.ReportMetric), they assert nothing; .ci/bench runs
// them once each and formats a table:
//
//	go test -run='^$' -bench=. -benchtime=1x -timeout=60m ./internal/syncer/
//
// The Firestore variants run when FIRESTORE_EMULATOR_HOST is set. The
// 10,000-user sweep runs on the memstore only unless SYNC_BENCH_BIG_FS=1.

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"example.com/gmailoauth/internal/gmail"
	"example.com/gmailoauth/internal/local/sandbox"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/fsstore/fstest"
)

const benchLatency = 50 * time.Millisecond

func benchStores(b *testing.B) []storeKind {
	kinds := []storeKind{memStore}
	if os.Getenv(fstest.EnvHost) != "" {
		kinds = append(kinds, fsStore)
	}
	return kinds
}

// BenchmarkFullListing lists the ids of a 10,000-message mailbox: the
// syncer's listing (500 a page, a checkpoint saved per page) beside the
// seed's loop (default page size, sequential, nothing saved).
func BenchmarkFullListing(b *testing.B) {
	const n = 10_000
	for _, kind := range benchStores(b) {
		b.Run(string(kind), func(b *testing.B) {
			e := newEnv(b, kind, envOpts{mailboxSize: -1, userQuota: -1, projQuota: -1})
			email := "big@example.com"
			if err := e.sb.SetMailboxSize(email, n); err != nil {
				b.Fatal(err)
			}
			uid := e.connect(b, email)
			ctx := context.Background()
			at, err := e.flow.AccessToken(ctx, uid)
			if err != nil {
				b.Fatal(err)
			}
			e.sb.SetGmailFaults(sandbox.GmailFaults{Latency: benchLatency})
			svc, err := newPlainService(ctx, e.sb.GmailURL(), at)
			if err != nil {
				b.Fatal(err)
			}
			// The syncer's Gmail client, without the quota transport (both
			// buckets are unlimited here).
			lister, err := gmail.NewClient(ctx, e.sb.GmailURL(), plainHTTP, at, nil)
			if err != nil {
				b.Fatal(err)
			}
			var ours, seed time.Duration
			var oursCalls, seedCalls, listed int
			for b.Loop() {
				// The syncer's listing, with its per-page checkpoint.
				e.sb.ResetStats()
				start := time.Now()
				tok, count := "", 0
				for {
					page, err := lister.ListMessages(ctx, gmail.ListQuery{MaxResults: gmail.MaxPageSize, PageToken: tok})
					if err != nil {
						b.Fatal(err)
					}
					count += len(page.Messages)
					tok = page.NextPageToken
					if err := e.store.SaveSync(ctx, uid, &store.Mailbox{PendingHistoryID: 1, FullSyncPageToken: tok}, nil, nil); err != nil {
						b.Fatal(err)
					}
					if tok == "" {
						break
					}
				}
				ours += time.Since(start)
				oursCalls += e.sb.Stats().GmailCalls["messages.list"]
				listed = count

				// The seed's loop.
				e.sb.ResetStats()
				start = time.Now()
				tok = ""
				for {
					call := svc.Users.Messages.List("me").Context(ctx)
					if tok != "" {
						call = call.PageToken(tok)
					}
					page, err := call.Do()
					if err != nil {
						b.Fatal(err)
					}
					if tok = page.NextPageToken; tok == "" {
						break
					}
				}
				seed += time.Since(start)
				seedCalls += e.sb.Stats().GmailCalls["messages.list"]
			}
			runs := float64(b.N)
			b.ReportMetric(float64(listed), "messages")
			b.ReportMetric(float64(oursCalls)/runs, "calls")
			b.ReportMetric(float64((listed+499)/500), "calls_lower_bound")
			b.ReportMetric(ours.Seconds()/runs, "s")
			b.ReportMetric(float64(seedCalls)/runs, "seed_calls")
			b.ReportMetric(seed.Seconds()/runs, "seed_s")
			b.ReportMetric(float64(seedCalls)/float64(oursCalls), "calls_ratio")
			b.ReportMetric(seed.Seconds()/ours.Seconds(), "speedup")
		})
	}
}

// BenchmarkMetadata500 syncs 500 new messages of one user whose Gmail
// quota is 250 units/s: 500 messages.get × 5 units need at least 10 s.
func BenchmarkMetadata500(b *testing.B) {
	for _, kind := range benchStores(b) {
		b.Run(string(kind), func(b *testing.B) {
			e := newEnv(b, kind, envOpts{mailboxSize: -1})
			email := "meta@example.com"
			uid := e.connect(b, email)
			ctx := context.Background()
			if _, err := e.syncer.SyncUser(ctx, uid); err != nil {
				b.Fatal(err)
			}
			var total time.Duration
			var limited, calls int
			for b.Loop() {
				e.sb.SetGmailFaults(sandbox.GmailFaults{})
				e.sb.AddMessages(email, 500)
				time.Sleep(1100 * time.Millisecond) // both buckets full again
				e.sb.SetGmailFaults(sandbox.GmailFaults{Latency: benchLatency, QuotaUnitsPerSecond: 250})
				e.sb.ResetStats()
				start := time.Now()
				res, err := e.syncer.SyncUser(ctx, uid)
				if err != nil || res.Added != 500 {
					b.Fatalf("sync: %+v, %v", res, err)
				}
				total += time.Since(start)
				st := e.sb.Stats()
				limited += st.RateLimited
				for _, v := range st.GmailCalls {
					calls += v
				}
			}
			runs := float64(b.N)
			lower := 500.0 * 5 / 250
			b.ReportMetric(total.Seconds()/runs, "s")
			b.ReportMetric(lower, "lower_bound_s")
			b.ReportMetric(total.Seconds()/runs/lower, "ratio_to_lower_bound")
			b.ReportMetric(float64(limited)/runs, "429s")
			b.ReportMetric(float64(calls)/runs, "calls")
		})
	}
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
	time.Sleep(time.Second) // let the project bucket refill
	return e
}

// BenchmarkSweep syncs users × 20 new messages each with 128 users at once,
// then sweeps again with no new mail. users/s of a sequential sweep
// (UserConcurrency 1) is measured on 100 users and gives the speed-up.
func BenchmarkSweep(b *testing.B) {
	const perUser = 20
	for _, kind := range benchStores(b) {
		seqUPS := 0.0
		b.Run(string(kind)+"/sequential_100", func(b *testing.B) {
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
		sizes := []int{1000, 10_000}
		if kind == fsStore && os.Getenv("SYNC_BENCH_BIG_FS") == "" {
			sizes = sizes[:1]
		}
		for _, n := range sizes {
			b.Run(fmt.Sprintf("%s/users=%d", kind, n), func(b *testing.B) {
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
					b.ReportMetric(elapsed.Seconds(), "s")
					b.ReportMetric(ups, "users/s")
					if seqUPS > 0 {
						b.ReportMetric(ups/seqUPS, "speedup")
					}
					b.ReportMetric(float64(sum.GmailCalls)/float64(n), "calls/user")
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
					b.ReportMetric(elapsed.Seconds(), "idle_s")
					b.ReportMetric(float64(sum.GmailCalls)/float64(n), "idle_calls/user")
				}
			})
		}
	}
}
