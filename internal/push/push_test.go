package push_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"example.com/gmailoauth/internal/events"
	"example.com/gmailoauth/internal/gmail"
	"example.com/gmailoauth/internal/local/devtest"
	"example.com/gmailoauth/internal/local/sandbox"
	"example.com/gmailoauth/internal/local/testenv"
	"example.com/gmailoauth/internal/push"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/memstore"
)

const topic = "projects/demo-test/topics/gmail-notifications"

// queue is the notification topic of a test: the sandbox's notifications
// and the tasks the push path dispatches wait in it until the test
// delivers them.
type queue struct {
	now  func() time.Time // the publish times' clock
	mu   sync.Mutex
	msgs []push.Message
	n    int
	more chan struct{}
}

func newQueue(now func() time.Time) *queue { return &queue{now: now, more: make(chan struct{}, 1000)} }

func (q *queue) add(m push.Message) {
	q.mu.Lock()
	q.n++
	m.ID = fmt.Sprint(q.n)
	m.PublishTime = q.now()
	q.msgs = append(q.msgs, m)
	q.mu.Unlock()
	q.more <- struct{}{}
}

func (q *queue) Dispatch(_ context.Context, msgs []push.Message) (int, error) {
	for _, m := range msgs {
		q.add(m)
	}
	return len(msgs), nil
}

func (q *queue) notify(_ string, data []byte) error {
	q.add(push.Message{Data: data})
	return nil
}

// take removes and returns what is queued.
func (q *queue) take() []push.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.msgs
	q.msgs = nil
	return out
}

// wait waits for at least one queued message (a notification comes from a
// timer) and returns everything queued.
func (q *queue) wait(t *testing.T) []push.Message {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if msgs := q.take(); len(msgs) > 0 {
			return msgs
		}
		select {
		case <-q.more:
		case <-deadline:
			t.Fatal("nothing was published to the notification topic within 10s")
		}
	}
}

type harness struct {
	te    *testenv.Env
	svc   *push.Service
	q     *queue
	mem   *events.Memory
	clock *devtest.Clock
}

func newHarness(t *testing.T, mailboxSize int) *harness {
	t.Helper()
	mem, clock := events.NewMemory(0), &devtest.Clock{}
	q := newQueue(clock.Now)
	te := testenv.New(t, testenv.Options{Store: memstore.New(), MailboxSize: mailboxSize, Now: clock.Now,
		Env:    map[string]string{"PUSH_TOPIC": topic},
		Events: mem, Dispatch: q, Notify: q.notify})
	if te.Deps.Push == nil {
		t.Fatal("PUSH_TOPIC set, but the wiring made no push path")
	}
	return &harness{te: te, svc: te.Deps.Push, q: q, mem: mem, clock: clock}
}

// deliver hands msgs to the push path one by one, failing t on an error.
func (h *harness) deliver(t *testing.T, msgs []push.Message) {
	t.Helper()
	for _, m := range msgs {
		if err := h.svc.Handle(context.Background(), m); err != nil {
			t.Fatalf("Handle(%s): %v", m.Data, err)
		}
	}
}

// connect connects email and runs the connect task it dispatched.
func (h *harness) connect(t *testing.T, email string) string {
	t.Helper()
	uid, _ := h.te.Connect(t, email)
	if err := h.svc.Connected(context.Background(), uid); err != nil {
		t.Fatal(err)
	}
	h.deliver(t, h.q.take())
	return uid
}

func (h *harness) published(t *testing.T) []events.Event {
	t.Helper()
	var out []events.Event
	for _, b := range h.mem.Events() {
		var e events.Event
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func (h *harness) mailbox(t *testing.T, uid string) *store.Mailbox {
	t.Helper()
	mb, err := h.te.Store.GetMailbox(context.Background(), uid)
	if err != nil {
		t.Fatal(err)
	}
	return mb
}

func (h *harness) calls(method string) int { return h.te.Sandbox.Stats().GmailCalls[method] }

func notification(email string, hid uint64) push.Message {
	return push.Message{Data: fmt.Appendf(nil, `{"emailAddress":%q,"historyId":"%d"}`, email, hid), PublishTime: time.Now()}
}

func TestConnectWatchesSyncsAndPublishes(t *testing.T) {
	h := newHarness(t, 8)
	const email = "ann@example.com"
	uid := h.connect(t, email)
	mb := h.mailbox(t, uid)
	if mb.HistoryID == 0 || mb.WatchExpiration.IsZero() || mb.WatchHistoryID == 0 || mb.WatchedAt.IsZero() {
		t.Fatalf("mailbox after the connect task: %+v; want the first sync done and the watch kept", mb)
	}
	if w := h.te.Sandbox.Watch(email); w == nil || w.Topic != topic {
		t.Fatalf("sandbox watch %+v", w)
	}
	evs := h.published(t)
	if len(evs) != 9 || evs[0].Type != events.GrantConnected {
		t.Fatalf("published %d events starting with %s; want grant.connected and 8 message.added", len(evs), evs[0].Type)
	}
	if pending, _ := h.te.Store.ListOutbox(context.Background(), "", 0); len(pending) != 0 {
		t.Errorf("%d events left in the outbox after the drain", len(pending))
	}
}

func TestNotificationSyncsThenTheSameOneIsSkipped(t *testing.T) {
	h := newHarness(t, 5)
	const email = "bea@example.com"
	uid := h.connect(t, email)
	before := h.calls("history.list")

	ids := h.te.Sandbox.AddMessages(email, 1)
	msgs := h.q.wait(t)
	h.deliver(t, msgs)
	if got, _ := h.te.Store.GetMailboxMessages(context.Background(), uid, ids); len(got) != 1 {
		t.Fatal("the new message is not in the mirror after its notification")
	}
	if n := h.calls("history.list") - before; n != 1 {
		t.Errorf("history.list calls for one notification = %d, want 1", n)
	}
	// Pub/Sub delivers at least once: the same notification again costs
	// nothing at Gmail.
	h.deliver(t, msgs)
	if n := h.calls("history.list") - before; n != 1 {
		t.Errorf("history.list calls after a redelivery = %d, want still 1", n)
	}
	if st := h.svc.Stats(); st.Skipped != 1 {
		t.Errorf("skipped = %d, want 1", st.Skipped)
	}
	if got := h.published(t); got[len(got)-1].Type != events.MessageAdded || got[len(got)-1].Message.ID != ids[0] {
		t.Errorf("last event %+v; want message.added for %s", got[len(got)-1], ids[0])
	}
}

// TestBurstCostsOneHistoryList: notifications for one user handled at
// once on several "instances" (goroutines, one store) make one sync round.
func TestBurstCostsOneHistoryList(t *testing.T) {
	h := newHarness(t, 5)
	const email = "cy@example.com"
	uid := h.connect(t, email)
	h.te.Sandbox.AddMessages(email, 3)
	hid := h.te.Sandbox.HistoryID(email)
	h.q.wait(t) // the sandbox's own notification: replaced by the burst below
	h.te.Sandbox.SetGmailFaults(sandbox.GmailFaults{Latency: 300 * time.Millisecond})
	before := h.calls("history.list")

	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- h.svc.Handle(context.Background(), notification(email, hid-uint64(i%3)))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Handle: %v", err)
		}
	}
	if n := h.calls("history.list") - before; n != 1 {
		t.Errorf("history.list calls for a burst of 10 notifications = %d, want 1", n)
	}
	if mb := h.mailbox(t, uid); mb.HistoryID != hid {
		t.Errorf("mirror history id %d, want %d", mb.HistoryID, hid)
	}
}

func TestLaterHistoryWantedMeansAnotherRound(t *testing.T) {
	h := newHarness(t, 5)
	const email = "dee@example.com"
	uid := h.connect(t, email)
	// Another instance holds the lease; a notification records what it wants.
	if ok, _ := h.te.Store.ClaimSync(context.Background(), uid, "other", 0, h.clock.Now(), time.Minute); !ok {
		t.Fatal("could not take the lease")
	}
	h.te.Sandbox.AddMessages(email, 1)
	h.q.wait(t)
	if err := h.svc.Handle(context.Background(), notification(email, h.te.Sandbox.HistoryID(email))); err != nil {
		t.Fatalf("a notification while the lease is taken: %v, want it acknowledged", err)
	}
	if st := h.svc.Stats(); st.Busy != 1 {
		t.Errorf("busy = %d, want 1", st.Busy)
	}
	// The holder finishes a round that did not reach it: it must go again.
	again, err := h.te.Store.FinishSync(context.Background(), uid, "other", h.mailbox(t, uid).HistoryID, h.clock.Now(), time.Minute)
	if err != nil || !again {
		t.Errorf("FinishSync for the holder = %v, %v; want another round", again, err)
	}
	// A task finding the lease taken is retried later.
	if err := h.svc.Handle(context.Background(), push.EncodeTask(push.Task{UserID: uid, Reason: push.ReasonResync})); !errors.Is(err, push.ErrBusy) {
		t.Errorf("a task while the lease is taken: %v, want ErrBusy (retried)", err)
	}
}

func TestAcknowledgedUnprocessed(t *testing.T) {
	h := newHarness(t, 3)
	const email = "eve@example.com"
	uid := h.connect(t, email)
	if err := h.te.Deps.Flow.MarkRevoked(context.Background(), uid, "test"); err != nil {
		t.Fatal(err)
	}
	h.deliver(t, h.q.take()) // the drain task the revocation handed on
	old := notification("nobody@example.com", 5)
	old.PublishTime = time.Now().Add(-7 * time.Hour)
	for name, m := range map[string]push.Message{
		"unknown address":    notification("nobody@example.com", 5),
		"revoked user":       notification(email, 1<<40),
		"not JSON":           {Data: []byte("\x00\x01garbage")},
		"no address":         {Data: []byte(`{"historyId":"1"}`)},
		"bad history id":     {Data: []byte(`{"emailAddress":"eve@example.com","historyId":"12ab"}`)},
		"unknown task":       {Data: []byte(`{"user_id":"x","reason":"explode"}`), Attributes: map[string]string{push.TaskAttribute: "explode"}},
		"task without user":  {Data: []byte(`{"reason":"resync"}`), Attributes: map[string]string{push.TaskAttribute: "resync"}},
		"task, unknown user": push.EncodeTask(push.Task{UserID: "no-such-user", Reason: push.ReasonResync}),
		"too old":            old,
	} {
		if err := h.svc.Handle(context.Background(), m); err != nil {
			t.Errorf("%s: %v, want it acknowledged (nil)", name, err)
		}
	}
	if n := h.calls("history.list"); n != 0 {
		t.Errorf("history.list calls = %d, want none for these messages", n)
	}
	evs := h.published(t)
	if evs[len(evs)-1].Type != events.GrantRevoked {
		t.Errorf("last event %s; want grant.revoked, published by the drain task", evs[len(evs)-1].Type)
	}
}

func TestTransientFailureIsRetriedAndDoesNotBlockOthers(t *testing.T) {
	h := newHarness(t, 3)
	uidA := h.connect(t, "fay@example.com")
	h.connect(t, "gus@example.com")
	h.te.Sandbox.AddMessages("fay@example.com", 1)
	h.te.Sandbox.AddMessages("gus@example.com", 1)
	msgs := h.q.wait(t)
	for len(msgs) < 2 { // both notifications
		msgs = append(msgs, h.q.wait(t)...)
	}
	h.te.Sandbox.SetGmailFaults(sandbox.GmailFaults{FailNext: 100})
	h.te.Deps.Syncer.Gmail.Retry.MaxAttempts = 1
	if err := h.svc.Handle(context.Background(), notification("fay@example.com", h.te.Sandbox.HistoryID("fay@example.com"))); err == nil {
		t.Fatal("a notification while Gmail fails was acknowledged; want an error, so Pub/Sub retries it")
	}
	h.te.Sandbox.SetGmailFaults(sandbox.GmailFaults{})
	h.deliver(t, msgs) // the redelivery, and the other user's
	if mb := h.mailbox(t, uidA); mb.HistoryID != h.te.Sandbox.HistoryID("fay@example.com") || mb.LastError != "" {
		t.Errorf("mailbox after the retry: %+v", mb)
	}
}

func TestHistoryGoneFallsBackToAFullSync(t *testing.T) {
	h := newHarness(t, 4)
	const email = "hal@example.com"
	uid := h.connect(t, email)
	ids := h.te.Sandbox.AddMessages(email, 2)
	h.q.wait(t)
	h.te.Sandbox.ExpireHistory(email)
	h.deliver(t, []push.Message{notification(email, h.te.Sandbox.HistoryID(email))})
	if got, _ := h.te.Store.GetMailboxMessages(context.Background(), uid, ids); len(got) != 2 {
		t.Errorf("after the history expired: %d of the new messages in the mirror, want 2", len(got))
	}
}

func TestDueDecidesWhatTheSweepHandsOn(t *testing.T) {
	s := &push.Service{WatchRenewal: 24 * time.Hour, ResyncAfter: 6 * time.Hour}
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	watched := func(mb store.Mailbox) *store.Mailbox {
		mb.HistoryID = 10
		mb.LastSyncAt = now.Add(-time.Minute)
		if mb.WatchedAt.IsZero() {
			mb.WatchedAt, mb.WatchExpiration = now.Add(-time.Hour), now.Add(6*24*time.Hour)
		}
		return &mb
	}
	for _, tc := range []struct {
		name string
		mb   *store.Mailbox
		want push.Reason
	}{
		{"no mailbox", nil, push.ReasonRenew},
		{"never watched", &store.Mailbox{HistoryID: 10, LastSyncAt: now}, push.ReasonRenew},
		{"current", watched(store.Mailbox{}), ""},
		{"renewal due", watched(store.Mailbox{WatchedAt: now.Add(-25 * time.Hour), WatchExpiration: now.Add(5 * 24 * time.Hour)}), push.ReasonRenew},
		{"lapsed", watched(store.Mailbox{WatchedAt: now.Add(-time.Hour), WatchExpiration: now.Add(-time.Minute)}), push.ReasonRenew},
		{"lapses within two days", watched(store.Mailbox{WatchedAt: now.Add(-time.Hour), WatchExpiration: now.Add(47 * time.Hour)}), push.ReasonRenew},
		{"first sync unfinished", &store.Mailbox{PendingHistoryID: 9, WatchedAt: now, WatchExpiration: now.Add(7 * 24 * time.Hour)}, push.ReasonResync},
		{"failed a while ago", func() *store.Mailbox {
			mb := watched(store.Mailbox{LastError: "boom", LastErrorAt: now.Add(-10 * time.Minute)})
			return mb
		}(), push.ReasonResync},
		{"failed just now", watched(store.Mailbox{LastError: "boom", LastErrorAt: now.Add(-time.Minute)}), ""},
		{"quiet too long", func() *store.Mailbox {
			mb := watched(store.Mailbox{})
			mb.LastSyncAt = now.Add(-7 * time.Hour)
			return mb
		}(), push.ReasonResync},
	} {
		if got := s.Due(context.Background(), tc.mb, now); got != tc.want {
			t.Errorf("%s: Due = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestSweepCatchesUpLostNotifications: Gmail dropped the notifications;
// after PUSH_RESYNC_AFTER the sweep hands the mailbox to GmailPush, which
// catches up. A day on, the sweep renews every watch.
func TestSweepCatchesUpLostNotificationsAndRenewsWatches(t *testing.T) {
	h := newHarness(t, 3)
	ctx := context.Background()
	var uids []string
	for i := range 3 {
		uids = append(uids, h.connect(t, fmt.Sprintf("user%d@example.com", i)))
	}
	sum, err := h.svc.Sweep(ctx, 0)
	if err != nil || sum.Users != 3 || sum.Current != 3 || sum.Dispatched != 0 || !sum.Complete {
		t.Fatalf("sweep with every mirror current: %+v, %v; want 3 current, nothing handed on", sum, err)
	}

	h.te.Sandbox.SetPushFaults(sandbox.PushFaults{DropAll: true})
	ids := h.te.Sandbox.AddMessages("user1@example.com", 1)
	h.clock.Advance(7 * time.Hour)
	sum, err = h.svc.Sweep(ctx, 0)
	if err != nil || sum.Resync != 3 || sum.Dispatched != 3 {
		t.Fatalf("sweep 7 hours on: %+v, %v; want all 3 handed on to resync", sum, err)
	}
	gmailBefore := h.te.Sandbox.Stats().QuotaUnits
	h.deliver(t, h.q.take())
	if got, _ := h.te.Store.GetMailboxMessages(ctx, uids[1], ids); len(got) != 1 {
		t.Fatal("the sweep's resync did not bring the lost message in")
	}
	want := int64(3*gmail.Costs[gmail.MethodHistoryList].Units + gmail.Costs[gmail.MethodMessagesGet].Units)
	if units := h.te.Sandbox.Stats().QuotaUnits - gmailBefore; units != want {
		t.Errorf("the catch-up cost %d units; want %d: a history.list each and the one new message's get", units, want)
	}
	// The quiet mailboxes recorded that they are current: the next sweep
	// hands nobody on.
	if sum, _ := h.svc.Sweep(ctx, 0); sum.Dispatched != 0 {
		t.Errorf("sweep after the catch-up: %+v; want nothing handed on", sum)
	}

	h.clock.Advance(18 * time.Hour) // 25 hours since the watches
	sum, _ = h.svc.Sweep(ctx, 0)
	if sum.Renew != 3 {
		t.Fatalf("sweep a day on: %+v; want the 3 watches renewed", sum)
	}
	watches := h.calls("watch")
	h.deliver(t, h.q.take())
	if n := h.calls("watch") - watches; n != 3 {
		t.Errorf("users.watch calls = %d, want 3", n)
	}
	for _, uid := range uids {
		if mb := h.mailbox(t, uid); h.clock.Now().Sub(mb.WatchedAt) > time.Minute {
			t.Errorf("watch of %s made %s ago, want renewed", uid, h.clock.Now().Sub(mb.WatchedAt))
		}
	}
	// A renewal task that arrives twice renews once.
	h.deliver(t, []push.Message{push.EncodeTask(push.Task{UserID: uids[0], Reason: push.ReasonRenew})})
	if n := h.calls("watch") - watches; n != 3 {
		t.Errorf("users.watch calls after a repeated renewal task = %d, want still 3", n)
	}
}

func TestSweepHandsOnLeftoverEvents(t *testing.T) {
	h := newHarness(t, 2)
	ctx := context.Background()
	uid := h.connect(t, "ida@example.com")
	// An event whose handler could not publish it (written straight to the
	// outbox).
	e := events.Revoked(events.User{ID: uid}, h.clock.Now(), "test")
	if err := h.te.Store.SaveSyncEvents(ctx, uid, nil, nil, nil, []*store.OutboxEvent{e}); err != nil {
		t.Fatal(err)
	}
	if sum, _ := h.svc.Sweep(ctx, 0); sum.Drain != 0 {
		t.Fatalf("sweep: %+v; want a fresh event left to its handler", sum)
	}
	h.clock.Advance(2 * time.Minute)
	sum, _ := h.svc.Sweep(ctx, 0)
	if sum.Drain != 1 {
		t.Fatalf("sweep: %+v; want the user with a leftover event handed on", sum)
	}
	h.deliver(t, h.q.take())
	if got := h.published(t); !slices.ContainsFunc(got, func(x events.Event) bool { return x.EventID == e.ID }) {
		t.Error("the leftover event was not published")
	}
}

func TestStopWatch(t *testing.T) {
	h := newHarness(t, 2)
	const email = "jo@example.com"
	uid := h.connect(t, email)
	c, err := h.te.Store.GetCredential(context.Background(), uid)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.svc.StopWatch(context.Background(), uid, "another-grant"); err != nil || h.te.Sandbox.Watch(email) == nil {
		t.Fatalf("StopWatch with another grant (a stale session) = %v and stopped the watch; want it left alone", err)
	}
	if err := h.svc.StopWatch(context.Background(), uid, c.Grant); err != nil {
		t.Fatal(err)
	}
	if w := h.te.Sandbox.Watch(email); w != nil {
		t.Errorf("watch after StopWatch: %+v", w)
	}
	if n := h.calls("stop"); n != 1 {
		t.Errorf("users.stop calls = %d", n)
	}
	// A user who never got a watch needs no call.
	if err := h.svc.StopWatch(context.Background(), "nobody", ""); err != nil || h.calls("stop") != 1 {
		t.Errorf("StopWatch(nobody) = %v, stop calls %d", err, h.calls("stop"))
	}
}

// TestRenewalsNotYetNeededWaitForAQuieterDay: near the day's billing
// threshold a watch due by the renewal interval waits; one about to lapse
// does not.
func TestRenewalsNotYetNeededWaitForAQuieterDay(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	budget := &gmail.Budget{PerDay: 1000, Now: func() time.Time { return now }}
	budget.Spend(999)
	s := &push.Service{WatchRenewal: 24 * time.Hour, Budget: budget}
	ctx := context.Background()
	due := &store.Mailbox{HistoryID: 9, LastSyncAt: now, WatchedAt: now.Add(-25 * time.Hour), WatchExpiration: now.Add(6 * 24 * time.Hour)}
	if got := s.Due(ctx, due, now); got != "" {
		t.Errorf("renewal due, budget near the threshold: Due = %q, want it to wait", got)
	}
	lapsing := &store.Mailbox{HistoryID: 9, LastSyncAt: now, WatchedAt: now.Add(-5 * 24 * time.Hour), WatchExpiration: now.Add(24 * time.Hour)}
	if got := s.Due(ctx, lapsing, now); got != push.ReasonRenew {
		t.Errorf("watch lapsing tomorrow, budget near the threshold: Due = %q, want renew", got)
	}
	s.Budget = &gmail.Budget{PerDay: 1000, Now: func() time.Time { return now }}
	if got := s.Due(ctx, due, now); got != push.ReasonRenew {
		t.Errorf("renewal due, budget fine: Due = %q, want renew", got)
	}
}
