package devserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"example.com/gmailoauth/internal/events"
	"example.com/gmailoauth/internal/local/devserver"
	"example.com/gmailoauth/internal/local/devtest"
	"example.com/gmailoauth/internal/pubsub"
	"example.com/gmailoauth/internal/pubsub/pubsubtest"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/fsstore/fstest"
	"example.com/gmailoauth/internal/store/memstore"
)

// appEvents decodes what the app's pull subscription received.
func appEvents(t *testing.T, got []pubsub.Received) []events.Event {
	t.Helper()
	out := make([]events.Event, len(got))
	for i, m := range got {
		if err := json.Unmarshal(m.Data, &out[i]); err != nil {
			t.Fatalf("event %s: %v", m.Data, err)
		}
		if m.Attributes["type"] != out[i].Type || m.Attributes["user_id"] != out[i].UserID || m.OrderingKey != out[i].UserID {
			t.Errorf("event %s published with attributes %v and ordering key %q; want type, user_id and the user", out[i].EventID, m.Attributes, m.OrderingKey)
		}
	}
	return out
}

func hasAdded(evs []events.Event, ids ...string) bool {
	got := added(evs, "")
	for _, e := range evs {
		if e.Type == events.MessageAdded {
			got = append(got, e.Message.ID)
		}
	}
	for _, id := range ids {
		if !slices.Contains(got, id) {
			return false
		}
	}
	return true
}

// TestPushThroughThePubSubEmulator is the whole path on Google's emulators:
// a new message in the sandbox → Gmail's notification published to the
// emulator's topic → its push subscription → GmailPush → the mirror in
// Firestore → the event on the app's topic, read through a pull
// subscription.
func TestPushThroughThePubSubEmulator(t *testing.T) {
	project := pubsubtest.NewProject(t)
	st := fstest.NewStore(t)
	s := devtest.Start(t, devtest.Options{Store: st, Env: map[string]string{
		"PUBSUB_EMULATOR_HOST": pubsubtest.EmulatorHost(t), "GOOGLE_CLOUD_PROJECT": project,
	}})
	c := pubsubtest.NewClient(t, project, pubsub.Options{})
	col := pubsubtest.Collect(t, c, pubsubtest.PullSubscription(t, c, s.Server.EventsTopic, "app-events"))

	const email = "emu@example.com"
	s.Sandbox.SetMailboxSize(email, 6)
	_, userID := s.Connect(t, email)
	col.WaitFor(t, 60*time.Second, "the first sync's events", func(m []pubsub.Received) bool {
		evs := appEvents(t, m)
		return len(evs) >= 6 && evs[0].Type == events.GrantConnected // 6 seeded, one of them spam
	})

	ids := s.Sandbox.AddMessages(email, 1)
	got := appEvents(t, col.WaitFor(t, 60*time.Second, "message.added for the new message", func(m []pubsub.Received) bool {
		return hasAdded(appEvents(t, m), ids...)
	}))
	if n := s.Sandbox.Stats().Notifications; n < 1 {
		t.Errorf("the sandbox published %d notifications, want the new message's", n)
	}
	stored, err := st.GetMailboxMessages(context.Background(), userID, ids)
	if err != nil || len(stored) != 1 {
		t.Fatalf("the new message in Firestore: %v, %v", stored, err)
	}
	// In order per user: grant.connected first, the new message last.
	if got[0].Type != events.GrantConnected || got[len(got)-1].Message == nil || got[len(got)-1].Message.ID != ids[0] {
		t.Errorf("events out of order: first %s, last %+v", got[0].Type, got[len(got)-1])
	}
	// The drain deletes an event from the outbox once Pub/Sub acknowledged
	// it, which can be just after the subscriber received it.
	for deadline := time.Now().Add(30 * time.Second); ; {
		pending, err := st.ListOutbox(context.Background(), "", 0)
		if err == nil && len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%d events left in the outbox (%v)", len(pending), err)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	// /dev/events copies the topic for the demo page.
	waitEvents(t, s, "the new message on /dev/events", func(evs []events.Event) bool { return hasAdded(evs, ids...) })
}

// stopOnHistory stops the Pub/Sub emulator when the next history.list
// request leaves, before passing it on: the sync that request belongs to
// then writes the mirror while Pub/Sub is down.
type stopOnHistory struct {
	base  http.RoundTripper
	armed atomic.Bool
	stop  func()
}

func (s *stopOnHistory) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/history") && s.armed.CompareAndSwap(true, false) {
		s.stop()
	}
	return s.base.RoundTrip(r)
}

// TestEventsSurviveAPubSubOutage stops the Pub/Sub emulator in the middle
// of a sync: the mirror and the outbox are written, publishing fails, the
// events wait in the outbox; once Pub/Sub is back, the sweep hands the user
// on and the very same events (same event_ids) reach the app's topic.
func TestEventsSurviveAPubSubOutage(t *testing.T) {
	emu := pubsubtest.Private(t)
	project := "demo-outage"
	st := memstore.New()
	tr := &stopOnHistory{base: http.DefaultTransport, stop: emu.Stop}
	s := devtest.Start(t, devtest.Options{Store: st, Transport: tr, Env: map[string]string{
		"PUBSUB_EMULATOR_HOST": emu.Host(), "GOOGLE_CLOUD_PROJECT": project,
	}})
	c := pubsubtest.NewClient(t, project, pubsub.Options{EmulatorHost: emu.Host()})
	col := pubsubtest.Collect(t, c, pubsubtest.PullSubscription(t, c, s.Server.EventsTopic, "app-events"))

	const email = "outage@example.com"
	s.Sandbox.SetMailboxSize(email, 3)
	_, userID := s.Connect(t, email)
	col.WaitFor(t, 60*time.Second, "the first sync's events", func(m []pubsub.Received) bool { return len(m) >= 4 })

	// New mail; the sync it triggers stops Pub/Sub before its history.list.
	tr.armed.Store(true)
	ids := s.Sandbox.AddMessages(email, 3)
	var pending []*store.OutboxEvent
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		pending, _ = st.ListOutbox(context.Background(), userID, 0)
		if len(pending) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the outage began: %d events in the outbox, want the 3 new messages'; sandbox stats %+v; logs:\n%s",
				len(pending), s.Sandbox.Stats(), s.Logs)
		}
	}
	if stored, _ := st.GetMailboxMessages(context.Background(), userID, ids); len(stored) != 3 {
		t.Fatalf("the mirror holds %d of the 3 new messages; want all (the sync does not need Pub/Sub)", len(stored))
	}
	var want []string
	for _, p := range pending {
		want = append(want, p.ID)
	}

	// Pub/Sub comes back, empty. The app's subscription is made first, as
	// an app's always exists: an event the stack publishes once its topics
	// are back must not fall into a topic nobody subscribes to yet.
	emu.Start()
	c2 := pubsubtest.NewClient(t, project, pubsub.Options{EmulatorHost: emu.Host()})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c2.EnsureTopic(ctx, s.Server.EventsTopic); err != nil {
		t.Fatal(err)
	}
	col2 := pubsubtest.Collect(t, c2, pubsubtest.PullSubscription(t, c2, s.Server.EventsTopic, "app-events-after"))
	if err := s.Server.EnsurePubSub(ctx); err != nil {
		t.Fatal(err)
	}

	// The sweep finds the leftovers and hands the user on.
	s.Clock.Advance(2 * time.Minute)
	tok, err := s.Sandbox.MintIDToken(s.URL+"/list-messages", devserver.SandboxSchedulerAccount, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var sum struct {
		Drain int `json:"drain"`
	}
	for deadline := time.Now().Add(60 * time.Second); sum.Drain == 0; time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			t.Fatal("the sweep never handed the user's leftover events on")
		}
		h := devtest.Bearer(tok)
		h.Set("Content-Type", "application/json")
		r := s.Do(t, http.MethodPost, "/list-messages", h, "{}")
		if r.Status != http.StatusOK {
			t.Logf("sweep: %d %s", r.Status, r.Body)
			continue
		}
		r.JSON(t, &sum)
		if sum.Drain == 0 {
			t.Logf("sweep: %s", r.Body)
		}
	}
	got := appEvents(t, col2.WaitFor(t, 60*time.Second, "the events written during the outage", func(m []pubsub.Received) bool {
		return len(m) >= 3
	}))
	var ids2 []string
	for _, e := range got {
		ids2 = append(ids2, e.EventID)
	}
	sort.Strings(want)
	sort.Strings(ids2)
	if !slices.Equal(compact(ids2), want) {
		t.Errorf("event ids after the outage %v; want the outbox's %v", ids2, want)
	}
	if !hasAdded(got, ids...) {
		t.Errorf("the events after the outage are not the new messages' additions: %+v", got)
	}
	if left, _ := st.ListOutbox(context.Background(), "", 0); len(left) != 0 {
		t.Errorf("%d events left in the outbox", len(left))
	}
}

func compact(s []string) []string { return slices.Compact(slices.Clone(s)) }
