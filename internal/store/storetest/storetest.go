// Package storetest is the contract suite of store.Store. Every implementation
// runs it from its own tests, so the embedded default (memstore) cannot drift
// from production (fsstore):
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return memstore.New() })
//	}
//
// The suite pins down behaviour the interface's doc comments leave implicit,
// in the way memstore (the reference) behaves:
//
//   - times round-trip at microsecond precision (Firestore's); compare them
//     with time.Equal, the location is not kept;
//   - nil and empty slices are equivalent;
//   - a limit <= 0 in ListCredentials and ListMailboxMessages means no limit;
//   - a state is expired when now is at or after ExpiresAt;
//   - an ID both upserted and deleted in one SaveSync ends up deleted, and a
//     nil checkpoint writes only the messages;
//   - the UserID of a credential or mailbox is the key it is stored under,
//     whatever the caller put in the struct;
//   - GetMailboxMessages keeps the order of its ids, leaves out missing ones
//     (including IDs no document could have) and gives a repeated id's
//     message once, at its first place;
//   - the sweep state is one document outside the users' collections: it
//     never shows up as a credential, a mailbox or a message;
//   - a call with an already cancelled context fails with an error wrapping
//     context.Canceled and changes nothing.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"example.com/gmailoauth/internal/store"
)

// Run runs the contract suite against the stores made by newStore, one fresh
// and empty store per subtest. Subtests run in parallel, so newStore must be
// safe for concurrent use; it should register the store's clean-up (Close)
// with t.Cleanup. The suite calls Close itself only in its "Close" subtest,
// so a second Close from the clean-up must be harmless.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"GetCredential/Missing", testGetCredentialMissing},
		{"UpdateCredential/Create", testUpdateCreate},
		{"UpdateCredential/Modify", testUpdateModify},
		{"UpdateCredential/NoOp", testUpdateNoOp},
		{"UpdateCredential/FuncError", testUpdateFuncError},
		{"UpdateCredential/FuncGetsCopy", testUpdateFuncGetsCopy},
		{"UpdateCredential/ConcurrentIncrements", testUpdateConcurrent},
		{"Credential/ReturnsCopies", testCredentialCopies},
		{"Credential/RoundTrip", testCredentialRoundTrip},
		{"Credential/MicrosecondPrecision", testCredentialPrecision},
		{"Credential/UnusualIDs", testCredentialUnusualIDs},
		{"DeleteCredential", testDeleteCredential},
		{"ListCredentials/Paging", testListCredentialsPaging},
		{"ListCredentials/After", testListCredentialsAfter},
		{"State/ConsumeOnce", testStateConsumeOnce},
		{"State/Unknown", testStateUnknown},
		{"State/Expiry", testStateExpiry},
		{"State/PutOverwrites", testStatePutOverwrites},
		{"State/ReturnsCopies", testStateCopies},
		{"State/ConcurrentConsume", testStateConcurrentConsume},
		{"Mailbox/Missing", testMailboxMissing},
		{"Mailbox/SaveSync", testSaveSync},
		{"Mailbox/RoundTrip", testMailboxRoundTrip},
		{"Mailbox/UpsertAndDeleteInOneCall", testSaveSyncUpsertAndDelete},
		{"Mailbox/NilCheckpoint", testSaveSyncNilCheckpoint},
		{"Mailbox/ReturnsCopies", testMailboxCopies},
		{"Mailbox/ListPaging", testListMailboxMessagesPaging},
		{"Mailbox/LargeSaveSync", testSaveSyncLarge},
		{"Mailbox/Delete", testDeleteMailbox},
		{"Mailbox/GetMessages", testGetMailboxMessages},
		{"Mailbox/GetMessagesEmpty", testGetMailboxMessagesEmpty},
		{"Mailbox/GetMessagesMany", testGetMailboxMessagesMany},
		{"Mailbox/GetMessagesReturnsCopies", testGetMailboxMessagesCopies},
		{"SweepState/Zero", testSweepStateZero},
		{"SweepState/RoundTrip", testSweepStateRoundTrip},
		{"SweepState/Overwrite", testSweepStateOverwrite},
		{"SweepState/MicrosecondPrecision", testSweepStatePrecision},
		{"SweepState/Separate", testSweepStateSeparate},
		{"CancelledContext", testCancelledContext},
		{"Close", testClose},
	}
	tests = append(tests, quotaTests...)
	tests = append(tests, securityTests...)
	tests = append(tests, pushTests...) // push.go
	tests = append(tests, mirrorTests...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore(t))
		})
	}
}

// base is a fixed instant with microsecond precision, in a non-UTC zone so
// that implementations may not rely on the location surviving.
var base = time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.FixedZone("CET", 3600))

// cmpOpts compares times with time.Equal and treats nil and empty slices alike.
var cmpOpts = []cmp.Option{
	cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
	cmpopts.EquateEmpty(),
}

func fullCredential(userID string) *store.Credential {
	return &store.Credential{
		UserID:            userID,
		Email:             userID + "@example.com",
		RefreshToken:      store.Sealed{KeyID: "k-2026-01", Ciphertext: []byte{0x00, 0x01, 0xfe, 0xff, 'r', 0x00}},
		AccessToken:       store.Sealed{KeyID: "k-2026-02", Ciphertext: []byte{0xde, 0xad, 0xbe, 0xef, 0x00, 'a'}},
		AccessTokenExpiry: base.Add(time.Hour),
		// Not sorted: the order must survive.
		Scopes:            []string{"openid", "https://www.googleapis.com/auth/gmail.readonly", "email"},
		Status:            store.StatusActive,
		CreatedAt:         base.Add(-48 * time.Hour),
		UpdatedAt:         base,
		LastRefreshAt:     base.Add(-time.Minute),
		RevokedAt:         base.Add(-24 * time.Hour),
		RevokedReason:     "invalid_grant: Token has been expired or revoked.",
		RefreshLeaseOwner: "instance-7/req-42",
		RefreshLeaseUntil: base.Add(30 * time.Second),
	}
}

func put(t *testing.T, s store.Store, c *store.Credential) *store.Credential {
	t.Helper()
	in := c.Clone()
	got, err := s.UpdateCredential(t.Context(), c.UserID, func(*store.Credential) (*store.Credential, error) {
		return in.Clone(), nil
	})
	if err != nil {
		t.Fatalf("UpdateCredential(%q) create: %v", c.UserID, err)
	}
	return got
}

func mustGet(t *testing.T, s store.Store, userID string) *store.Credential {
	t.Helper()
	got, err := s.GetCredential(t.Context(), userID)
	if err != nil {
		t.Fatalf("GetCredential(%q): %v", userID, err)
	}
	return got
}

func wantCredential(t *testing.T, what string, got, want *store.Credential) {
	t.Helper()
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Errorf("%s: credential mismatch (-want +got):\n%s", what, diff)
	}
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("%s: got err %v, want store.ErrNotFound", what, err)
	}
}

func testGetCredentialMissing(t *testing.T, s store.Store) {
	got, err := s.GetCredential(t.Context(), "nobody")
	wantNotFound(t, "GetCredential(missing)", err)
	if got != nil {
		t.Errorf("GetCredential(missing) = %+v, want nil", got)
	}
}

func testUpdateCreate(t *testing.T, s store.Store) {
	ctx := t.Context()
	want := fullCredential("u1")
	calls := 0
	got, err := s.UpdateCredential(ctx, "u1", func(cur *store.Credential) (*store.Credential, error) {
		calls++
		if cur != nil {
			t.Errorf("fn got cur %+v, want nil for a missing credential", cur)
		}
		c := want.Clone()
		c.UserID = "" // the key decides, not the struct
		return c, nil
	})
	if err != nil {
		t.Fatalf("UpdateCredential: %v", err)
	}
	if calls < 1 {
		t.Errorf("fn called %d times, want at least 1", calls)
	}
	wantCredential(t, "UpdateCredential result", got, want)
	wantCredential(t, "GetCredential after create", mustGet(t, s, "u1"), want)
}

func testUpdateModify(t *testing.T, s store.Store) {
	ctx := t.Context()
	orig := put(t, s, fullCredential("u1"))

	want := orig.Clone()
	want.Status = store.StatusRevoked
	want.RevokedAt = base.Add(time.Hour)
	want.RevokedReason = "user revoked"
	want.AccessToken = store.Sealed{}
	want.Scopes = append(want.Scopes, "profile")
	got, err := s.UpdateCredential(ctx, "u1", func(cur *store.Credential) (*store.Credential, error) {
		if diff := cmp.Diff(orig, cur, cmpOpts...); diff != "" {
			t.Errorf("fn got cur (-want +got):\n%s", diff)
		}
		if cur == nil {
			return nil, errors.New("cur is nil")
		}
		cur.Status = store.StatusRevoked
		cur.RevokedAt = base.Add(time.Hour)
		cur.RevokedReason = "user revoked"
		cur.AccessToken = store.Sealed{}
		cur.Scopes = append(cur.Scopes, "profile")
		return cur, nil
	})
	if err != nil {
		t.Fatalf("UpdateCredential: %v", err)
	}
	wantCredential(t, "UpdateCredential result", got, want)
	wantCredential(t, "GetCredential after modify", mustGet(t, s, "u1"), want)
}

func testUpdateNoOp(t *testing.T, s store.Store) {
	ctx := t.Context()
	tests := []struct {
		name     string
		existing *store.Credential
	}{
		{"existing", fullCredential("u1")},
		{"missing", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const id = "u1"
			if tt.existing != nil {
				put(t, s, tt.existing)
			} else {
				_ = s.DeleteCredential(ctx, id)
			}
			got, err := s.UpdateCredential(ctx, id, func(cur *store.Credential) (*store.Credential, error) {
				if cur != nil {
					cur.Email = "changed-but-not-returned@example.com"
				}
				return nil, nil
			})
			if err != nil {
				t.Fatalf("UpdateCredential(no-op): %v", err)
			}
			wantCredential(t, "UpdateCredential(no-op) result", got, tt.existing)
			wantStored(t, s, id, tt.existing, "after a no-op")
		})
	}
}

func testUpdateFuncError(t *testing.T, s store.Store) {
	ctx := t.Context()
	errFn := errors.New("storetest: fn refused")
	tests := []struct {
		name     string
		existing *store.Credential
		ret      func(cur *store.Credential) *store.Credential // what fn returns beside the error
	}{
		{"existing/nil result", fullCredential("u1"), func(*store.Credential) *store.Credential { return nil }},
		{"existing/modified result", fullCredential("u1"), func(cur *store.Credential) *store.Credential {
			cur.Email = "should-not-be-written@example.com"
			return cur
		}},
		{"missing/new result", nil, func(*store.Credential) *store.Credential { return fullCredential("u1") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const id = "u1"
			if tt.existing != nil {
				put(t, s, tt.existing)
			} else {
				_ = s.DeleteCredential(ctx, id)
			}
			got, err := s.UpdateCredential(ctx, id, func(cur *store.Credential) (*store.Credential, error) {
				return tt.ret(cur), errFn
			})
			if !errors.Is(err, errFn) {
				t.Errorf("UpdateCredential: got err %v, want fn's error %v", err, errFn)
			}
			if got != nil {
				t.Errorf("UpdateCredential: got %+v with an error, want nil", got)
			}
			wantStored(t, s, id, tt.existing, "after fn's error")
		})
	}
}

func testUpdateFuncGetsCopy(t *testing.T, s store.Store) {
	ctx := t.Context()
	want := put(t, s, fullCredential("u1"))
	_, err := s.UpdateCredential(ctx, "u1", func(cur *store.Credential) (*store.Credential, error) {
		cur.Scopes[0] = "mutated"
		cur.RefreshToken.Ciphertext[0] = 0x42
		cur.Email = "mutated@example.com"
		return nil, nil
	})
	if err != nil {
		t.Fatalf("UpdateCredential: %v", err)
	}
	wantCredential(t, "GetCredential after fn mutated cur and wrote nothing", mustGet(t, s, "u1"), want)
}

// testUpdateConcurrent runs 20 concurrent read-modify-write updates of one
// credential, each appending a distinct scope: a lost update loses a scope.
func testUpdateConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := fullCredential("u1")
	c.Scopes = nil
	put(t, s, c)

	const n = 20
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = s.UpdateCredential(ctx, "u1", func(cur *store.Credential) (*store.Credential, error) {
				if cur == nil {
					return nil, errors.New("credential vanished")
				}
				cur.Scopes = append(cur.Scopes, "scope-"+strconv.Itoa(i))
				return cur, nil
			})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("UpdateCredential #%d: %v", i, err)
		}
	}
	got := mustGet(t, s, "u1").Scopes
	want := make([]string, n)
	for i := range n {
		want[i] = "scope-" + strconv.Itoa(i)
	}
	sort.Strings(got)
	sort.Strings(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("scopes after %d concurrent appends (-want +got):\n%s", n, diff)
	}
}

func testCredentialCopies(t *testing.T, s store.Store) {
	ctx := t.Context()
	want := fullCredential("u1")
	mutate := func(c *store.Credential) {
		c.Email = "mutated@example.com"
		c.Scopes[0] = "mutated"
		c.RefreshToken.Ciphertext[0] = 0x42
		c.AccessToken.Ciphertext[0] = 0x42
	}

	// The value fn returns must be copied, not kept.
	in := want.Clone()
	got, err := s.UpdateCredential(ctx, "u1", func(*store.Credential) (*store.Credential, error) { return in, nil })
	if err != nil {
		t.Fatalf("UpdateCredential: %v", err)
	}
	mutate(in)
	wantCredential(t, "after mutating fn's result", mustGet(t, s, "u1"), want)

	tests := []struct {
		name string
		get  func() (*store.Credential, error)
	}{
		{"UpdateCredential result", func() (*store.Credential, error) { return got, nil }},
		{"GetCredential", func() (*store.Credential, error) { return s.GetCredential(ctx, "u1") }},
		{"ListCredentials", func() (*store.Credential, error) {
			l, err := s.ListCredentials(ctx, "", "", 10)
			if err != nil || len(l) != 1 {
				return nil, fmt.Errorf("ListCredentials = %d items, %w; want 1", len(l), err)
			}
			return l[0], nil
		}},
		{"UpdateCredential no-op result", func() (*store.Credential, error) {
			return s.UpdateCredential(ctx, "u1", func(*store.Credential) (*store.Credential, error) { return nil, nil })
		}},
	}
	for _, tt := range tests {
		c, err := tt.get()
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		mutate(c)
		wantCredential(t, "after mutating the value from "+tt.name, mustGet(t, s, "u1"), want)
	}
}

func testCredentialRoundTrip(t *testing.T, s store.Store) {
	big := make([]byte, 4096)
	for i := range big {
		big[i] = byte(i * 7)
	}
	tests := []struct {
		name string
		c    *store.Credential
	}{
		{"all fields", fullCredential("all")},
		{"zero values", &store.Credential{UserID: "zero"}},
		{"status only", &store.Credential{UserID: "status", Status: store.StatusActive}},
		{"empty scopes", &store.Credential{UserID: "empty", Scopes: []string{}, RefreshToken: store.Sealed{KeyID: "k"}}},
		{"large ciphertext and utc times", &store.Credential{
			UserID:       "large",
			RefreshToken: store.Sealed{KeyID: "k", Ciphertext: big},
			CreatedAt:    time.Date(2001, 2, 3, 4, 5, 6, 7000, time.UTC),
			UpdatedAt:    time.Date(2099, 12, 31, 23, 59, 59, 999999000, time.UTC),
			Scopes:       []string{"b", "a", "b"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := put(t, s, tt.c)
			wantCredential(t, "UpdateCredential result", got, tt.c)
			wantCredential(t, "GetCredential", mustGet(t, s, tt.c.UserID), tt.c)
		})
	}
}

// testCredentialPrecision stores nanosecond times: an implementation keeps at
// least microseconds (Firestore drops the nanoseconds below).
func testCredentialPrecision(t *testing.T, s store.Store) {
	in := time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC)
	put(t, s, &store.Credential{UserID: "u1", AccessTokenExpiry: in})
	got := mustGet(t, s, "u1").AccessTokenExpiry
	if d := got.Sub(in); d <= -time.Microsecond || d >= time.Microsecond {
		t.Errorf("AccessTokenExpiry = %v, want %v to the microsecond", got, in)
	}
}

func testCredentialUnusualIDs(t *testing.T, s store.Store) {
	ids := []string{
		"109876543210987654321", // a Google "sub"
		"user@example.com",
		"with space",
		"dots.and-dashes_and+plus",
		"ünïcødé-日本",
		"__not_reserved",
	}
	for _, id := range ids {
		want := fullCredential(id)
		put(t, s, want)
		wantCredential(t, fmt.Sprintf("GetCredential(%q)", id), mustGet(t, s, id), want)
	}
	got, err := s.ListCredentials(t.Context(), "", "", 0)
	if err != nil {
		t.Fatalf("ListCredentials: %v", err)
	}
	want := slices.Sorted(slices.Values(ids))
	if diff := cmp.Diff(want, credentialIDs(got)); diff != "" {
		t.Errorf("ListCredentials IDs (-want +got):\n%s", diff)
	}
}

func testDeleteCredential(t *testing.T, s store.Store) {
	ctx := t.Context()
	put(t, s, fullCredential("u1"))
	keep := put(t, s, fullCredential("u2"))
	for i := range 2 { // the second delete finds nothing: still no error
		if err := s.DeleteCredential(ctx, "u1"); err != nil {
			t.Errorf("DeleteCredential #%d: %v", i+1, err)
		}
		_, err := s.GetCredential(ctx, "u1")
		wantNotFound(t, "GetCredential after delete", err)
	}
	if err := s.DeleteCredential(ctx, "never-existed"); err != nil {
		t.Errorf("DeleteCredential(never existed): %v", err)
	}
	wantCredential(t, "other credential after delete", mustGet(t, s, "u2"), keep)
}

// wantStored checks that the credential stored under id equals want, or
// that none is stored when want is nil.
func wantStored(t *testing.T, s store.Store, id string, want *store.Credential, when string) {
	t.Helper()
	got, err := s.GetCredential(t.Context(), id)
	if want == nil {
		wantNotFound(t, "GetCredential "+when, err)
		return
	}
	if err != nil {
		t.Fatalf("GetCredential %s: %v", when, err)
	}
	wantCredential(t, "GetCredential "+when, got, want)
}

func credentialIDs(cs []*store.Credential) []string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.UserID
	}
	return ids
}

// seedUsers stores n credentials "u0".."u{n-1}" in a shuffled order, every
// third one revoked, and returns the sorted IDs by status ("" = all).
func seedUsers(t *testing.T, s store.Store, n int) map[string][]string {
	ids := make([]string, n)
	for i := range n {
		ids[i] = "u" + strconv.Itoa(i) // "u10" sorts before "u2": byte order, not numeric
	}
	byStatus := map[string][]string{}
	r := rand.New(rand.NewPCG(1, 2))
	for _, i := range r.Perm(n) {
		c := fullCredential(ids[i])
		c.Status = store.StatusActive
		if i%3 == 0 {
			c.Status = store.StatusRevoked
		}
		put(t, s, c)
		byStatus[c.Status] = append(byStatus[c.Status], c.UserID)
		byStatus[""] = append(byStatus[""], c.UserID)
	}
	for _, v := range byStatus {
		sort.Strings(v)
	}
	return byStatus
}

func testListCredentialsPaging(t *testing.T, s store.Store) {
	ctx := t.Context()
	byStatus := seedUsers(t, s, 25)
	for _, status := range []string{"", store.StatusActive, store.StatusRevoked, "unknown"} {
		for _, limit := range []int{1, 7, 10, 25, 100} {
			t.Run(fmt.Sprintf("status=%q/limit=%d", status, limit), func(t *testing.T) {
				var got []string
				after := ""
				for page := 0; ; page++ {
					if page > 30 {
						t.Fatalf("more than 30 pages: cursor does not advance (after=%q)", after)
					}
					cs, err := s.ListCredentials(ctx, status, after, limit)
					if err != nil {
						t.Fatalf("ListCredentials(%q, %q, %d): %v", status, after, limit, err)
					}
					if len(cs) > limit {
						t.Fatalf("ListCredentials(%q, %q, %d) returned %d items", status, after, limit, len(cs))
					}
					for _, c := range cs {
						if status != "" && c.Status != status {
							t.Errorf("credential %q has status %q, want %q", c.UserID, c.Status, status)
						}
						if want := c.UserID + "@example.com"; c.Email != want {
							t.Errorf("credential %q: Email = %q, want %q (the whole document)", c.UserID, c.Email, want)
						}
					}
					got = append(got, credentialIDs(cs)...)
					if len(cs) < limit {
						break
					}
					after = cs[len(cs)-1].UserID
				}
				if diff := cmp.Diff(byStatus[status], got, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("IDs over all pages (-want +got):\n%s", diff)
				}
			})
		}
	}
	t.Run("limit=0 means all", func(t *testing.T) {
		cs, err := s.ListCredentials(ctx, store.StatusActive, "", 0)
		if err != nil {
			t.Fatalf("ListCredentials: %v", err)
		}
		if diff := cmp.Diff(byStatus[store.StatusActive], credentialIDs(cs)); diff != "" {
			t.Errorf("IDs (-want +got):\n%s", diff)
		}
	})
}

func testListCredentialsAfter(t *testing.T, s store.Store) {
	ctx := t.Context()
	byStatus := seedUsers(t, s, 25)
	all := byStatus[""]
	tests := []struct {
		after string
		want  []string
	}{
		{"", all[:3]},
		{"u1", []string{"u10", "u11", "u12"}},
		{"u10a", []string{"u11", "u12", "u13"}}, // not a stored ID
		{"u24", []string{"u3", "u4", "u5"}},
		{"u9", nil},
		{"zzz", nil},
		{"a", all[:3]},
	}
	for _, tt := range tests {
		cs, err := s.ListCredentials(ctx, "", tt.after, 3)
		if err != nil {
			t.Fatalf("ListCredentials(after=%q): %v", tt.after, err)
		}
		if diff := cmp.Diff(tt.want, credentialIDs(cs), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("ListCredentials(after=%q) IDs (-want +got):\n%s", tt.after, diff)
		}
	}
}

func fullState() *store.AuthState {
	return &store.AuthState{
		Verifier:    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
		Nonce:       "n-0S6_WzA2Mj",
		ReturnTo:    "https://app.example.com/after?x=1",
		ClientState: "frontend-state-123",
		LoginHint:   "someone@example.com",
		Scopes:      []string{"openid", "https://www.googleapis.com/auth/gmail.readonly", "email"},
		CreatedAt:   base,
		ExpiresAt:   base.Add(10 * time.Minute),
	}
}

func wantState(t *testing.T, what string, got, want *store.AuthState) {
	t.Helper()
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Errorf("%s: state mismatch (-want +got):\n%s", what, diff)
	}
}

func testStateConsumeOnce(t *testing.T, s store.Store) {
	ctx := t.Context()
	tests := []struct {
		name string
		st   *store.AuthState
	}{
		{"all fields", fullState()},
		{"minimal", &store.AuthState{Verifier: "v", ExpiresAt: base.Add(time.Minute)}},
	}
	for i, tt := range tests {
		key := fmt.Sprintf("%064x", i+1)
		if err := s.PutState(ctx, key, tt.st); err != nil {
			t.Fatalf("%s: PutState: %v", tt.name, err)
		}
		got, err := s.ConsumeState(ctx, key, base)
		if err != nil {
			t.Fatalf("%s: ConsumeState: %v", tt.name, err)
		}
		wantState(t, tt.name+": ConsumeState", got, tt.st)
		got, err = s.ConsumeState(ctx, key, base)
		wantNotFound(t, tt.name+": second ConsumeState", err)
		if got != nil {
			t.Errorf("%s: second ConsumeState = %+v, want nil", tt.name, got)
		}
	}
}

func testStateUnknown(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := s.PutState(ctx, "other", fullState()); err != nil {
		t.Fatalf("PutState: %v", err)
	}
	_, err := s.ConsumeState(ctx, "unknown", base)
	wantNotFound(t, "ConsumeState(unknown)", err)
	if _, err := s.ConsumeState(ctx, "other", base); err != nil {
		t.Errorf("ConsumeState(other) after a miss: %v", err)
	}
}

func testStateExpiry(t *testing.T, s store.Store) {
	ctx := t.Context()
	exp := base.Add(10 * time.Minute)
	tests := []struct {
		name    string
		now     time.Time
		wantErr error
	}{
		{"well before", base, nil},
		{"a microsecond before", exp.Add(-time.Microsecond), nil},
		{"exactly at ExpiresAt", exp, store.ErrStateExpired},
		{"after", exp.Add(time.Second), store.ErrStateExpired},
		{"a day after", exp.Add(24 * time.Hour), store.ErrStateExpired},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("expiry-%d", i)
			st := fullState()
			st.ExpiresAt = exp
			if err := s.PutState(ctx, key, st); err != nil {
				t.Fatalf("PutState: %v", err)
			}
			got, err := s.ConsumeState(ctx, key, tt.now)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("ConsumeState: got err %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil {
				wantState(t, "ConsumeState", got, st)
			} else if got != nil {
				t.Errorf("ConsumeState = %+v with an error, want nil", got)
			}
			// Single use whatever happened: the state is gone.
			_, err = s.ConsumeState(ctx, key, base)
			wantNotFound(t, "second ConsumeState", err)
		})
	}
}

func testStatePutOverwrites(t *testing.T, s store.Store) {
	ctx := t.Context()
	first, second := fullState(), fullState()
	second.Verifier = "second-verifier"
	second.Scopes = []string{"openid"}
	for _, st := range []*store.AuthState{first, second} {
		if err := s.PutState(ctx, "k", st); err != nil {
			t.Fatalf("PutState: %v", err)
		}
	}
	got, err := s.ConsumeState(ctx, "k", base)
	if err != nil {
		t.Fatalf("ConsumeState: %v", err)
	}
	wantState(t, "ConsumeState after two puts", got, second)
}

func testStateCopies(t *testing.T, s store.Store) {
	ctx := t.Context()
	want := fullState()
	in := fullState()
	if err := s.PutState(ctx, "k", in); err != nil {
		t.Fatalf("PutState: %v", err)
	}
	in.Verifier = "mutated"
	in.Scopes[0] = "mutated"
	got, err := s.ConsumeState(ctx, "k", base)
	if err != nil {
		t.Fatalf("ConsumeState: %v", err)
	}
	wantState(t, "ConsumeState after mutating PutState's argument", got, want)
}

// testStateConcurrentConsume replays one state from n callers at once:
// exactly one gets it, the others ErrNotFound.
func testStateConcurrentConsume(t *testing.T, s store.Store) {
	for _, n := range []int{2, 20} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			ctx := t.Context()
			for round := range 3 {
				key := fmt.Sprintf("race-%d-%d", n, round)
				want := fullState()
				if err := s.PutState(ctx, key, want); err != nil {
					t.Fatalf("PutState: %v", err)
				}
				var wg sync.WaitGroup
				start := make(chan struct{})
				got := make([]*store.AuthState, n)
				errs := make([]error, n)
				for i := range n {
					wg.Go(func() {
						<-start
						got[i], errs[i] = s.ConsumeState(ctx, key, base)
					})
				}
				close(start)
				wg.Wait()
				wins := 0
				for i, err := range errs {
					switch {
					case err == nil:
						wins++
						wantState(t, "winning ConsumeState", got[i], want)
					case errors.Is(err, store.ErrNotFound):
					default:
						t.Errorf("ConsumeState #%d: got err %v, want nil or store.ErrNotFound", i, err)
					}
				}
				if wins != 1 {
					t.Errorf("round %d: %d of %d concurrent ConsumeState calls succeeded, want exactly 1", round, wins, n)
				}
			}
		})
	}
}

func testMailboxMissing(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb, err := s.GetMailbox(ctx, "nobody")
	wantNotFound(t, "GetMailbox(missing)", err)
	if mb != nil {
		t.Errorf("GetMailbox(missing) = %+v, want nil", mb)
	}
	msgs, err := s.ListMailboxMessages(ctx, "nobody", "", 10)
	if err != nil {
		t.Errorf("ListMailboxMessages(missing): %v", err)
	}
	if len(msgs) != 0 {
		t.Errorf("ListMailboxMessages(missing) = %d messages, want 0", len(msgs))
	}
}

func message(id string) *store.MessageMeta {
	return &store.MessageMeta{
		ID:           id,
		ThreadID:     "t-" + id,
		Subject:      "Subject of " + id,
		From:         "Sender <sender@example.com>",
		Date:         "Sat, 14 Mar 2026 15:09:26 +0100",
		Snippet:      "snippet of " + id + " — ünïcødé",
		LabelIDs:     []string{"UNREAD", "INBOX", "CATEGORY_UPDATES"},
		InternalDate: 1773497366535,
		HistoryID:    987654321,
	}
}

func messages(ids ...string) []*store.MessageMeta {
	out := make([]*store.MessageMeta, len(ids))
	for i, id := range ids {
		out[i] = message(id)
	}
	return out
}

func listAll(t *testing.T, s store.Store, userID string) []*store.MessageMeta {
	t.Helper()
	msgs, err := s.ListMailboxMessages(t.Context(), userID, "", 0)
	if err != nil {
		t.Fatalf("ListMailboxMessages(%q): %v", userID, err)
	}
	return msgs
}

func messageIDs(msgs []*store.MessageMeta) []string {
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	return ids
}

func mustGetMailbox(t *testing.T, s store.Store, userID string) *store.Mailbox {
	t.Helper()
	mb, err := s.GetMailbox(t.Context(), userID)
	if err != nil {
		t.Fatalf("GetMailbox(%q): %v", userID, err)
	}
	return mb
}

func testSaveSync(t *testing.T, s store.Store) {
	ctx := t.Context()
	mb1 := &store.Mailbox{HistoryID: 100, LastSyncAt: base, MessageCount: 3}
	if err := s.SaveSync(ctx, "u1", mb1, messages("m3", "m1", "m2"), nil); err != nil {
		t.Fatalf("SaveSync #1: %v", err)
	}
	want1 := *mb1
	want1.UserID = "u1"
	if diff := cmp.Diff(&want1, mustGetMailbox(t, s, "u1"), cmpOpts...); diff != "" {
		t.Errorf("GetMailbox after SaveSync #1 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(messages("m1", "m2", "m3"), listAll(t, s, "u1"), cmpOpts...); diff != "" {
		t.Errorf("messages after SaveSync #1 (-want +got):\n%s", diff)
	}

	changed := message("m2")
	changed.LabelIDs = []string{"INBOX"}
	changed.Subject = "changed"
	mb2 := &store.Mailbox{HistoryID: 200, LastSyncAt: base.Add(time.Hour), MessageCount: 3}
	err := s.SaveSync(ctx, "u1", mb2, []*store.MessageMeta{changed, message("m4")}, []string{"m1", "never-existed"})
	if err != nil {
		t.Fatalf("SaveSync #2: %v", err)
	}
	want2 := *mb2
	want2.UserID = "u1"
	if diff := cmp.Diff(&want2, mustGetMailbox(t, s, "u1"), cmpOpts...); diff != "" {
		t.Errorf("GetMailbox after SaveSync #2 (-want +got):\n%s", diff)
	}
	want := []*store.MessageMeta{changed, message("m3"), message("m4")}
	if diff := cmp.Diff(want, listAll(t, s, "u1"), cmpOpts...); diff != "" {
		t.Errorf("messages after SaveSync #2 (-want +got):\n%s", diff)
	}

	// Running the same sync again (an interrupted run retried) changes nothing.
	if err := s.SaveSync(ctx, "u1", mb2, []*store.MessageMeta{changed, message("m4")}, []string{"m1", "never-existed"}); err != nil {
		t.Fatalf("SaveSync #2 again: %v", err)
	}
	if diff := cmp.Diff(want, listAll(t, s, "u1"), cmpOpts...); diff != "" {
		t.Errorf("messages after repeating SaveSync #2 (-want +got):\n%s", diff)
	}
	if msgs := listAll(t, s, "u2"); len(msgs) != 0 {
		t.Errorf("another user's mailbox has %d messages, want 0", len(msgs))
	}
}

func testMailboxRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	tests := []struct {
		name string
		mb   *store.Mailbox
		msg  *store.MessageMeta
	}{
		{
			name: "all fields",
			mb: &store.Mailbox{
				UserID: "ignored-the-key-decides", HistoryID: 1<<63 + 12345, LastSyncAt: base,
				LastError: "gmail: 429 rateLimitExceeded", LastErrorAt: base.Add(-time.Minute),
				FullSyncPageToken: "page-token-09876", PendingHistoryID: math.MaxUint64, MessageCount: 1234567,
			},
			msg: message("18c2f0a1b2c3d4e5"),
		},
		{
			name: "zero values",
			mb:   &store.Mailbox{},
			msg:  &store.MessageMeta{ID: "z"},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			userID := fmt.Sprintf("u%d", i)
			if err := s.SaveSync(ctx, userID, tt.mb, []*store.MessageMeta{tt.msg}, nil); err != nil {
				t.Fatalf("SaveSync: %v", err)
			}
			want := *tt.mb
			want.UserID = userID
			if diff := cmp.Diff(&want, mustGetMailbox(t, s, userID), cmpOpts...); diff != "" {
				t.Errorf("GetMailbox (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]*store.MessageMeta{tt.msg}, listAll(t, s, userID), cmpOpts...); diff != "" {
				t.Errorf("ListMailboxMessages (-want +got):\n%s", diff)
			}
		})
	}
}

func testSaveSyncUpsertAndDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := s.SaveSync(ctx, "u1", &store.Mailbox{HistoryID: 1}, messages("a", "b"), nil); err != nil {
		t.Fatalf("SaveSync #1: %v", err)
	}
	// "b" is upserted and deleted in one call (added then removed between two
	// syncs): deletes are applied after upserts, so it is gone.
	if err := s.SaveSync(ctx, "u1", &store.Mailbox{HistoryID: 2}, messages("b", "c"), []string{"b"}); err != nil {
		t.Fatalf("SaveSync #2: %v", err)
	}
	if diff := cmp.Diff([]string{"a", "c"}, messageIDs(listAll(t, s, "u1"))); diff != "" {
		t.Errorf("message IDs (-want +got):\n%s", diff)
	}
}

func testSaveSyncNilCheckpoint(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := s.SaveSync(ctx, "u1", nil, messages("a"), nil); err != nil {
		t.Fatalf("SaveSync(nil checkpoint): %v", err)
	}
	_, err := s.GetMailbox(ctx, "u1")
	wantNotFound(t, "GetMailbox after SaveSync with a nil checkpoint", err)
	if diff := cmp.Diff([]string{"a"}, messageIDs(listAll(t, s, "u1"))); diff != "" {
		t.Errorf("message IDs (-want +got):\n%s", diff)
	}
	mb := &store.Mailbox{HistoryID: 7}
	if err := s.SaveSync(ctx, "u1", mb, nil, nil); err != nil {
		t.Fatalf("SaveSync(checkpoint only): %v", err)
	}
	if got := mustGetMailbox(t, s, "u1").HistoryID; got != 7 {
		t.Errorf("HistoryID = %d, want 7", got)
	}
	if err := s.SaveSync(ctx, "u1", nil, nil, nil); err != nil {
		t.Fatalf("SaveSync(nothing): %v", err)
	}
	if got := mustGetMailbox(t, s, "u1").HistoryID; got != 7 {
		t.Errorf("HistoryID after an empty SaveSync = %d, want 7", got)
	}
}

func testMailboxCopies(t *testing.T, s store.Store) {
	ctx := t.Context()
	in := messages("a", "b")
	mb := &store.Mailbox{HistoryID: 5, LastError: "x"}
	if err := s.SaveSync(ctx, "u1", mb, in, nil); err != nil {
		t.Fatalf("SaveSync: %v", err)
	}
	mb.HistoryID = 6
	in[0].Subject = "mutated"
	in[0].LabelIDs[0] = "mutated"
	if got := mustGetMailbox(t, s, "u1").HistoryID; got != 5 {
		t.Errorf("HistoryID after mutating SaveSync's argument = %d, want 5", got)
	}
	got := listAll(t, s, "u1")
	if diff := cmp.Diff(messages("a", "b"), got, cmpOpts...); diff != "" {
		t.Errorf("messages after mutating SaveSync's arguments (-want +got):\n%s", diff)
	}
	got[1].LabelIDs[0] = "mutated"
	got[1].Subject = "mutated"
	if diff := cmp.Diff(messages("a", "b"), listAll(t, s, "u1"), cmpOpts...); diff != "" {
		t.Errorf("messages after mutating ListMailboxMessages' result (-want +got):\n%s", diff)
	}
	m := mustGetMailbox(t, s, "u1")
	m.HistoryID = 99
	if got := mustGetMailbox(t, s, "u1").HistoryID; got != 5 {
		t.Errorf("HistoryID after mutating GetMailbox's result = %d, want 5", got)
	}
}

func testListMailboxMessagesPaging(t *testing.T, s store.Store) {
	ctx := t.Context()
	var ids []string
	for i := range 30 {
		ids = append(ids, "m"+strconv.Itoa(i*37)) // mixed lengths: byte order
	}
	r := rand.New(rand.NewPCG(3, 4))
	shuffled := slices.Clone(ids)
	r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	if err := s.SaveSync(ctx, "u1", &store.Mailbox{HistoryID: 1}, messages(shuffled...), nil); err != nil {
		t.Fatalf("SaveSync: %v", err)
	}
	if err := s.SaveSync(ctx, "u2", &store.Mailbox{HistoryID: 1}, messages("m0", "zz"), nil); err != nil {
		t.Fatalf("SaveSync other user: %v", err)
	}
	sort.Strings(ids)
	for _, limit := range []int{1, 7, 30, 100} {
		t.Run(fmt.Sprintf("limit=%d", limit), func(t *testing.T) {
			var got []string
			after := ""
			for page := 0; ; page++ {
				if page > 31 {
					t.Fatalf("more than 31 pages: cursor does not advance (after=%q)", after)
				}
				msgs, err := s.ListMailboxMessages(ctx, "u1", after, limit)
				if err != nil {
					t.Fatalf("ListMailboxMessages(after=%q, %d): %v", after, limit, err)
				}
				if len(msgs) > limit {
					t.Fatalf("ListMailboxMessages(after=%q, %d) returned %d", after, limit, len(msgs))
				}
				for _, m := range msgs {
					if diff := cmp.Diff(message(m.ID), m, cmpOpts...); diff != "" {
						t.Errorf("message %q (-want +got):\n%s", m.ID, diff)
					}
				}
				got = append(got, messageIDs(msgs)...)
				if len(msgs) < limit {
					break
				}
				after = msgs[len(msgs)-1].ID
			}
			if diff := cmp.Diff(ids, got); diff != "" {
				t.Errorf("IDs over all pages (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("after a missing ID", func(t *testing.T) {
		// "m1" is not stored; "m10…", "m11…" sort after it, "m0" before.
		i, _ := slices.BinarySearch(ids, "m1")
		msgs, err := s.ListMailboxMessages(ctx, "u1", "m1", 2)
		if err != nil {
			t.Fatalf("ListMailboxMessages: %v", err)
		}
		if diff := cmp.Diff(ids[i:i+2], messageIDs(msgs)); diff != "" {
			t.Errorf("IDs (-want +got):\n%s", diff)
		}
	})
}

// testSaveSyncLarge writes more messages in one call than a Firestore commit
// takes (500 writes), deletes more than 500, then deletes the mailbox.
func testSaveSyncLarge(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 1200
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("%016x", 0x18c0000000000000+i*7919)
	}
	mb := &store.Mailbox{HistoryID: 4242, LastSyncAt: base, MessageCount: n}
	if err := s.SaveSync(ctx, "u1", mb, messages(ids...), nil); err != nil {
		t.Fatalf("SaveSync(%d upserts): %v", n, err)
	}
	if err := s.SaveSync(ctx, "u2", &store.Mailbox{HistoryID: 1}, messages("keep"), nil); err != nil {
		t.Fatalf("SaveSync other user: %v", err)
	}
	got := listAll(t, s, "u1")
	if len(got) != n {
		t.Fatalf("ListMailboxMessages = %d messages, want %d", len(got), n)
	}
	want := slices.Sorted(slices.Values(ids))
	if diff := cmp.Diff(want, messageIDs(got)); diff != "" {
		t.Errorf("IDs (-want +got):\n%s", diff)
	}
	if got := mustGetMailbox(t, s, "u1"); got.HistoryID != 4242 || got.MessageCount != n {
		t.Errorf("GetMailbox = %+v, want HistoryID 4242, MessageCount %d", got, n)
	}

	// Delete every other message: 600 deletes in one call.
	var del, keep []string
	for i, id := range want {
		if i%2 == 0 {
			del = append(del, id)
		} else {
			keep = append(keep, id)
		}
	}
	if err := s.SaveSync(ctx, "u1", &store.Mailbox{HistoryID: 4343, MessageCount: len(keep)}, nil, del); err != nil {
		t.Fatalf("SaveSync(%d deletes): %v", len(del), err)
	}
	if diff := cmp.Diff(keep, messageIDs(listAll(t, s, "u1"))); diff != "" {
		t.Errorf("IDs after deletes (-want +got):\n%s", diff)
	}

	if err := s.DeleteMailbox(ctx, "u1"); err != nil {
		t.Fatalf("DeleteMailbox: %v", err)
	}
	_, err := s.GetMailbox(ctx, "u1")
	wantNotFound(t, "GetMailbox after DeleteMailbox", err)
	if got := listAll(t, s, "u1"); len(got) != 0 {
		t.Errorf("ListMailboxMessages after DeleteMailbox = %d messages, want 0", len(got))
	}
	if diff := cmp.Diff([]string{"keep"}, messageIDs(listAll(t, s, "u2"))); diff != "" {
		t.Errorf("other user's messages after DeleteMailbox (-want +got):\n%s", diff)
	}
}

func testDeleteMailbox(t *testing.T, s store.Store) {
	ctx := t.Context()
	tests := []struct {
		name    string
		prepare func(userID string) error
	}{
		{"missing", func(string) error { return nil }},
		{"checkpoint and messages", func(u string) error {
			return s.SaveSync(ctx, u, &store.Mailbox{HistoryID: 1}, messages("a", "b", "c"), nil)
		}},
		{"messages without checkpoint", func(u string) error { return s.SaveSync(ctx, u, nil, messages("a"), nil) }},
		{"checkpoint without messages", func(u string) error { return s.SaveSync(ctx, u, &store.Mailbox{HistoryID: 1}, nil, nil) }},
	}
	if err := s.SaveSync(ctx, "other", &store.Mailbox{HistoryID: 9}, messages("x"), nil); err != nil {
		t.Fatalf("SaveSync(other): %v", err)
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			userID := fmt.Sprintf("u%d", i)
			if err := tt.prepare(userID); err != nil {
				t.Fatalf("prepare: %v", err)
			}
			for i := range 2 { // idempotent
				if err := s.DeleteMailbox(ctx, userID); err != nil {
					t.Fatalf("DeleteMailbox #%d: %v", i+1, err)
				}
				_, err := s.GetMailbox(ctx, userID)
				wantNotFound(t, "GetMailbox after DeleteMailbox", err)
				if got := listAll(t, s, userID); len(got) != 0 {
					t.Errorf("ListMailboxMessages after DeleteMailbox = %d messages, want 0", len(got))
				}
			}
		})
	}
	if got := mustGetMailbox(t, s, "other").HistoryID; got != 9 {
		t.Errorf("other user's HistoryID = %d, want 9", got)
	}
	if diff := cmp.Diff([]string{"x"}, messageIDs(listAll(t, s, "other"))); diff != "" {
		t.Errorf("other user's messages (-want +got):\n%s", diff)
	}
}

func getMessages(t *testing.T, s store.Store, userID string, ids []string) []*store.MessageMeta {
	t.Helper()
	msgs, err := s.GetMailboxMessages(t.Context(), userID, ids)
	if err != nil {
		t.Fatalf("GetMailboxMessages(%q, %d ids): %v", userID, len(ids), err)
	}
	return msgs
}

func testGetMailboxMessages(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := s.SaveSync(ctx, "u1", &store.Mailbox{HistoryID: 1}, messages("m1", "m2", "m3", "m10"), nil); err != nil {
		t.Fatalf("SaveSync: %v", err)
	}
	if err := s.SaveSync(ctx, "u2", &store.Mailbox{HistoryID: 1}, messages("m4", "m1"), nil); err != nil {
		t.Fatalf("SaveSync other user: %v", err)
	}
	tests := []struct {
		name string
		ids  []string
		want []string
	}{
		{"one", []string{"m2"}, []string{"m2"}},
		{"order of ids, not of IDs", []string{"m3", "m10", "m1"}, []string{"m3", "m10", "m1"}},
		{"missing left out", []string{"nope", "m2", "m", "m1x", "m4"}, []string{"m2"}}, // m4 is u2's
		{"duplicates once, at the first place", []string{"m3", "m1", "m3", "m1", "m2", "m3"}, []string{"m3", "m1", "m2"}},
		{"all missing", []string{"x", "y"}, nil},
		{"IDs no document can have", []string{"", ".", "..", "a/b", "m1/x", "__m1__", "m1"}, []string{"m1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := getMessages(t, s, "u1", tt.ids)
			if diff := cmp.Diff(messages(tt.want...), got, cmpOpts...); diff != "" {
				t.Errorf("GetMailboxMessages(%q) (-want +got):\n%s", tt.ids, diff)
			}
		})
	}
	t.Run("after an update and a delete", func(t *testing.T) {
		changed := message("m2")
		changed.LabelIDs = []string{"INBOX"}
		if err := s.SaveSync(ctx, "u3", nil, messages("m1", "m2"), nil); err != nil {
			t.Fatalf("SaveSync: %v", err)
		}
		if err := s.SaveSync(ctx, "u3", nil, []*store.MessageMeta{changed}, []string{"m1"}); err != nil {
			t.Fatalf("SaveSync: %v", err)
		}
		got := getMessages(t, s, "u3", []string{"m1", "m2"})
		if diff := cmp.Diff([]*store.MessageMeta{changed}, got, cmpOpts...); diff != "" {
			t.Errorf("GetMailboxMessages (-want +got):\n%s", diff)
		}
	})
	t.Run("unknown user", func(t *testing.T) {
		if got := getMessages(t, s, "nobody", []string{"m1"}); len(got) != 0 {
			t.Errorf("GetMailboxMessages(unknown user) = %d messages, want 0", len(got))
		}
	})
}

func testGetMailboxMessagesEmpty(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := s.SaveSync(ctx, "u1", &store.Mailbox{HistoryID: 1}, messages("m1"), nil); err != nil {
		t.Fatalf("SaveSync: %v", err)
	}
	for _, ids := range [][]string{nil, {}} {
		got, err := s.GetMailboxMessages(ctx, "u1", ids)
		if err != nil || len(got) != 0 {
			t.Errorf("GetMailboxMessages(%#v) = %d messages, %v; want none, nil", ids, len(got), err)
		}
	}
}

// testGetMailboxMessagesMany asks for more ids than Firestore's GetAll is
// given at once (300), shuffled, half of them missing, with repeats.
func testGetMailboxMessagesMany(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 1000
	var stored, ids []string
	for i := range n {
		id := fmt.Sprintf("%016x", 0x18c0000000000000+i*7919)
		ids = append(ids, id)
		if i%2 == 0 {
			stored = append(stored, id)
		}
	}
	if err := s.SaveSync(ctx, "u1", &store.Mailbox{HistoryID: 1}, messages(stored...), nil); err != nil {
		t.Fatalf("SaveSync(%d): %v", len(stored), err)
	}
	r := rand.New(rand.NewPCG(5, 6))
	r.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	ids = append(ids, ids[:50]...) // repeats, at the end
	isStored := make(map[string]bool, len(stored))
	for _, id := range stored {
		isStored[id] = true
	}
	var want []string
	for _, id := range ids[:n] {
		if isStored[id] {
			want = append(want, id)
		}
	}
	got := getMessages(t, s, "u1", ids)
	if diff := cmp.Diff(want, messageIDs(got)); diff != "" {
		t.Errorf("GetMailboxMessages(%d ids) IDs (-want +got):\n%s", len(ids), diff)
	}
	for _, m := range got {
		if diff := cmp.Diff(message(m.ID), m, cmpOpts...); diff != "" {
			t.Fatalf("message %q (-want +got):\n%s", m.ID, diff)
		}
	}
}

func testGetMailboxMessagesCopies(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := s.SaveSync(ctx, "u1", nil, messages("a", "b"), nil); err != nil {
		t.Fatalf("SaveSync: %v", err)
	}
	got := getMessages(t, s, "u1", []string{"b", "a"})
	if len(got) != 2 {
		t.Fatalf("GetMailboxMessages = %d messages, want 2", len(got))
	}
	got[0].LabelIDs[0] = "mutated"
	got[1].Subject = "mutated"
	if diff := cmp.Diff(messages("b", "a"), getMessages(t, s, "u1", []string{"b", "a"}), cmpOpts...); diff != "" {
		t.Errorf("messages after mutating GetMailboxMessages' result (-want +got):\n%s", diff)
	}
}

func getSweep(t *testing.T, s store.Store) store.SweepState {
	t.Helper()
	st, err := s.GetSweepState(t.Context())
	if err != nil {
		t.Fatalf("GetSweepState: %v", err)
	}
	return st
}

func putSweep(t *testing.T, s store.Store, st store.SweepState) {
	t.Helper()
	if err := s.PutSweepState(t.Context(), st); err != nil {
		t.Fatalf("PutSweepState(%+v): %v", st, err)
	}
}

func wantSweep(t *testing.T, what string, got, want store.SweepState) {
	t.Helper()
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Errorf("%s: sweep state mismatch (-want +got):\n%s", what, diff)
	}
	for _, tm := range []struct {
		name string
		t    time.Time
		want time.Time
	}{{"RoundStart", got.RoundStart, want.RoundStart}, {"UpdatedAt", got.UpdatedAt, want.UpdatedAt}} {
		if tm.t.IsZero() != tm.want.IsZero() {
			t.Errorf("%s: %s.IsZero() = %v, want %v", what, tm.name, tm.t.IsZero(), tm.want.IsZero())
		}
	}
}

func testSweepStateZero(t *testing.T, s store.Store) {
	wantSweep(t, "GetSweepState on an empty store", getSweep(t, s), store.SweepState{})
}

func testSweepStateRoundTrip(t *testing.T, s store.Store) {
	tests := []store.SweepState{
		{After: "109876543210987654321", RoundStart: base, UpdatedAt: base.Add(90 * time.Second)},
		{After: "ünïcødé/with slash", RoundStart: base.Add(-time.Hour)},
		{RoundStart: base}, // a round started, no user done yet
		{},
	}
	for i, st := range tests {
		putSweep(t, s, st)
		wantSweep(t, fmt.Sprintf("GetSweepState after PutSweepState #%d", i), getSweep(t, s), st)
		wantSweep(t, fmt.Sprintf("GetSweepState again after PutSweepState #%d", i), getSweep(t, s), st)
	}
}

// testSweepStateOverwrite checks that a put replaces the whole state: the
// zero state written at the end of a round reads back as the zero state.
func testSweepStateOverwrite(t *testing.T, s store.Store) {
	first := store.SweepState{After: "u5", RoundStart: base, UpdatedAt: base.Add(time.Minute)}
	putSweep(t, s, first)
	second := store.SweepState{After: "u7", RoundStart: base, UpdatedAt: base.Add(2 * time.Minute)}
	putSweep(t, s, second)
	wantSweep(t, "after the second put", getSweep(t, s), second)
	putSweep(t, s, store.SweepState{UpdatedAt: base.Add(3 * time.Minute)})
	wantSweep(t, "after resetting the round", getSweep(t, s), store.SweepState{UpdatedAt: base.Add(3 * time.Minute)})
	putSweep(t, s, store.SweepState{})
	wantSweep(t, "after putting the zero state", getSweep(t, s), store.SweepState{})
}

// testSweepStatePrecision stores nanosecond times: an implementation keeps at
// least microseconds (Firestore drops the nanoseconds below).
func testSweepStatePrecision(t *testing.T, s store.Store) {
	rs := time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.FixedZone("X", -7*3600))
	up := rs.Add(1500 * time.Nanosecond)
	putSweep(t, s, store.SweepState{After: "u1", RoundStart: rs, UpdatedAt: up})
	got := getSweep(t, s)
	for _, tm := range []struct {
		name      string
		got, want time.Time
	}{{"RoundStart", got.RoundStart, rs}, {"UpdatedAt", got.UpdatedAt, up}} {
		if d := tm.got.Sub(tm.want); d <= -time.Microsecond || d >= time.Microsecond {
			t.Errorf("%s = %v, want %v to the microsecond", tm.name, tm.got, tm.want)
		}
	}
	// The round start's order against a later mailbox sync time survives.
	if !rs.Add(time.Microsecond).After(got.RoundStart) {
		t.Errorf("RoundStart %v is not before %v", got.RoundStart, rs.Add(time.Microsecond))
	}
}

// testSweepStateSeparate checks that the sweep state is not a credential, a
// mailbox or a message, and that deleting mailboxes leaves it alone.
func testSweepStateSeparate(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := store.SweepState{After: "u1", RoundStart: base}
	putSweep(t, s, st)
	for _, id := range []string{"sweep", "sync_state"} {
		_, err := s.GetMailbox(ctx, id)
		wantNotFound(t, fmt.Sprintf("GetMailbox(%q) after PutSweepState", id), err)
		if got := listAll(t, s, id); len(got) != 0 {
			t.Errorf("ListMailboxMessages(%q) after PutSweepState = %d messages, want 0", id, len(got))
		}
		_, err = s.GetCredential(ctx, id)
		wantNotFound(t, fmt.Sprintf("GetCredential(%q) after PutSweepState", id), err)
	}
	creds, err := s.ListCredentials(ctx, "", "", 0)
	if err != nil || len(creds) != 0 {
		t.Errorf("ListCredentials after PutSweepState = %d credentials, %v; want none", len(creds), err)
	}
	if err := s.SaveSync(ctx, "u1", &store.Mailbox{HistoryID: 1}, messages("a"), nil); err != nil {
		t.Fatalf("SaveSync: %v", err)
	}
	if err := s.DeleteMailbox(ctx, "u1"); err != nil {
		t.Fatalf("DeleteMailbox: %v", err)
	}
	wantSweep(t, "GetSweepState after mailbox writes", getSweep(t, s), st)
}

// testCancelledContext checks that every method fails with an error wrapping
// context.Canceled on a cancelled context, and changes nothing.
func testCancelledContext(t *testing.T, s store.Store) {
	ctx := t.Context()
	cred := put(t, s, fullCredential("u1"))
	if err := s.PutState(ctx, "k", fullState()); err != nil {
		t.Fatalf("PutState: %v", err)
	}
	mb := &store.Mailbox{HistoryID: 1}
	if err := s.SaveSync(ctx, "u1", mb, messages("a"), nil); err != nil {
		t.Fatalf("SaveSync: %v", err)
	}
	sweep := store.SweepState{After: "u1", RoundStart: base}
	putSweep(t, s, sweep)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"GetCredential", func() error { _, err := s.GetCredential(cctx, "u1"); return err }},
		{"UpdateCredential", func() error {
			_, err := s.UpdateCredential(cctx, "u1", func(cur *store.Credential) (*store.Credential, error) {
				cur.Email = "changed@example.com"
				return cur, nil
			})
			return err
		}},
		{"DeleteCredential", func() error { return s.DeleteCredential(cctx, "u1") }},
		{"ListCredentials", func() error { _, err := s.ListCredentials(cctx, "", "", 10); return err }},
		{"PutState", func() error { return s.PutState(cctx, "k2", fullState()) }},
		{"ConsumeState", func() error { _, err := s.ConsumeState(cctx, "k", base); return err }},
		{"GetMailbox", func() error { _, err := s.GetMailbox(cctx, "u1"); return err }},
		{"SaveSync", func() error {
			return s.SaveSync(cctx, "u1", &store.Mailbox{HistoryID: 2}, messages("b"), []string{"a"})
		}},
		{"ListMailboxMessages", func() error { _, err := s.ListMailboxMessages(cctx, "u1", "", 10); return err }},
		{"GetMailboxMessages", func() error { _, err := s.GetMailboxMessages(cctx, "u1", []string{"a"}); return err }},
		{"GetMailboxMessages(no ids)", func() error { _, err := s.GetMailboxMessages(cctx, "u1", nil); return err }},
		{"DeleteMailbox", func() error { return s.DeleteMailbox(cctx, "u1") }},
		{"GetSweepState", func() error { _, err := s.GetSweepState(cctx); return err }},
		{"PutSweepState", func() error { return s.PutSweepState(cctx, store.SweepState{After: "u9"}) }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s(cancelled context): got err %v, want context.Canceled", c.name, err)
		}
	}

	wantCredential(t, "credential after cancelled calls", mustGet(t, s, "u1"), cred)
	if got := mustGetMailbox(t, s, "u1").HistoryID; got != 1 {
		t.Errorf("HistoryID after cancelled SaveSync = %d, want 1", got)
	}
	if diff := cmp.Diff([]string{"a"}, messageIDs(listAll(t, s, "u1"))); diff != "" {
		t.Errorf("messages after cancelled calls (-want +got):\n%s", diff)
	}
	wantSweep(t, "sweep state after a cancelled PutSweepState", getSweep(t, s), sweep)
	if _, err := s.ConsumeState(ctx, "k", base); err != nil {
		t.Errorf("ConsumeState after a cancelled ConsumeState: %v", err)
	}
	_, err := s.ConsumeState(ctx, "k2", base)
	wantNotFound(t, "ConsumeState of a state put with a cancelled context", err)
}

func testClose(t *testing.T, s store.Store) {
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}
