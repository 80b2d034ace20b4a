package storetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"example.com/gmailoauth/internal/store"
)

// securityTests are the contract of the store's security rules, run by Run.
var securityTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"Security/EmptyUserIDRefused", testEmptyUserIDRefused},
	{"Security/GrantRoundTrip", testGrantRoundTrip},
	{"Security/SaveSyncNeedsTheGrant", testSaveSyncNeedsTheGrant},
	{"Security/SaveSyncLargeNeedsTheGrant", testSaveSyncLargeNeedsTheGrant},
	{"Security/ListMailboxIDs", testListMailboxIDs},
}

// testEmptyUserIDRefused: no store keeps a credential or a mailbox under
// the empty user id (a login the provider named no user for).
func testEmptyUserIDRefused(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.UpdateCredential(ctx, "", func(*store.Credential) (*store.Credential, error) {
		return fullCredential("x"), nil
	})
	if !errors.Is(err, store.ErrInvalidUserID) {
		t.Errorf("UpdateCredential(\"\"): got %v, want store.ErrInvalidUserID", err)
	}
	if err := s.SaveSync(ctx, "", &store.Mailbox{HistoryID: 1}, messages("m1"), nil); !errors.Is(err, store.ErrInvalidUserID) {
		t.Errorf("SaveSync(\"\"): got %v, want store.ErrInvalidUserID", err)
	}
	_, err = s.GetCredential(ctx, "")
	wantNotFound(t, "GetCredential(\"\")", err)
	_, err = s.GetMailbox(ctx, "")
	wantNotFound(t, "GetMailbox(\"\")", err)
	if all, err := s.ListCredentials(ctx, "", "", 0); err != nil || len(all) != 0 {
		t.Errorf("ListCredentials after refused writes: %d credentials, err %v; want none", len(all), err)
	}
	if ids, err := s.ListMailboxIDs(ctx, "", 0); err != nil || len(ids) != 0 {
		t.Errorf("ListMailboxIDs after refused writes: %v, err %v; want none", ids, err)
	}
}

// testGrantRoundTrip: a credential's and a checkpoint's grant are kept.
func testGrantRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := fullCredential("u1")
	c.Grant = "g-1"
	if got := put(t, s, c); got.Grant != "g-1" {
		t.Errorf("UpdateCredential returned grant %q, want g-1", got.Grant)
	}
	if got := mustGet(t, s, "u1"); got.Grant != "g-1" {
		t.Errorf("GetCredential grant %q, want g-1", got.Grant)
	}
	if err := s.SaveSync(ctx, "u1", &store.Mailbox{HistoryID: 7, Grant: "g-1"}, nil, nil); err != nil {
		t.Fatalf("SaveSync: %v", err)
	}
	if got := mustGetMailbox(t, s, "u1"); got.Grant != "g-1" {
		t.Errorf("GetMailbox grant %q, want g-1", got.Grant)
	}
}

// testSaveSyncNeedsTheGrant: a checkpoint naming a grant is written, with
// its messages, only while the credential holds that grant; otherwise
// nothing is written and the error is store.ErrGrantGone.
func testSaveSyncNeedsTheGrant(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := fullCredential("u1")
	c.Grant = "g-1"
	put(t, s, c)

	if err := s.SaveSync(ctx, "u1", &store.Mailbox{HistoryID: 1, Grant: "g-1"}, messages("m1"), nil); err != nil {
		t.Fatalf("SaveSync with the stored grant: %v", err)
	}
	for _, tc := range []struct {
		name  string
		setup func()
	}{
		{"another grant", func() {}},
		{"credential deleted", func() {
			if err := s.DeleteCredential(ctx, "u1"); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		tc.setup()
		err := s.SaveSync(ctx, "u1", &store.Mailbox{HistoryID: 2, Grant: "g-other"}, messages("m2"), []string{"m1"})
		if !errors.Is(err, store.ErrGrantGone) {
			t.Errorf("%s: SaveSync: got %v, want store.ErrGrantGone", tc.name, err)
		}
		if got := mustGetMailbox(t, s, "u1"); got.HistoryID != 1 {
			t.Errorf("%s: checkpoint history id %d, want 1 (unchanged)", tc.name, got.HistoryID)
		}
		if diff := cmp.Diff([]string{"m1"}, messageIDs(listAll(t, s, "u1"))); diff != "" {
			t.Errorf("%s: messages (-want +got):\n%s", tc.name, diff)
		}
	}
	if err := s.SaveSync(ctx, "u1", &store.Mailbox{HistoryID: 3, Grant: "g-1"}, messages("m3"), nil); !errors.Is(err, store.ErrGrantGone) {
		t.Errorf("SaveSync after the credential was deleted: got %v, want store.ErrGrantGone", err)
	}
	// A checkpoint without a grant is written as before (tools, old callers).
	if err := s.SaveSync(ctx, "u1", &store.Mailbox{HistoryID: 4}, nil, nil); err != nil {
		t.Errorf("SaveSync without a grant: %v", err)
	}
}

// testSaveSyncLargeNeedsTheGrant: a SaveSync larger than one commit is
// refused as a whole when the grant is gone before it starts.
func testSaveSyncLargeNeedsTheGrant(t *testing.T, s store.Store) {
	ctx := t.Context()
	ids := make([]string, 1200)
	for i := range ids {
		ids[i] = fmt.Sprintf("m%04d", i)
	}
	err := s.SaveSync(ctx, "u1", &store.Mailbox{HistoryID: 1, Grant: "g-1"}, messages(ids...), nil)
	if !errors.Is(err, store.ErrGrantGone) {
		t.Errorf("SaveSync of %d messages without a credential: got %v, want store.ErrGrantGone", len(ids), err)
	}
	if msgs := listAll(t, s, "u1"); len(msgs) != 0 {
		t.Errorf("%d messages written for a grant that is gone, want none", len(msgs))
	}
	_, err = s.GetMailbox(ctx, "u1")
	wantNotFound(t, "GetMailbox", err)
}

// testListMailboxIDs: the users with a checkpoint, in order and paged,
// whether or not a credential is stored.
func testListMailboxIDs(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, id := range []string{"u3", "u1", "u4", "u2"} {
		if err := s.SaveSync(ctx, id, &store.Mailbox{HistoryID: 1}, messages("m1"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveSync(ctx, "u5", nil, messages("m1"), nil); err != nil { // messages, no checkpoint
		t.Fatal(err)
	}
	put(t, s, fullCredential("u9")) // a credential, no mailbox
	if err := s.DeleteMailbox(ctx, "u4"); err != nil {
		t.Fatal(err)
	}
	var got []string
	after := ""
	for {
		page, err := s.ListMailboxIDs(ctx, after, 2)
		if err != nil {
			t.Fatalf("ListMailboxIDs(%q): %v", after, err)
		}
		got = append(got, page...)
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1]
	}
	if diff := cmp.Diff([]string{"u1", "u2", "u3"}, got); diff != "" {
		t.Errorf("ListMailboxIDs (-want +got):\n%s", diff)
	}
	if all, err := s.ListMailboxIDs(ctx, "", 0); err != nil || len(all) != 3 {
		t.Errorf("ListMailboxIDs without a limit: %v, %v; want 3 ids", all, err)
	}
}
