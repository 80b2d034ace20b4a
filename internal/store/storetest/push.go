package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"example.com/gmailoauth/internal/store"
)

// The contract of push and the events to the app: the email index kept with
// the credentials, the outbox written with the changes it describes, the
// sync lease and the watch fields of a mailbox.
//
//   - ListOutbox returns events in the order they were written, across
//     ChangeCredential and SaveSyncEvents; Seq increases with every write
//     and CreatedAt is set by the store;
//   - an event written again under the same id is stored once;
//   - the email index ignores case and surrounding blanks, follows a
//     changed address, and deleting a credential removes only its own entry.
var pushTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"Push/EmailIndex", testEmailIndex},
	{"Push/EmailIndexSharedAddress", testEmailIndexShared},
	{"Push/EmailIndexReindex", testEmailIndexReindex},
	{"Push/ChangeCredentialEvents", testChangeCredentialEvents},
	{"Push/ChangeCredentialFailureWritesNothing", testChangeCredentialFailure},
	{"Push/SaveSyncEvents", testSaveSyncEvents},
	{"Push/SaveSyncEventsLarge", testSaveSyncEventsLarge},
	{"Push/OutboxOrderAndFilter", testOutboxOrder},
	{"Push/OutboxSameIDOnce", testOutboxSameID},
	{"Push/SyncLease", testSyncLease},
	{"Push/SyncLeaseExpiry", testSyncLeaseExpiry},
	{"Push/SyncLeaseConcurrentClaims", testSyncLeaseConcurrent},
	{"Push/MailboxWatchRoundTrip", testMailboxWatch},
	{"Push/CancelledContext", testPushCancelled},
}

func change(t *testing.T, s store.Store, userID string, ch *store.CredentialChange) *store.Credential {
	t.Helper()
	got, err := s.ChangeCredential(t.Context(), userID, func(*store.Credential) (*store.CredentialChange, error) {
		c := *ch
		c.Credential = ch.Credential.Clone()
		return &c, nil
	})
	if err != nil {
		t.Fatalf("ChangeCredential(%q): %v", userID, err)
	}
	return got
}

func wantUser(t *testing.T, s store.Store, email, want string) {
	t.Helper()
	got, err := s.UserIDByEmail(t.Context(), email)
	if want == "" {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UserIDByEmail(%q) = %q, %v; want store.ErrNotFound", email, got, err)
		}
		return
	}
	if err != nil || got != want {
		t.Errorf("UserIDByEmail(%q) = %q, %v; want %q", email, got, err, want)
	}
}

func withEmail(userID, email string) *store.Credential {
	c := fullCredential(userID)
	c.Email = email
	return c
}

func testEmailIndex(t *testing.T, s store.Store) {
	wantUser(t, s, "alice@example.com", "")
	put(t, s, withEmail("u1", "Alice@Example.COM"))
	wantUser(t, s, "alice@example.com", "u1")
	wantUser(t, s, "  ALICE@example.com ", "u1")

	// A write that keeps the address keeps the entry.
	_, err := s.UpdateCredential(t.Context(), "u1", func(c *store.Credential) (*store.Credential, error) {
		c.LastRefreshAt = base.Add(time.Hour)
		return c, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantUser(t, s, "alice@example.com", "u1")

	// A changed address moves the entry.
	put(t, s, withEmail("u1", "alice.new@example.com"))
	wantUser(t, s, "alice@example.com", "")
	wantUser(t, s, "alice.new@example.com", "u1")

	if err := s.DeleteCredential(t.Context(), "u1"); err != nil {
		t.Fatal(err)
	}
	wantUser(t, s, "alice.new@example.com", "")
}

func testEmailIndexShared(t *testing.T, s store.Store) {
	// u2 now has the address u1 had: the entry points at the newest owner,
	// and deleting or moving u1 leaves u2's entry alone.
	put(t, s, withEmail("u1", "shared@example.com"))
	put(t, s, withEmail("u2", "shared@example.com"))
	wantUser(t, s, "shared@example.com", "u2")
	put(t, s, withEmail("u1", "other@example.com"))
	wantUser(t, s, "shared@example.com", "u2")
	if err := s.DeleteCredential(t.Context(), "u1"); err != nil {
		t.Fatal(err)
	}
	wantUser(t, s, "shared@example.com", "u2")
	wantUser(t, s, "other@example.com", "")
}

func testEmailIndexReindex(t *testing.T, s store.Store) {
	put(t, s, withEmail("u1", "shared@example.com"))
	put(t, s, withEmail("u2", "shared@example.com"))
	// Reindex without a new credential points the entry back at u1 and
	// leaves the credential as it is.
	before := mustGet(t, s, "u1")
	got := change(t, s, "u1", &store.CredentialChange{Reindex: true})
	wantCredential(t, "ChangeCredential(Reindex) result", got, before)
	wantCredential(t, "credential after Reindex", mustGet(t, s, "u1"), before)
	wantUser(t, s, "shared@example.com", "u1")
	// Reindexing a missing credential writes nothing.
	if got := change(t, s, "nobody", &store.CredentialChange{Reindex: true}); got != nil {
		t.Errorf("ChangeCredential(missing, Reindex) = %+v, want nil", got)
	}
	wantNotFound(t, "GetCredential(nobody)", func() error { _, err := s.GetCredential(t.Context(), "nobody"); return err }())
}

func event(userID, id, typ string) *store.OutboxEvent {
	return &store.OutboxEvent{ID: id, UserID: userID, Type: typ, Body: []byte(`{"event_id":"` + id + `","type":"` + typ + `"}`)}
}

func outbox(t *testing.T, s store.Store, userID string, limit int) []*store.OutboxEvent {
	t.Helper()
	got, err := s.ListOutbox(t.Context(), userID, limit)
	if err != nil {
		t.Fatalf("ListOutbox(%q, %d): %v", userID, limit, err)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Errorf("ListOutbox(%q): Seq %d after %d: not increasing", userID, got[i].Seq, got[i-1].Seq)
		}
	}
	return got
}

func eventIDs(es []*store.OutboxEvent) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func wantEvents(t *testing.T, what string, got []*store.OutboxEvent, want ...*store.OutboxEvent) {
	t.Helper()
	opts := append([]cmp.Option{cmpopts.IgnoreFields(store.OutboxEvent{}, "Seq", "CreatedAt")}, cmpOpts...)
	if diff := cmp.Diff(want, got, opts...); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
	for _, e := range got {
		if e.CreatedAt.IsZero() {
			t.Errorf("%s: event %s has no CreatedAt", what, e.ID)
		}
	}
}

func testChangeCredentialEvents(t *testing.T, s store.Store) {
	e1, e2 := event("u1", "ev-connected", "grant.connected"), event("u1", "ev-revoked", "grant.revoked")
	cred := withEmail("u1", "u1@example.com")
	got := change(t, s, "u1", &store.CredentialChange{Credential: cred, Events: []*store.OutboxEvent{e1}})
	wantCredential(t, "ChangeCredential result", got, cred)
	wantEvents(t, "outbox after connect", outbox(t, s, "u1", 0), e1)

	// Events with no credential change.
	before := mustGet(t, s, "u1")
	change(t, s, "u1", &store.CredentialChange{Events: []*store.OutboxEvent{e2}})
	wantCredential(t, "credential after an events-only change", mustGet(t, s, "u1"), before)
	wantEvents(t, "outbox after two changes", outbox(t, s, "u1", 0), e1, e2)

	// Deleting with an event.
	e3 := event("u1", "ev-disconnected", "grant.disconnected")
	if got := change(t, s, "u1", &store.CredentialChange{Delete: true, Events: []*store.OutboxEvent{e3}}); got != nil {
		t.Errorf("ChangeCredential(Delete) = %+v, want nil", got)
	}
	_, err := s.GetCredential(t.Context(), "u1")
	wantNotFound(t, "GetCredential after delete", err)
	wantUser(t, s, "u1@example.com", "")
	wantEvents(t, "outbox after the delete", outbox(t, s, "u1", 0), e1, e2, e3)
}

func testChangeCredentialFailure(t *testing.T, s store.Store) {
	cred := put(t, s, withEmail("u1", "u1@example.com"))
	boom := errors.New("boom")
	_, err := s.ChangeCredential(t.Context(), "u1", func(cur *store.Credential) (*store.CredentialChange, error) {
		return &store.CredentialChange{Delete: true, Events: []*store.OutboxEvent{event("u1", "e", "grant.revoked")}}, boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("ChangeCredential: err %v, want the func's error", err)
	}
	got, err := s.ChangeCredential(t.Context(), "u1", func(cur *store.Credential) (*store.CredentialChange, error) { return nil, nil })
	if err != nil {
		t.Fatal(err)
	}
	wantCredential(t, "ChangeCredential(nil change) result", got, cred)
	wantCredential(t, "credential after the failed and nil changes", mustGet(t, s, "u1"), cred)
	wantUser(t, s, "u1@example.com", "u1")
	if got := outbox(t, s, "", 0); len(got) != 0 {
		t.Errorf("outbox after a failed change: %v, want empty", eventIDs(got))
	}
}

func testSaveSyncEvents(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb := &store.Mailbox{HistoryID: 10, LastSyncAt: base}
	e1, e2 := event("u1", "ev-a", "message.added"), event("u1", "ev-b", "message.added")
	if err := s.SaveSyncEvents(ctx, "u1", mb, messages("a", "b"), nil, []*store.OutboxEvent{e1, e2}); err != nil {
		t.Fatal(err)
	}
	e3 := event("u1", "ev-a-deleted", "message.deleted")
	mb2 := &store.Mailbox{HistoryID: 11, LastSyncAt: base.Add(time.Minute)}
	if err := s.SaveSyncEvents(ctx, "u1", mb2, nil, []string{"a"}, []*store.OutboxEvent{e3}); err != nil {
		t.Fatal(err)
	}
	if got := mustGetMailbox(t, s, "u1").HistoryID; got != 11 {
		t.Errorf("HistoryID = %d, want 11", got)
	}
	if diff := cmp.Diff([]string{"b"}, messageIDs(listAll(t, s, "u1"))); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	wantEvents(t, "outbox", outbox(t, s, "u1", 0), e1, e2, e3)
	// No events: SaveSync.
	if err := s.SaveSyncEvents(ctx, "u1", mb2, messages("c"), nil, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(outbox(t, s, "u1", 0)); n != 3 {
		t.Errorf("outbox after a save without events: %d events, want 3", n)
	}
}

func testSaveSyncEventsLarge(t *testing.T, s store.Store) {
	// More writes than one Firestore commit takes: 700 messages and their
	// 700 events and the checkpoint.
	var msgs []*store.MessageMeta
	var evs []*store.OutboxEvent
	for i := range 700 {
		id := fmt.Sprintf("m%04d", i)
		msgs = append(msgs, message(id))
		evs = append(evs, event("u1", "ev-"+id, "message.added"))
	}
	if err := s.SaveSyncEvents(t.Context(), "u1", &store.Mailbox{HistoryID: 99}, msgs, nil, evs); err != nil {
		t.Fatal(err)
	}
	if got := mustGetMailbox(t, s, "u1").HistoryID; got != 99 {
		t.Errorf("HistoryID = %d, want 99", got)
	}
	got := outbox(t, s, "u1", 0)
	if diff := cmp.Diff(eventIDs(evs), eventIDs(got)); diff != "" {
		t.Errorf("outbox ids, in order (-want +got):\n%s", diff)
	}
	if got := outbox(t, s, "u1", 250); len(got) != 250 || got[0].ID != "ev-m0000" || got[249].ID != "ev-m0249" {
		t.Errorf("ListOutbox(limit 250) = %d events from %v; want the 250 oldest", len(got), eventIDs(got[:min(2, len(got))]))
	}
}

func testOutboxOrder(t *testing.T, s store.Store) {
	ctx := t.Context()
	put(t, s, withEmail("u1", "u1@example.com"))
	var want1, wantAll []*store.OutboxEvent
	for i := range 6 {
		u := []string{"u1", "u2"}[i%2]
		e := event(u, fmt.Sprintf("ev-%d", i), "message.added")
		var err error
		if i%3 == 0 {
			_, err = s.ChangeCredential(ctx, "u1", func(*store.Credential) (*store.CredentialChange, error) {
				return &store.CredentialChange{Events: []*store.OutboxEvent{e}}, nil
			})
		} else {
			err = s.SaveSyncEvents(ctx, u, nil, nil, nil, []*store.OutboxEvent{e})
		}
		if err != nil {
			t.Fatal(err)
		}
		wantAll = append(wantAll, e)
		if u == "u1" {
			want1 = append(want1, e)
		}
	}
	wantEvents(t, "ListOutbox(all)", outbox(t, s, "", 0), wantAll...)
	wantEvents(t, "ListOutbox(u1)", outbox(t, s, "u1", 0), want1...)
	wantEvents(t, "ListOutbox(all, limit 2)", outbox(t, s, "", 2), wantAll[:2]...)
	wantEvents(t, "ListOutbox(u1, limit 1)", outbox(t, s, "u1", 1), want1[:1]...)
	wantEvents(t, "ListOutbox(nobody)", outbox(t, s, "nobody", 0))

	if err := s.DeleteOutbox(ctx, []string{"ev-0", "ev-3", "ev-0", "no-such-event"}); err != nil {
		t.Fatalf("DeleteOutbox: %v", err)
	}
	wantEvents(t, "ListOutbox(all) after DeleteOutbox", outbox(t, s, "", 0), wantAll[1], wantAll[2], wantAll[4], wantAll[5])
	if err := s.DeleteOutbox(ctx, nil); err != nil {
		t.Errorf("DeleteOutbox(nil): %v", err)
	}
}

func testOutboxSameID(t *testing.T, s store.Store) {
	// A sync that runs again writes the same events again: one copy each.
	ctx := t.Context()
	e := event("u1", "ev-same", "message.added")
	for range 2 {
		if err := s.SaveSyncEvents(ctx, "u1", &store.Mailbox{HistoryID: 1}, messages("a"), nil, []*store.OutboxEvent{e}); err != nil {
			t.Fatal(err)
		}
	}
	wantEvents(t, "outbox after the same event twice", outbox(t, s, "u1", 0), e)
}

func claim(t *testing.T, s store.Store, userID, owner string, hid uint64, now time.Time) bool {
	t.Helper()
	ok, err := s.ClaimSync(t.Context(), userID, owner, hid, now, time.Minute)
	if err != nil {
		t.Fatalf("ClaimSync(%s, %s): %v", userID, owner, err)
	}
	return ok
}

func finish(t *testing.T, s store.Store, userID, owner string, synced uint64, now time.Time) bool {
	t.Helper()
	again, err := s.FinishSync(t.Context(), userID, owner, synced, now, time.Minute)
	if err != nil {
		t.Fatalf("FinishSync(%s, %s): %v", userID, owner, err)
	}
	return again
}

func testSyncLease(t *testing.T, s store.Store) {
	now := base
	if !claim(t, s, "u1", "a", 100, now) {
		t.Fatal("first ClaimSync: not claimed")
	}
	if !claim(t, s, "u1", "a", 100, now) {
		t.Error("ClaimSync by the holder: not claimed")
	}
	if claim(t, s, "u1", "b", 120, now.Add(time.Second)) {
		t.Fatal("ClaimSync while another holds the lease: claimed")
	}
	if !claim(t, s, "u2", "b", 1, now) {
		t.Error("ClaimSync of another user: not claimed")
	}
	if finish(t, s, "u1", "b", 0, now) {
		t.Error("FinishSync by a non-holder: again")
	}
	// The holder synced to 110; 120 was wanted meanwhile: again.
	if !finish(t, s, "u1", "a", 110, now.Add(2*time.Second)) {
		t.Fatal("FinishSync below the wanted history id: not again")
	}
	if claim(t, s, "u1", "b", 0, now.Add(3*time.Second)) {
		t.Fatal("ClaimSync after FinishSync said again: claimed (the holder keeps it)")
	}
	if finish(t, s, "u1", "a", 125, now.Add(4*time.Second)) {
		t.Fatal("FinishSync at the wanted history id: again")
	}
	if !claim(t, s, "u1", "b", 0, now.Add(5*time.Second)) {
		t.Fatal("ClaimSync after release: not claimed")
	}
	// The release cleared what was wanted: synced 0 covers it.
	if finish(t, s, "u1", "b", 0, now.Add(6*time.Second)) {
		t.Error("FinishSync after a release: again, want the wanted history id cleared")
	}
	// A forced release (synced = max) ends a holder's rounds whatever was wanted.
	claim(t, s, "u1", "a", 0, now.Add(7*time.Second))
	claim(t, s, "u1", "b", math.MaxUint64-1, now.Add(8*time.Second))
	if finish(t, s, "u1", "a", math.MaxUint64, now.Add(9*time.Second)) {
		t.Error("FinishSync(max): again")
	}
	if !claim(t, s, "u1", "b", 0, now.Add(10*time.Second)) {
		t.Error("ClaimSync after a forced release: not claimed")
	}
}

func testSyncLeaseExpiry(t *testing.T, s store.Store) {
	now := base
	claim(t, s, "u1", "a", 0, now)
	if claim(t, s, "u1", "b", 0, now.Add(59*time.Second)) {
		t.Fatal("ClaimSync before the lease expired: claimed")
	}
	if !claim(t, s, "u1", "b", 0, now.Add(time.Minute)) {
		t.Fatal("ClaimSync at the lease's expiry: not claimed")
	}
	// The old holder's FinishSync no longer touches the lease.
	if finish(t, s, "u1", "a", 0, now.Add(61*time.Second)) {
		t.Error("FinishSync by the expired holder: again")
	}
	if claim(t, s, "u1", "c", 0, now.Add(62*time.Second)) {
		t.Error("ClaimSync after the expired holder finished: claimed, want b to keep it")
	}
}

func testSyncLeaseConcurrent(t *testing.T, s store.Store) {
	const n = 8
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		won []string
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("instance-%d", i)
			ok, err := s.ClaimSync(context.Background(), "u1", owner, uint64(i), base, time.Minute)
			if err != nil {
				t.Errorf("ClaimSync(%s): %v", owner, err)
				return
			}
			if ok {
				mu.Lock()
				won = append(won, owner)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(won) != 1 {
		t.Fatalf("concurrent ClaimSync: %v claimed, want exactly one", won)
	}
	// Every claimer's history id was recorded: the holder goes again up to n-1.
	if !finish(t, s, "u1", won[0], n-2, base) {
		t.Error("FinishSync below the largest wanted history id: not again")
	}
}

func testMailboxWatch(t *testing.T, s store.Store) {
	mb := &store.Mailbox{HistoryID: 5, WatchedAt: base, WatchExpiration: base.Add(7 * 24 * time.Hour), WatchHistoryID: math.MaxUint64 - 3}
	if err := s.SaveSync(t.Context(), "u1", mb, nil, nil); err != nil {
		t.Fatal(err)
	}
	want := *mb
	want.UserID = "u1"
	if diff := cmp.Diff(&want, mustGetMailbox(t, s, "u1"), cmpOpts...); diff != "" {
		t.Errorf("GetMailbox (-want +got):\n%s", diff)
	}
}

func testPushCancelled(t *testing.T, s store.Store) {
	put(t, s, withEmail("u1", "u1@example.com"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"ChangeCredential", func() error {
			_, err := s.ChangeCredential(ctx, "u1", func(*store.Credential) (*store.CredentialChange, error) {
				return &store.CredentialChange{Delete: true, Events: []*store.OutboxEvent{event("u1", "x", "grant.disconnected")}}, nil
			})
			return err
		}},
		{"UserIDByEmail", func() error { _, err := s.UserIDByEmail(ctx, "u1@example.com"); return err }},
		{"SaveSyncEvents", func() error {
			return s.SaveSyncEvents(ctx, "u1", &store.Mailbox{HistoryID: 9}, messages("a"), nil, []*store.OutboxEvent{event("u1", "y", "message.added")})
		}},
		{"ListOutbox", func() error { _, err := s.ListOutbox(ctx, "", 0); return err }},
		{"DeleteOutbox", func() error { return s.DeleteOutbox(ctx, []string{"x"}) }},
		{"ClaimSync", func() error { _, err := s.ClaimSync(ctx, "u1", "a", 1, base, time.Minute); return err }},
		{"FinishSync", func() error { _, err := s.FinishSync(ctx, "u1", "a", 1, base, time.Minute); return err }},
	} {
		if err := c.call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s(cancelled context): got err %v, want context.Canceled", c.name, err)
		}
	}
	mustGet(t, s, "u1")
	wantUser(t, s, "u1@example.com", "u1")
	if got := outbox(t, s, "", 0); len(got) != 0 {
		t.Errorf("outbox after cancelled calls: %v", eventIDs(got))
	}
	if _, err := s.GetMailbox(t.Context(), "u1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("mailbox after a cancelled SaveSyncEvents: err %v, want ErrNotFound", err)
	}
	if !claim(t, s, "u1", "b", 0, base) {
		t.Error("ClaimSync after a cancelled ClaimSync: not claimed")
	}
}
