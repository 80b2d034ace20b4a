package fsstore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/fsstore"
	"example.com/gmailoauth/internal/store/fsstore/fstest"
	"example.com/gmailoauth/internal/store/storetest"
)

func TestContract(t *testing.T) {
	fstest.EmulatorHost(t) // fail or skip once, not in every subtest
	storetest.Run(t, func(t *testing.T) store.Store { return fstest.NewStore(t) })
}

// TestConsumeStateAcrossInstances replays one state from several stores with
// their own clients, as from several function instances: only Firestore's
// transaction can let exactly one win.
func TestConsumeStateAcrossInstances(t *testing.T) {
	t.Parallel()
	stores := fstest.NewStores(t, 3)
	ctx := t.Context()
	now := time.Now()
	st := &store.AuthState{Verifier: "v", ExpiresAt: now.Add(10 * time.Minute)}
	if err := stores[0].PutState(ctx, "replayed", st); err != nil {
		t.Fatalf("PutState: %v", err)
	}
	const perStore = 2
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, len(stores)*perStore)
	for i := range errs {
		s := stores[i%len(stores)]
		wg.Go(func() {
			<-start
			_, errs[i] = s.ConsumeState(ctx, "replayed", now)
		})
	}
	close(start)
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, store.ErrNotFound):
			t.Errorf("ConsumeState #%d: got err %v, want nil or store.ErrNotFound", i, err)
		}
	}
	if wins != 1 {
		t.Errorf("%d of %d concurrent ConsumeState calls succeeded, want exactly 1", wins, len(errs))
	}
}

// TestUpdateCredentialAcrossInstances appends scopes from several stores at
// once: a lost update loses a scope.
func TestUpdateCredentialAcrossInstances(t *testing.T) {
	t.Parallel()
	stores := fstest.NewStores(t, 3)
	ctx := t.Context()
	create := func(*store.Credential) (*store.Credential, error) {
		return &store.Credential{Status: store.StatusActive}, nil
	}
	if _, err := stores[0].UpdateCredential(ctx, "u1", create); err != nil {
		t.Fatalf("UpdateCredential(create): %v", err)
	}
	const perStore = 2
	n := len(stores) * perStore
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		s := stores[i%len(stores)]
		wg.Go(func() {
			<-start
			_, errs[i] = s.UpdateCredential(ctx, "u1", func(cur *store.Credential) (*store.Credential, error) {
				cur.Scopes = append(cur.Scopes, "s"+strconv.Itoa(i))
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
	got, err := stores[1].GetCredential(ctx, "u1")
	if err != nil {
		t.Fatalf("GetCredential: %v", err)
	}
	if len(got.Scopes) != n {
		t.Errorf("got %d scopes %v after %d concurrent appends, want %d", len(got.Scopes), got.Scopes, n, n)
	}
}

// TestLayout pins the documents' paths and field names and types, which the
// TTL policy (oauth_states.expires_at), Terraform and operators reading the
// sweep state (sync_state/sweep) depend on.
func TestLayout(t *testing.T) {
	t.Parallel()
	client := fstest.NewClient(t)
	s := fsstore.NewFromClient(client)
	ctx := t.Context()
	exp := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	if err := s.PutState(ctx, "key1", &store.AuthState{Verifier: "v", ExpiresAt: exp}); err != nil {
		t.Fatalf("PutState: %v", err)
	}
	_, err := s.UpdateCredential(ctx, "sub1", func(*store.Credential) (*store.Credential, error) {
		return &store.Credential{
			Email: "a@example.com", Status: store.StatusActive,
			RefreshToken: store.Sealed{KeyID: "k1", Ciphertext: []byte{1, 2, 3}},
		}, nil
	})
	if err != nil {
		t.Fatalf("UpdateCredential: %v", err)
	}
	mb := &store.Mailbox{HistoryID: 1<<63 + 1, MessageCount: 1}
	if err := s.SaveSync(ctx, "sub1", mb, []*store.MessageMeta{{ID: "m1", ThreadID: "t1", HistoryID: 42}}, nil); err != nil {
		t.Fatalf("SaveSync: %v", err)
	}

	roundStart := time.Date(2026, 1, 2, 3, 0, 0, 7000, time.UTC)
	if err := s.PutSweepState(ctx, store.SweepState{After: "sub1", RoundStart: roundStart, UpdatedAt: exp}); err != nil {
		t.Fatalf("PutSweepState: %v", err)
	}

	data := func(path string) map[string]any {
		t.Helper()
		snap, err := client.Doc(path).Get(ctx)
		if err != nil {
			t.Fatalf("Get(%s): %v", path, err)
		}
		return snap.Data()
	}
	tests := []struct {
		path, field string
		want        any
	}{
		{"oauth_states/key1", "expires_at", exp},
		{"oauth_states/key1", "verifier", "v"},
		{"credentials/sub1", "status", store.StatusActive},
		{"credentials/sub1", "email", "a@example.com"},
		{"credentials/sub1", "refresh_token", map[string]any{"key_id": "k1", "ciphertext": []byte{1, 2, 3}}},
		{"mailboxes/sub1", "history_id", int64(-1<<63 + 1)}, // uint64 bits in an int64
		{"mailboxes/sub1", "message_count", int64(1)},
		{"mailboxes/sub1/messages/m1", "thread_id", "t1"},
		{"mailboxes/sub1/messages/m1", "history_id", int64(42)},
		{"sync_state/sweep", "after", "sub1"},
		{"sync_state/sweep", "round_start", roundStart},
		{"sync_state/sweep", "updated_at", exp},
	}
	for _, tt := range tests {
		got, ok := data(tt.path)[tt.field]
		if !ok {
			t.Errorf("%s: no field %q", tt.path, tt.field)
			continue
		}
		if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", tt.want) {
			if gt, ok := got.(time.Time); !ok || !gt.Equal(tt.want.(time.Time)) {
				t.Errorf("%s.%s = %#v (%T), want %#v (%T)", tt.path, tt.field, got, got, tt.want, tt.want)
			}
		}
	}
	if _, ok := data("credentials/sub1")["user_id"]; ok {
		t.Errorf("credentials/sub1 has a user_id field; the document ID is the user ID")
	}
}

// TestNewFromEnvironment builds a store with New, which finds the emulator
// through FIRESTORE_EMULATOR_HOST.
func TestNewFromEnvironment(t *testing.T) {
	t.Parallel()
	project := fstest.NewProject(t)
	s, err := fsstore.New(t.Context(), project)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.GetCredential(t.Context(), "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetCredential: got err %v, want store.ErrNotFound", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestUnavailable points a store at an address where nothing speaks gRPC:
// the failure must wrap store.ErrUnavailable. It needs no emulator.
func TestUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // connections are now refused
	t.Setenv(fstest.EnvHost, addr)
	s, err := fsstore.New(t.Context(), "demo-unavailable")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })

	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"GetCredential", func(ctx context.Context) error { _, err := s.GetCredential(ctx, "u1"); return err }},
		{"UpdateCredential", func(ctx context.Context) error {
			_, err := s.UpdateCredential(ctx, "u1", func(*store.Credential) (*store.Credential, error) { return nil, nil })
			return err
		}},
		{"ConsumeState", func(ctx context.Context) error { _, err := s.ConsumeState(ctx, "k", time.Now()); return err }},
		{"SaveSync", func(ctx context.Context) error {
			return s.SaveSync(ctx, "u1", &store.Mailbox{}, []*store.MessageMeta{{ID: "m"}}, nil)
		}},
		{"ListCredentials", func(ctx context.Context) error { _, err := s.ListCredentials(ctx, "", "", 1); return err }},
		{"GetMailboxMessages", func(ctx context.Context) error {
			_, err := s.GetMailboxMessages(ctx, "u1", []string{"m1", "m2"})
			return err
		}},
		{"GetSweepState", func(ctx context.Context) error { _, err := s.GetSweepState(ctx); return err }},
		{"PutSweepState", func(ctx context.Context) error { return s.PutSweepState(ctx, store.SweepState{After: "u1"}) }},
	}
	// A deadline ends the client's retries of Unavailable; the calls run at
	// once so the test takes one deadline, not one per call.
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			errs[i] = c.call(ctx)
		})
	}
	wg.Wait()
	t.Logf("for example: %v", errs[0])
	for i, c := range calls {
		err := errs[i]
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s: got err %v, want store.ErrUnavailable", c.name, err)
		}
		if errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: err %v also wraps store.ErrNotFound", c.name, err)
		}
	}
}
