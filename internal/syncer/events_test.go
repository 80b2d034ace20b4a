package syncer_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"example.com/gmailoauth/internal/events"
	"example.com/gmailoauth/internal/local/sandbox"
	"example.com/gmailoauth/internal/store"
)

// outboxEvents decodes userID's pending events, oldest first.
func (e *env) outboxEvents(t testing.TB, userID string) []events.Event {
	t.Helper()
	pending, err := e.store.ListOutbox(context.Background(), userID, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]events.Event, len(pending))
	for i, p := range pending {
		if err := json.Unmarshal(p.Body, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func byType(evs []events.Event, typ string) []string {
	var ids []string
	for _, e := range evs {
		if e.Type == typ {
			ids = append(ids, e.Message.ID)
		}
	}
	return ids
}

func TestSyncWritesTheEventsOfItsChanges(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		ctx := context.Background()
		e := newEnv(t, kind, envOpts{mailboxSize: 30})
		e.syncer.Events = true
		const email = "events@example.com"
		uid := e.connect(t, email)

		// The first sync adds every listed message to the mirror.
		res, err := e.syncer.SyncUser(ctx, uid)
		if err != nil {
			t.Fatal(err)
		}
		first := e.outboxEvents(t, uid)
		if got, want := byType(first, events.MessageAdded), e.stored(t, uid); !cmp.Equal(sortedCopy(got), want) || res.Events != len(want) {
			t.Fatalf("first sync: message.added for %d messages (result says %d); want one for each of the %d stored", len(got), res.Events, len(want))
		}
		for _, ev := range first {
			if ev.UserID != uid || ev.Email != email || ev.Message.Subject == "" || ev.OccurredAt.IsZero() {
				t.Fatalf("event %+v: want the user, the email, the metadata and a time", ev)
			}
		}
		if err := e.store.DeleteOutbox(ctx, ids(t, e, uid)); err != nil {
			t.Fatal(err)
		}

		// New mail, a deletion, a label change, and a deletion of a message
		// the mirror never had (outside the synced window): three events
		// of the mirror's changes, nothing for the unknown message.
		added := e.sb.AddMessages(email, 2)
		storedIDs := e.stored(t, uid)
		if err := e.sb.DeleteMessages(email, storedIDs[0]); err != nil {
			t.Fatal(err)
		}
		if err := e.sb.ModifyLabels(email, storedIDs[1], []string{"STARRED"}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := e.syncer.SyncUser(ctx, uid); err != nil {
			t.Fatal(err)
		}
		got := e.outboxEvents(t, uid)
		if a := byType(got, events.MessageAdded); !cmp.Equal(a, added) {
			t.Errorf("message.added %v, want %v", a, added)
		}
		if d := byType(got, events.MessageDeleted); !cmp.Equal(d, storedIDs[:1]) {
			t.Errorf("message.deleted %v, want %v", d, storedIDs[:1])
		}
		if l := byType(got, events.MessageLabelsChanged); !cmp.Equal(l, storedIDs[1:2]) {
			t.Errorf("message.labels_changed %v, want %v", l, storedIDs[1:2])
		}
		for _, ev := range got {
			if ev.Type == events.MessageLabelsChanged && !slices.Contains(ev.Message.LabelIDs, "STARRED") {
				t.Errorf("labels_changed labels %v, want STARRED among them", ev.Message.LabelIDs)
			}
		}
		if len(got) != 4 {
			t.Errorf("%d events, want 4: %+v", len(got), got)
		}
	})
}

func ids(t testing.TB, e *env, userID string) []string {
	t.Helper()
	pending, err := e.store.ListOutbox(context.Background(), userID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range pending {
		out = append(out, p.ID)
	}
	return out
}

// failAfterMessages fails a SaveSyncEvents that carries a checkpoint after
// writing its messages, as a crash between two Firestore commits would.
type failAfterMessages struct {
	store.Store
	fail bool
}

func (f *failAfterMessages) SaveSyncEvents(ctx context.Context, userID string, mb *store.Mailbox, up []*store.MessageMeta, del []string, evs []*store.OutboxEvent) error {
	if f.fail && mb != nil && len(up) > 0 {
		f.fail = false
		_ = f.SaveSync(ctx, userID, nil, up, del) // the messages' commit went through
		return store.ErrUnavailable
	}
	return f.Store.SaveSyncEvents(ctx, userID, mb, up, del, evs)
}

func TestASyncThatRunsAgainWritesTheSameEvents(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, memStore, envOpts{mailboxSize: 10})
	const email = "again@example.com"
	uid := e.connect(t, email)
	e.syncer.Events = true
	if _, err := e.syncer.SyncUser(ctx, uid); err != nil {
		t.Fatal(err)
	}
	_ = e.store.DeleteOutbox(ctx, ids(t, e, uid))

	added := e.sb.AddMessages(email, 3)
	flaky := &failAfterMessages{Store: e.store, fail: true}
	e.syncer.Store = flaky
	if _, err := e.syncer.SyncUser(ctx, uid); err == nil {
		t.Fatal("the interrupted sync succeeded")
	}
	if a := byType(e.outboxEvents(t, uid), events.MessageAdded); len(a) != 0 {
		t.Fatalf("message.added %v after a sync whose checkpoint was not saved; want none (the events go with the checkpoint)", a)
	}
	// The next sync starts from the old checkpoint and writes the events.
	if _, err := e.syncer.SyncUser(ctx, uid); err != nil {
		t.Fatal(err)
	}
	got := e.outboxEvents(t, uid)
	if a := byType(got, events.MessageAdded); !cmp.Equal(a, added) {
		t.Fatalf("message.added %v after the rerun, want %v", a, added)
	}
	// And the event ids are those a sync without the failure writes.
	want := map[string]bool{}
	for _, m := range added {
		want[events.Added(events.User{ID: uid}, e.te.Deps.Now(), &store.MessageMeta{ID: m}).ID] = true
	}
	for _, ev := range got {
		if ev.Type != events.MessageAdded {
			continue
		}
		if !want[ev.EventID] {
			t.Errorf("event %s for %s is not the id of that message's addition", ev.EventID, ev.Message.ID)
		}
	}
}

func TestSyncFailedOncePerRunOfFailures(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, memStore, envOpts{mailboxSize: 5})
	const email = "fails@example.com"
	uid := e.connect(t, email)
	e.syncer.Events = true
	if _, err := e.syncer.SyncUser(ctx, uid); err != nil {
		t.Fatal(err)
	}
	_ = e.store.DeleteOutbox(ctx, ids(t, e, uid))

	failed := func() []events.Event {
		var out []events.Event
		for _, ev := range e.outboxEvents(t, uid) {
			if ev.Type == events.SyncFailed {
				out = append(out, ev)
			}
		}
		return out
	}
	e.sb.SetGmailFaults(sandbox.GmailFaults{FailNext: 1000})
	for range 2 {
		if _, err := e.syncer.SyncUser(ctx, uid); err == nil {
			t.Fatal("sync succeeded against a failing Gmail")
		}
	}
	got := failed()
	if len(got) != 1 || got[0].Error == nil || got[0].Error.Code != "upstream_unavailable" {
		t.Fatalf("sync.failed after two failures: %+v; want one, upstream_unavailable", got)
	}
	e.sb.SetGmailFaults(sandbox.GmailFaults{})
	e.sb.AddMessages(email, 1)
	if _, err := e.syncer.SyncUser(ctx, uid); err != nil {
		t.Fatal(err)
	}
	e.sb.SetGmailFaults(sandbox.GmailFaults{FailNext: 1000})
	_, _ = e.syncer.SyncUser(ctx, uid)
	e.sb.SetGmailFaults(sandbox.GmailFaults{})
	if got := failed(); len(got) != 2 || got[0].EventID == got[1].EventID {
		t.Errorf("sync.failed after a success and another failure: %d events; want a second, with its own id", len(got))
	}
}
