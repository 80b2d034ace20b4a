package oauthflow_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"example.com/gmailoauth/internal/events"
	"example.com/gmailoauth/internal/store"
)

// grantEvents decodes the outbox's events, oldest first.
func grantEvents(t *testing.T, st store.Store) []events.Event {
	t.Helper()
	pending, err := st.ListOutbox(context.Background(), "", 0)
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

// grantOf returns the grant id stored for userID (what its sessions carry).
func grantOf(t *testing.T, st store.Store, userID string) string {
	t.Helper()
	c, err := st.GetCredential(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return c.Grant
}

func types(evs []events.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

func TestGrantChangesWriteTheirEvents(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	f := e.Deps.Flow
	f.Events = true
	var mu sync.Mutex
	var kicked []string
	f.AfterEvents = func(_ context.Context, userID string) {
		mu.Lock()
		kicked = append(kicked, userID)
		mu.Unlock()
	}

	uid := e.connect(t, f, "grants@example.com")
	got := grantEvents(t, e.Store)
	if !cmp.Equal(types(got), []string{events.GrantConnected}) || got[0].UserID != uid || got[0].Email != "grants@example.com" ||
		got[0].Grant == nil || len(got[0].Grant.Scopes) == 0 {
		t.Fatalf("after connecting: %+v; want one grant.connected with the scopes", got)
	}
	if id, err := e.Store.UserIDByEmail(ctx, "GRANTS@example.com"); err != nil || id != uid {
		t.Errorf("UserIDByEmail after connecting = %q, %v; want %q", id, err, uid)
	}

	// Revoked twice: one event, and AfterEvents once.
	for range 2 {
		if err := f.MarkRevoked(ctx, uid, "invalid_grant: test"); err != nil {
			t.Fatal(err)
		}
	}
	got = grantEvents(t, e.Store)
	if !cmp.Equal(types(got), []string{events.GrantConnected, events.GrantRevoked}) || got[1].Grant.Reason != "invalid_grant: test" {
		t.Fatalf("after revoking twice: %v; want connected, revoked (with the reason)", types(got))
	}

	// Reconnect, then disconnect: the credential and its index entry go,
	// the event stays.
	e.clock.Advance(1)
	e.connect(t, f, "grants@example.com")
	if _, err := f.Revoke(ctx, uid, grantOf(t, e.Store, uid)); err != nil {
		t.Fatal(err)
	}
	got = grantEvents(t, e.Store)
	want := []string{events.GrantConnected, events.GrantRevoked, events.GrantConnected, events.GrantDisconnected}
	if !cmp.Equal(types(got), want) {
		t.Fatalf("events: %v; want %v", types(got), want)
	}
	if got[0].EventID == got[2].EventID {
		t.Error("two connections have one event id; want one each")
	}
	if _, err := e.Store.UserIDByEmail(ctx, "grants@example.com"); err == nil {
		t.Error("the email index still names the disconnected user")
	}
	mu.Lock()
	defer mu.Unlock()
	if !cmp.Equal(kicked, []string{uid, uid}) {
		t.Errorf("AfterEvents called for %v; want the revocation and the disconnect", kicked)
	}
}

func TestNoEventsUnlessEnabled(t *testing.T) {
	e := newEnv(t)
	uid := e.connect(t, e.Deps.Flow, "quiet@example.com")
	if _, err := e.Deps.Flow.Revoke(context.Background(), uid, grantOf(t, e.Store, uid)); err != nil {
		t.Fatal(err)
	}
	if got := grantEvents(t, e.Store); len(got) != 0 {
		t.Errorf("events without Flow.Events: %v", types(got))
	}
}
