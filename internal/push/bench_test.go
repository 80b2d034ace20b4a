package push_test

// Benchmarks of the push path on Google's emulators (Firestore and Pub/Sub),
// run once each by `make bench` (.ci/bench). Figures, not assertions.
//
//	BenchmarkPushLatency/users=N  new mail → Gmail's notification (sandbox) →
//	    the notification topic → its push subscription → GmailPush → the mirror
//	    (Firestore) → the event on the app's topic, read through a pull
//	    subscription: p50/p99 latency, notifications per second, Gmail units
//	    per new message against the physical minimum, duplicate events per
//	    1,000.
//	BenchmarkPushSweep/handlers=N  a push sweep of PUSH_BENCH_USERS users
//	    (default 10,000) all due for a sync: the time to dispatch them to the
//	    notification topic and to drain it with N handlers at once; then the
//	    sweep's cost per user once push keeps the mirrors current.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gps "cloud.google.com/go/pubsub/v2"

	"example.com/gmailoauth/internal/events"
	"example.com/gmailoauth/internal/gmail"
	"example.com/gmailoauth/internal/local/devtest"
	"example.com/gmailoauth/internal/local/testenv"
	"example.com/gmailoauth/internal/pubsub"
	"example.com/gmailoauth/internal/pubsub/pubsubtest"
	"example.com/gmailoauth/internal/push"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/fsstore/fstest"
)

// arrivals receives a subscription's events and notes when each arrived.
type arrivals struct {
	mu    sync.Mutex
	at    map[string]time.Time // user id + "/" + message id of a message.added -> arrival
	ids   map[string]int       // event_id -> deliveries
	total int
	more  chan struct{}
}

func receiveEvents(b *testing.B, c *pubsub.Client, sub string) *arrivals {
	a := &arrivals{at: map[string]time.Time{}, ids: map[string]int{}, more: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Receive(ctx, sub, func(_ context.Context, m pubsub.Received) bool {
			now := time.Now()
			var e events.Event
			if json.Unmarshal(m.Data, &e) == nil {
				a.mu.Lock()
				a.total++
				a.ids[e.EventID]++
				if e.Type == events.MessageAdded && e.Message != nil {
					if k := e.UserID + "/" + e.Message.ID; a.at[k].IsZero() {
						a.at[k] = now
					}
				}
				a.mu.Unlock()
				select {
				case a.more <- struct{}{}:
				default:
				}
			}
			return true
		})
	}()
	b.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
	})
	return a
}

// wait waits until every key (user id/message id) arrived, or fails b.
func (a *arrivals) wait(b *testing.B, ids []string, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		a.mu.Lock()
		n := 0
		for _, id := range ids {
			if _, ok := a.at[id]; ok {
				n++
			}
		}
		a.mu.Unlock()
		if n == len(ids) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d events arrived within %s", n, len(ids), timeout)
		}
		select {
		case <-a.more:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (a *arrivals) duplicates() (dup, total int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, n := range a.ids {
		dup += n - 1
	}
	return dup, a.total
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// BenchmarkPushLatency measures new mail → app event on the emulators.
func BenchmarkPushLatency(b *testing.B) {
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) {
			project := pubsubtest.NewProject(b)
			s := devtest.Start(b, devtest.Options{Store: fstest.NewStore(b), Env: map[string]string{
				"PUBSUB_EMULATOR_HOST": pubsubtest.EmulatorHost(b), "GOOGLE_CLOUD_PROJECT": project,
			}})
			s.Sandbox.SetDefaultMailboxSize(3)
			c := pubsubtest.NewClient(b, project, pubsub.Options{})
			arr := receiveEvents(b, c, pubsubtest.PullSubscription(b, c, s.Server.EventsTopic, "bench-events"))

			emails := make([]string, n)
			users := make([]string, n)
			var wg sync.WaitGroup
			sem := make(chan struct{}, 16)
			for i := range emails {
				emails[i] = fmt.Sprintf("lat%05d@example.com", i)
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					_, users[i] = s.Connect(b, emails[i])
				}()
			}
			wg.Wait()
			// Every first sync done: 3 seeded messages each, as events.
			deadline := time.Now().Add(10 * time.Minute)
			for {
				arr.mu.Lock()
				got := len(arr.at)
				arr.mu.Unlock()
				if got >= 3*n {
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("first syncs: %d of %d messages' events", got, 3*n)
				}
				time.Sleep(200 * time.Millisecond)
			}
			time.Sleep(1100 * time.Millisecond) // past the sandbox's one notification a second

			var lat []time.Duration
			var units int64
			start := time.Now()
			for b.Loop() {
				before := s.Sandbox.Stats().QuotaUnits
				rounds := 1
				if n == 1 {
					rounds = 20 // one user: 20 messages, one at a time, 1.1 s apart
				}
				for r := range rounds {
					t0 := make(map[string]time.Time, n)
					var ids []string
					for i, email := range emails {
						k := users[i] + "/" + s.Sandbox.AddMessages(email, 1)[0]
						t0[k] = time.Now()
						ids = append(ids, k)
					}
					arr.wait(b, ids, 5*time.Minute)
					arr.mu.Lock()
					for _, id := range ids {
						lat = append(lat, arr.at[id].Sub(t0[id]))
					}
					arr.mu.Unlock()
					if r < rounds-1 {
						time.Sleep(1100 * time.Millisecond)
					}
				}
				units = s.Sandbox.Stats().QuotaUnits - before
			}
			elapsed := time.Since(start)
			dup, total := arr.duplicates()
			b.ReportMetric(float64(percentile(lat, 0.5).Milliseconds()), "p50_ms")
			b.ReportMetric(float64(percentile(lat, 0.99).Milliseconds()), "p99_ms")
			if n > 1 {
				b.ReportMetric(float64(n)/elapsed.Seconds(), "notifications/s")
			}
			b.ReportMetric(float64(units)/float64(len(lat)), "units/message")
			minimum := float64(gmail.Costs[gmail.MethodMessagesGet].Units + gmail.Costs[gmail.MethodHistoryList].Units)
			b.ReportMetric(minimum, "minimum_units")
			b.ReportMetric(1000*float64(dup)/float64(max(1, total)), "duplicates/1000")
		})
	}
}

// countingStore counts the store calls a sweep makes.
type countingStore struct {
	store.Store
	reads atomic.Int64
}

func (c *countingStore) GetMailbox(ctx context.Context, userID string) (*store.Mailbox, error) {
	c.reads.Add(1)
	return c.Store.GetMailbox(ctx, userID)
}

func (c *countingStore) ListCredentials(ctx context.Context, status, after string, limit int) ([]*store.Credential, error) {
	out, err := c.Store.ListCredentials(ctx, status, after, limit)
	c.reads.Add(int64(len(out)))
	return out, err
}

// BenchmarkPushSweep dispatches a sweep of PUSH_BENCH_USERS users, all due
// for a sync, to the notification topic on the emulator, and drains it with
// 1, 2 and 4 handlers at once (each a GmailPush doing one message at a
// time); then sweeps again, with every mirror current.
func BenchmarkPushSweep(b *testing.B) {
	n := 10_000
	if v, err := strconv.Atoi(os.Getenv("PUSH_BENCH_USERS")); err == nil && v > 0 {
		n = v
	}
	project := pubsubtest.NewProject(b)
	host := pubsubtest.EmulatorHost(b)
	topic := "projects/" + project + "/topics/gmail-notifications"
	clock := &devtest.Clock{}
	cs := &countingStore{Store: fstest.NewStore(b)}
	te := testenv.New(b, testenv.Options{Store: cs, MailboxSize: -1, Now: clock.Now, Env: map[string]string{
		"PUSH_TOPIC": topic, "PUBSUB_EMULATOR_HOST": host, "GOOGLE_CLOUD_PROJECT": project, "STORE": "memory",
		"GMAIL_QUOTA_PROJECT_PER_MIN": strconv.Itoa(testenv.Unlimited),
	}})
	svc := te.Deps.Push
	c := pubsubtest.NewClient(b, project, pubsub.Options{})
	pubsubtest.Topic(b, c, project, "gmail-notifications")

	// n users connected through the real OAuth flow, with a watch and a
	// mirror already current (written directly: the seeding is not measured).
	ctx := context.Background()
	emails := make([]string, n)
	ids := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range emails {
		emails[i] = fmt.Sprintf("sw%05d@example.com", i)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ids[i], _ = te.Connect(b, emails[i])
		}()
	}
	wg.Wait()
	seed := func(lastSync time.Time) {
		var wg sync.WaitGroup
		for i := range ids {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				now := clock.Now()
				// A completed first sync (a horizon), so a due user costs an
				// incremental sync, not a full one.
				mb := &store.Mailbox{HistoryID: te.Sandbox.HistoryID(emails[i]), LastSyncAt: lastSync, WatchedAt: now,
					WatchExpiration: now.Add(7 * 24 * time.Hour), MirrorHorizon: store.HorizonAll}
				if err := cs.SaveSync(ctx, ids[i], mb, nil, nil); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
	}

	gc, err := gps.NewClient(ctx, project)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = gc.Close() })
	for _, handlers := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("users=%d/handlers=%d", n, handlers), func(b *testing.B) {
			for b.Loop() {
				seed(clock.Now().Add(-7 * time.Hour)) // every mirror due for a sync
				sub := pubsubtest.PullSubscription(b, c, topic, fmt.Sprintf("bench-handlers-%d", handlers))
				_ = te.Deps.Store.PutSweepState(ctx, store.SweepState{})
				units := te.Sandbox.Stats().QuotaUnits

				start := time.Now()
				sum, err := svc.Sweep(ctx, 0)
				dispatched := time.Since(start)
				if err != nil || sum.Dispatched != n {
					b.Fatalf("sweep: %+v, %v", sum, err)
				}
				var handled atomic.Int64
				rctx, cancel := context.WithCancel(ctx)
				s := gc.Subscriber(sub)
				s.ReceiveSettings.MaxOutstandingMessages = handlers
				s.ReceiveSettings.NumGoroutines = 1
				go func() {
					_ = s.Receive(rctx, func(ctx context.Context, m *gps.Message) {
						if err := svc.Handle(ctx, push.Message{ID: m.ID, Data: m.Data, Attributes: m.Attributes, PublishTime: m.PublishTime}); err != nil {
							m.Nack()
							return
						}
						m.Ack()
						if handled.Add(1) == int64(n) {
							cancel()
						}
					})
				}()
				<-rctx.Done()
				drained := time.Since(start)
				b.ReportMetric(dispatched.Seconds(), "dispatch_s")
				b.ReportMetric(drained.Seconds(), "dispatch+drain_s")
				b.ReportMetric(float64(n)/drained.Seconds(), "users/s")
				b.ReportMetric(float64(te.Sandbox.Stats().QuotaUnits-units)/float64(n), "units/user")
			}
		})
	}

	// Once push keeps the mirrors current, a sweep hands nobody on.
	b.Run(fmt.Sprintf("users=%d/current", n), func(b *testing.B) {
		for b.Loop() {
			units := te.Sandbox.Stats().QuotaUnits
			reads := cs.reads.Load()
			start := time.Now()
			sum, err := svc.Sweep(ctx, 0)
			if err != nil || sum.Dispatched != 0 || sum.Current != n {
				b.Fatalf("sweep of current mirrors: %+v, %v", sum, err)
			}
			b.ReportMetric(time.Since(start).Seconds(), "sweep_s")
			b.ReportMetric(float64(te.Sandbox.Stats().QuotaUnits-units)/float64(n), "units/user")
			b.ReportMetric(float64(cs.reads.Load()-reads)/float64(n), "store_reads/user")
		}
	})
}
