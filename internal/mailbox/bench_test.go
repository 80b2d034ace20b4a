package mailbox_test

// Benchmarks of the read path against the sandbox with 50 ms of latency on
// every Gmail call. They print figures (b.ReportMetric) and assert
// nothing; .ci/bench runs them once each and formats a table:
//
//	go test -run='^$' -bench=. -benchtime=1x ./internal/mailbox/
//
// The Firestore variants run when FIRESTORE_EMULATOR_HOST is set.

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"example.com/gmailoauth/internal/local/sandbox"
	"example.com/gmailoauth/internal/local/testenv"
	"example.com/gmailoauth/internal/mailbox"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/fsstore/fstest"
	"example.com/gmailoauth/internal/store/memstore"
)

const benchLatency = 50 * time.Millisecond

// benchStores are the stores the benchmarks run on: memstore, and Firestore
// when the emulator is there.
func benchStores() []string {
	if os.Getenv(fstest.EnvHost) != "" {
		return []string{"memstore", "firestore"}
	}
	return []string{"memstore"}
}

// benchFixture is a user with a synced mailbox of size messages (SYNC_QUERY
// query), on the real clock, without quota limits, the sandbox at 50 ms a
// call once the sync is done.
func benchFixture(b *testing.B, kind string, size int, query string) *fixture {
	b.Helper()
	var st store.Store = memstore.New()
	if kind == "firestore" {
		st = fstest.NewStore(b)
	}
	cs := &testenv.CountingStore{Store: st}
	unlimited := strconv.Itoa(testenv.Unlimited)
	e := testenv.New(b, testenv.Options{Store: cs, MailboxSize: -1, Env: map[string]string{
		"SYNC_QUERY": query, "GMAIL_QUOTA_USER_PER_MIN": unlimited, "GMAIL_QUOTA_PROJECT_PER_MIN": unlimited}})
	e.Sandbox.SetQuotaLimits(sandbox.QuotaLimits{UserPerMinute: -1, ProjectPerMinute: -1})
	f := &fixture{env: e, reads: cs, email: "bench@example.com"}
	if err := e.Sandbox.SetMailboxSize(f.email, size); err != nil {
		b.Fatal(err)
	}
	f.uid, f.session = e.Connect(b, f.email)
	if _, err := e.Deps.Syncer.SyncUser(context.Background(), f.uid); err != nil {
		b.Fatal(err)
	}
	e.Sandbox.SetGmailFaults(sandbox.GmailFaults{Latency: benchLatency})
	return f
}

func (f *fixture) do(b *testing.B, req mailbox.ListRequest) *mailbox.ListResult {
	b.Helper()
	res, err := f.env.Deps.Mailbox.List(context.Background(), f.uid, req)
	if err != nil {
		b.Fatal(err)
	}
	return res
}

func percentile(d []time.Duration, p float64) time.Duration {
	d = slices.Clone(d)
	slices.Sort(d)
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

// BenchmarkPage100 answers the first page of 100 messages with metadata,
// from the mirror and live from Gmail: latency (p50, p99), Gmail calls and
// units, store reads, per page.
func BenchmarkPage100(b *testing.B) {
	for _, kind := range benchStores() {
		f := benchFixture(b, kind, 1000, "newer_than:2y") // every message mirrored
		for _, src := range []string{mailbox.SourceMirror, mailbox.SourceGmail} {
			b.Run(kind+"/"+src, func(b *testing.B) {
				req := mailbox.ListRequest{MaxResults: 100, Format: mailbox.FormatMetadata, Source: src}
				runs := 200
				if src == mailbox.SourceGmail {
					runs = 20
				}
				f.do(b, req) // warm up: connections, the access token
				calls, units, reads := f.env.GmailCalls(), f.env.Sandbox.Stats().QuotaUnits, f.reads.Reads()
				lat := make([]time.Duration, runs)
				for i := range lat {
					t0 := time.Now()
					if res := f.do(b, req); len(res.Messages) != 100 || res.Source != src {
						b.Fatalf("got %d messages from %s", len(res.Messages), res.Source)
					}
					lat[i] = time.Since(t0)
				}
				n := float64(runs)
				b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "p50_ms")
				b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99_ms")
				b.ReportMetric(float64(f.env.GmailCalls()-calls)/n, "gmail_calls")
				b.ReportMetric(float64(f.env.Sandbox.Stats().QuotaUnits-units)/n, "gmail_units")
				b.ReportMetric(float64(f.reads.Reads()-reads)/n, "store_reads")
				b.ReportMetric(n, "runs")
			})
		}
	}
}

// BenchmarkPageToEnd pages a 10,000-message mailbox to the end, 100 a page:
// live from Gmail, and with auto when the mirror holds the whole mailbox or
// only the last 30 days (the default SYNC_QUERY): pages, Gmail calls and
// units, store reads, time.
func BenchmarkPageToEnd(b *testing.B) {
	const size = 10_000
	type run struct {
		name, kind, query, source, format string
	}
	var runs []run
	for _, kind := range benchStores() {
		runs = append(runs,
			run{"mirror_all", kind, "newer_than:20y", mailbox.SourceAuto, mailbox.FormatIDs},
			run{"mirror_all", kind, "newer_than:20y", mailbox.SourceAuto, mailbox.FormatMetadata},
			run{"mirror_30d", kind, "newer_than:30d", mailbox.SourceAuto, mailbox.FormatIDs})
	}
	runs = append(runs,
		run{"live", "memstore", "newer_than:30d", mailbox.SourceGmail, mailbox.FormatIDs},
		run{"live", "memstore", "newer_than:30d", mailbox.SourceGmail, mailbox.FormatMetadata})
	fixtures := map[string]*fixture{} // made here: they outlive each sub-benchmark
	for _, r := range runs {
		if fixtures[r.kind+r.query] == nil {
			fixtures[r.kind+r.query] = benchFixture(b, r.kind, size, r.query)
		}
	}
	for _, r := range runs {
		b.Run(r.kind+"/"+r.name+"/"+r.format, func(b *testing.B) {
			f := fixtures[r.kind+r.query]
			req := mailbox.ListRequest{MaxResults: 100, Format: r.format, Source: r.source}
			calls, units, reads := f.env.GmailCalls(), f.env.Sandbox.Stats().QuotaUnits, f.reads.Reads()
			t0 := time.Now()
			msgs, pages := f.listAllB(b, req)
			elapsed := time.Since(t0)
			mirrorPages := 0
			for _, p := range pages {
				if p.res.Source == mailbox.SourceMirror {
					mirrorPages++
				}
			}
			b.ReportMetric(float64(len(msgs)), "messages")
			b.ReportMetric(float64(len(pages)), "pages")
			b.ReportMetric(float64(mirrorPages), "mirror_pages")
			b.ReportMetric(float64(f.env.GmailCalls()-calls), "gmail_calls")
			b.ReportMetric(float64(f.env.Sandbox.Stats().QuotaUnits-units), "gmail_units")
			b.ReportMetric(float64(f.reads.Reads()-reads), "store_reads")
			b.ReportMetric(elapsed.Seconds(), "s")
			var lat []time.Duration
			for _, p := range pages {
				lat = append(lat, p.took)
			}
			b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "page_p50_ms")
			b.ReportMetric(float64(lat[0].Microseconds())/1000, "first_page_ms")
		})
	}
}

// listAllB is listAll for benchmarks.
func (f *fixture) listAllB(b *testing.B, req mailbox.ListRequest) ([]mailbox.Message, []page) {
	b.Helper()
	var msgs []mailbox.Message
	var pages []page
	for {
		t0 := time.Now()
		res := f.do(b, req)
		pages = append(pages, page{res: res, took: time.Since(t0)})
		msgs = append(msgs, res.Messages...)
		if req.PageToken = res.NextPageToken; req.PageToken == "" {
			return msgs, pages
		}
	}
}
