package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"example.com/gmailoauth/internal/events"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/memstore"
)

var (
	alice = events.User{ID: "111", Email: "alice@example.com"}
	at    = time.Date(2026, 5, 2, 10, 0, 0, 123456000, time.FixedZone("CEST", 7200))
)

func meta(id string) *store.MessageMeta {
	return &store.MessageMeta{ID: id, ThreadID: "t-" + id, Subject: "Hello", From: "Bob <bob@example.com>", Date: "Sat, 2 May 2026",
		Snippet: "Hi there", LabelIDs: []string{"INBOX", "UNREAD"}, InternalDate: 1777716000000, HistoryID: 42}
}

func decode(t *testing.T, e *store.OutboxEvent) events.Event {
	t.Helper()
	var ev events.Event
	if err := json.Unmarshal(e.Body, &ev); err != nil {
		t.Fatalf("body %s: %v", e.Body, err)
	}
	if ev.EventID != e.ID || ev.Type != e.Type || ev.UserID != e.UserID {
		t.Errorf("body %s does not match the outbox entry %s/%s/%s", e.Body, e.ID, e.Type, e.UserID)
	}
	return ev
}

func TestSameChangeSameID(t *testing.T) {
	later := at.Add(time.Hour)
	for _, tc := range []struct {
		name       string
		a, b       *store.OutboxEvent
		wantSameID bool
	}{
		{"added again later", events.Added(alice, at, meta("m1")), events.Added(alice, later, meta("m1")), true},
		{"another message added", events.Added(alice, at, meta("m1")), events.Added(alice, at, meta("m2")), false},
		{"another user", events.Added(alice, at, meta("m1")), events.Added(events.User{ID: "222"}, at, meta("m1")), false},
		{"deleted again", events.Deleted(alice, at, "m1"), events.Deleted(alice, later, "m1"), true},
		{"added vs deleted", events.Added(alice, at, meta("m1")), events.Deleted(alice, at, "m1"), false},
		{"same label record", events.LabelsChanged(alice, at, "m1", []string{"INBOX"}, 7), events.LabelsChanged(alice, later, "m1", []string{"INBOX"}, 7), true},
		{"later label record", events.LabelsChanged(alice, at, "m1", []string{"INBOX"}, 7), events.LabelsChanged(alice, at, "m1", []string{"INBOX"}, 8), false},
		{"same connection", events.Connected(alice, at, nil), events.Connected(alice, at, []string{"x"}), true},
		{"another connection", events.Connected(alice, at, nil), events.Connected(alice, later, nil), false},
		{"revoked vs disconnected", events.Revoked(alice, at, "r"), events.Disconnected(alice, at), false},
		{"same failure", events.Failed(alice, at, 5, "upstream_unavailable", "x"), events.Failed(alice, at, 5, "upstream_unavailable", "y"), true},
		{"failure from another checkpoint", events.Failed(alice, at, 5, "c", "m"), events.Failed(alice, at, 6, "c", "m"), false},
	} {
		if same := tc.a.ID == tc.b.ID; same != tc.wantSameID {
			t.Errorf("%s: ids %s and %s; want same=%v", tc.name, tc.a.ID, tc.b.ID, tc.wantSameID)
		}
	}
}

func TestBodies(t *testing.T) {
	added := decode(t, events.Added(alice, at, meta("m1")))
	want := events.Event{EventID: added.EventID, Type: events.MessageAdded, UserID: "111", Email: "alice@example.com",
		OccurredAt: at.UTC(), Message: &events.Message{ID: "m1", ThreadID: "t-m1", LabelIDs: []string{"INBOX", "UNREAD"}, Subject: "Hello",
			From: "Bob <bob@example.com>", Date: "Sat, 2 May 2026", Snippet: "Hi there", InternalDate: 1777716000000, HistoryID: 42}}
	if diff := cmp.Diff(want, added); diff != "" {
		t.Errorf("message.added (-want +got):\n%s", diff)
	}

	var raw map[string]any
	e := events.Added(alice, at, meta("m1"))
	if err := json.Unmarshal(e.Body, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["occurred_at"] != "2026-05-02T08:00:00.123456Z" {
		t.Errorf("occurred_at = %v, want RFC 3339 in UTC", raw["occurred_at"])
	}
	if m := raw["message"].(map[string]any); m["history_id"] != "42" {
		t.Errorf("message.history_id = %#v, want the string \"42\" (history ids exceed JavaScript's integers)", m["history_id"])
	}

	if got := decode(t, events.Deleted(alice, at, "m1")); got.Message == nil || got.Message.ID != "m1" || got.Message.Subject != "" {
		t.Errorf("message.deleted message = %+v, want only the id", got.Message)
	}
	if got := decode(t, events.LabelsChanged(alice, at, "m1", []string{"STARRED"}, 9)); got.Message == nil ||
		!cmp.Equal(got.Message.LabelIDs, []string{"STARRED"}) {
		t.Errorf("message.labels_changed message = %+v", got.Message)
	}
	if got := decode(t, events.Connected(alice, at, []string{"openid"})); got.Grant == nil || !cmp.Equal(got.Grant.Scopes, []string{"openid"}) {
		t.Errorf("grant.connected grant = %+v", got.Grant)
	}
	if got := decode(t, events.Revoked(alice, at, "invalid_grant")); got.Grant == nil || got.Grant.Reason != "invalid_grant" {
		t.Errorf("grant.revoked grant = %+v", got.Grant)
	}
	if got := decode(t, events.Disconnected(alice, at)); got.Message != nil || got.Grant != nil || got.Error != nil {
		t.Errorf("grant.disconnected carries %+v", got)
	}
	if got := decode(t, events.Failed(alice, at, 1, "upstream_unavailable", "Gmail did not answer")); got.Error == nil ||
		got.Error.Code != "upstream_unavailable" {
		t.Errorf("sync.failed error = %+v", got.Error)
	}
	if a := events.Attributes(e); !cmp.Equal(a, map[string]string{"type": "message.added", "user_id": "111"}) || events.OrderingKey(e) != "111" {
		t.Errorf("attributes %v, ordering key %q", a, events.OrderingKey(e))
	}
}

// flaky accepts the first n events it is asked to publish, then refuses.
type flaky struct {
	accept int
	got    []string
}

func (f *flaky) Publish(_ context.Context, evs []*store.OutboxEvent) (int, error) {
	n := min(f.accept, len(evs))
	f.accept -= n
	for _, e := range evs[:n] {
		f.got = append(f.got, e.ID)
	}
	if n < len(evs) {
		return n, errors.New("topic unreachable")
	}
	return n, nil
}

func TestDrainStopsAtTheFirstFailureAndResumesInOrder(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	var want []string
	for i := range 250 { // more than one batch
		e := events.Added(alice, at, meta(fmt.Sprintf("m%03d", i)))
		want = append(want, e.ID)
		if err := st.SaveSyncEvents(ctx, alice.ID, nil, nil, nil, []*store.OutboxEvent{e}); err != nil {
			t.Fatal(err)
		}
	}
	other := events.Added(events.User{ID: "222"}, at, meta("x"))
	if err := st.SaveSyncEvents(ctx, "222", nil, nil, nil, []*store.OutboxEvent{other}); err != nil {
		t.Fatal(err)
	}

	pub := &flaky{accept: 130}
	n, err := events.Drain(ctx, st, pub, alice.ID)
	if n != 130 || err == nil {
		t.Fatalf("Drain with a failing topic = %d, %v; want 130 and an error", n, err)
	}
	left, _ := st.ListOutbox(ctx, alice.ID, 0)
	if len(left) != 120 || left[0].ID != want[130] {
		t.Fatalf("outbox after the failure: %d events from %v; want the 120 not accepted", len(left), left[0].ID)
	}

	pub.accept = 1000
	if n, err := events.Drain(ctx, st, pub, alice.ID); n != 120 || err != nil {
		t.Fatalf("Drain after recovery = %d, %v; want 120, nil", n, err)
	}
	if diff := cmp.Diff(want, pub.got); diff != "" {
		t.Errorf("published ids, in order (-want +got):\n%s", diff)
	}
	if left, _ := st.ListOutbox(ctx, "", 0); len(left) != 1 || left[0].ID != other.ID {
		t.Errorf("outbox after draining alice: %d events; want only the other user's", len(left))
	}
}

func TestMemoryKeepsTheNewestOldestFirst(t *testing.T) {
	m := events.NewMemory(3)
	changed := m.Changed()
	var evs []*store.OutboxEvent
	for i := range 5 {
		evs = append(evs, events.Added(alice, at, meta(fmt.Sprint(i))))
	}
	if n, err := m.Publish(context.Background(), evs); n != 5 || err != nil {
		t.Fatalf("Publish = %d, %v", n, err)
	}
	select {
	case <-changed:
	default:
		t.Error("Changed was not closed by Publish")
	}
	var ids []string
	for _, b := range m.Events() {
		var e events.Event
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.Message.ID)
	}
	if !cmp.Equal(ids, []string{"2", "3", "4"}) || m.Total() != 5 {
		t.Errorf("kept %v of %d; want the newest three, oldest first, of 5", ids, m.Total())
	}
}
