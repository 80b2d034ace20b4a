package apidoc_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"testing"
	"time"

	"example.com/gmailoauth/internal/local/devserver"
	"example.com/gmailoauth/internal/local/devtest"
	"example.com/gmailoauth/internal/local/sandbox"
)

// TestPushAnswersAndEventsMatchTheSpec runs the stack with push (make dev's
// default) through every kind of change, then validates the push sweep's
// answers against docs/openapi.yaml and every event the app received
// (GET /dev/events: the bodies the events topic carries) against the
// spec's Event schema; every event type must have been seen.
func TestPushAnswersAndEventsMatchTheSpec(t *testing.T) {
	s := loadSpec(t)
	st := devtest.Start(t, devtest.Options{})
	d := &driver{t: t, s: s, st: st, seen: &seen{m: map[string]int{}}}
	const email, other = "events@example.com", "other@example.com"
	st.Sandbox.SetMailboxSize(email, 5)
	st.Sandbox.SetMailboxSize(other, 2)
	session, _ := st.Connect(t, email)
	otherSession, _ := st.Connect(t, other)

	read := func() []json.RawMessage {
		r := st.Get(t, "/dev/events", nil)
		var evs []json.RawMessage
		r.JSON(t, &evs)
		return evs
	}
	types := func(evs []json.RawMessage) []string {
		var out []string
		for _, e := range evs {
			var x struct {
				Type string `json:"type"`
			}
			_ = json.Unmarshal(e, &x)
			out = append(out, x.Type)
		}
		return out
	}
	waitFor := func(typ string, n int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			got := types(read())
			count := 0
			for _, x := range got {
				if x == typ {
					count++
				}
			}
			if count >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("waited 30s for %d %s; /dev/events has %v", n, typ, got)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("message.added", 6) // 5 + 2 seeded, one of them spam

	ids := st.Sandbox.AddMessages(email, 2)
	waitFor("message.added", 8)
	if err := st.Sandbox.ModifyLabels(email, ids[0], []string{"STARRED"}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor("message.labels_changed", 1)
	if err := st.Sandbox.DeleteMessages(email, ids[1]); err != nil {
		t.Fatal(err)
	}
	waitFor("message.deleted", 1)
	// A sync that fails: Gmail down while a notification comes.
	st.Sandbox.SetGmailFaults(sandbox.GmailFaults{FailNext: 1000})
	st.Sandbox.AddMessages(email, 1)
	waitFor("sync.failed", 1)
	st.Sandbox.SetGmailFaults(sandbox.GmailFaults{})
	// The grant revoked at Google: the next refresh finds out.
	st.Sandbox.Revoke(other)
	st.Clock.Advance(59 * time.Minute) // the access token expired; the session not yet
	// A live listing (the mirror answers without Google) refreshes and finds out.
	if r := st.Get(t, "/list-messages?source=gmail", devtest.Bearer(otherSession)); r.Status != http.StatusUnauthorized || r.ErrorCode() != "reauthorization_required" {
		t.Fatalf("list after the revocation: %d %s", r.Status, r.Body)
	}
	waitFor("grant.revoked", 1)

	// The sweep with push: its answer is a PushSweepSummary.
	tok, err := st.Sandbox.MintIDToken(st.URL+"/list-messages", devserver.SandboxSchedulerAccount, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	h := devtest.Bearer(tok)
	h.Set("Content-Type", "application/json")
	d.want(d.do("POST", "/list-messages", "/list-messages", h, "{}"), 200, "")
	d.want(d.do("POST", "/list-messages", "/list-messages", h, `{"user_id":"no-such-user"}`), 404, "unknown_user")

	if r := st.Do(t, http.MethodDelete, "/authorize", devtest.Bearer(session), ""); r.Status != http.StatusNoContent {
		t.Fatalf("disconnect: %d %s", r.Status, r.Body)
	}
	waitFor("grant.disconnected", 1)

	sch, err := s.schema("/components/schemas/Event")
	if err != nil {
		t.Fatal(err)
	}
	evs := read()
	for _, raw := range evs {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(v); err != nil {
			t.Errorf("event %s does not match #/components/schemas/Event: %v", raw, err)
		}
	}
	got := slices.Compact(slices.Sorted(slices.Values(types(evs))))
	want := []string{"grant.connected", "grant.disconnected", "grant.revoked", "message.added", "message.deleted", "message.labels_changed", "sync.failed"}
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("event types seen %v; want every documented type %v", got, want)
	}
	t.Logf("validated %d events against the Event schema", len(evs))
}
