package devserver_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"example.com/gmailoauth/internal/keyset"
	"example.com/gmailoauth/internal/local/devtest"
	"example.com/gmailoauth/internal/local/sandbox"
	"example.com/gmailoauth/internal/oauthflow"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/fsstore"
	"example.com/gmailoauth/internal/store/fsstore/fstest"
	"example.com/gmailoauth/internal/store/memstore"
)

// grantIntact checks that userID's grant is still active with the same
// refresh token and no lease left behind.
func grantIntact(t *testing.T, s *devtest.Stack, st store.Store, userID, wantRT string) {
	t.Helper()
	ctx := context.Background()
	c, err := st.GetCredential(ctx, userID)
	if err != nil {
		t.Fatalf("credential: %v", err)
	}
	if c.Status != store.StatusActive || c.RefreshLeaseOwner != "" {
		t.Errorf("credential status %q lease %q, want active with no lease", c.Status, c.RefreshLeaseOwner)
	}
	d, _ := s.Server.App.Deps(ctx)
	rt, err := d.Keys().Open(keyset.Sealed(c.RefreshToken), userID, oauthflow.FieldRefreshToken)
	if err != nil || string(rt) != wantRT {
		t.Errorf("refresh token changed or unreadable (err %v)", err)
	}
}

func refreshToken(t *testing.T, s *devtest.Stack, st store.Store, userID string) string {
	t.Helper()
	ctx := context.Background()
	c, err := st.GetCredential(ctx, userID)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := s.Server.App.Deps(ctx)
	rt, err := d.Keys().Open(keyset.Sealed(c.RefreshToken), userID, oauthflow.FieldRefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	return string(rt)
}

func wantRetryable(t *testing.T, r *devtest.Response, code string) {
	t.Helper()
	wantError(t, r, http.StatusServiceUnavailable, code)
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
}

// TestTokenEndpointFaults: a token endpoint that is down or too slow gives
// 503 with Retry-After; the grant is neither deleted, changed nor marked
// revoked, and the next call succeeds.
func TestTokenEndpointFaults(t *testing.T) {
	st := memstore.New()
	s := devtest.Start(t, devtest.Options{Store: st, NoPush: true, Env: map[string]string{"OUTBOUND_TIMEOUT": "300ms"}})
	session, userID := s.Connect(t, "gina@example.com")
	rt := refreshToken(t, s, st, userID)
	s.Clock.Advance(59 * time.Minute) // the access token needs a refresh

	t.Run("down", func(t *testing.T) {
		s.Sandbox.SetTokenFaults(sandbox.TokenFaults{FailNext: 3})
		wantRetryable(t, s.Get(t, "/list-messages", devtest.Bearer(session)), "upstream_unavailable")
		grantIntact(t, s, st, userID, rt)
	})
	t.Run("slow", func(t *testing.T) {
		s.Sandbox.SetTokenFaults(sandbox.TokenFaults{Latency: 2 * time.Second})
		wantRetryable(t, s.Get(t, "/list-messages", devtest.Bearer(session)), "upstream_unavailable")
		grantIntact(t, s, st, userID, rt)
	})
	t.Run("recovered", func(t *testing.T) {
		s.Sandbox.SetTokenFaults(sandbox.TokenFaults{})
		if r := s.Get(t, "/list-messages", devtest.Bearer(session)); r.Status != http.StatusOK {
			t.Errorf("after recovery: got %d %s, want 200", r.Status, r.Body)
		}
		grantIntact(t, s, st, userID, rt)
	})
	t.Run("code exchange while down", func(t *testing.T) {
		s.Sandbox.SetTokenFaults(sandbox.TokenFaults{FailNext: 3})
		defer s.Sandbox.SetTokenFaults(sandbox.TokenFaults{})
		cb := consentRedirect(t, s, begin(t, s, "login_hint=helen@example.com", nil))
		// The state is spent: retrying the same callback cannot succeed, so
		// the answer says to start again and offers the URL, with no
		// Retry-After.
		r := s.Get(t, cb.String(), nil)
		wantError(t, r, http.StatusServiceUnavailable, "upstream_unavailable")
		if ra := r.Header.Get("Retry-After"); ra != "" {
			t.Errorf("Retry-After %q on a spent state, want none", ra)
		}
		if !strings.Contains(string(r.Body), "start again from Authorize") || r.AuthorizationURL() == "" {
			t.Errorf("body %s: want it to say start again from Authorize, with an authorization_url", r.Body)
		}
		if _, err := st.GetCredential(context.Background(), sandbox.SubFor("helen@example.com")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a failed exchange stored something: %v", err)
		}
	})
	assertNoSecretsLogged(t, s, session, rt)
}

// assertNoSecretsLogged fails if any of the values appears in the logs.
func assertNoSecretsLogged(t *testing.T, s *devtest.Stack, values ...string) {
	t.Helper()
	logs := s.Logs.String()
	for _, v := range values {
		if v != "" && strings.Contains(logs, v) {
			t.Errorf("a secret value (%d chars) appears in the logs", len(v))
		}
	}
}

// TestFirestoreDown stops a Firestore emulator under a running stack: every
// function answers 503 with Retry-After within the request deadline, never a
// 500, and nothing claims the grant is gone.
func TestFirestoreDown(t *testing.T) {
	host := startOwnEmulator(t)
	ctx := context.Background()
	// The client library takes the emulator from the environment, over any option.
	t.Setenv("FIRESTORE_EMULATOR_HOST", host)
	st, err := fsstore.New(ctx, "demo-faults")
	if err != nil {
		t.Fatalf("fsstore: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	s := devtest.Start(t, devtest.Options{Store: st, NoPush: true, Env: map[string]string{"REQUEST_TIMEOUT": "2s"}})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", s.Logs.String())
		}
	})
	session, _ := s.Connect(t, "ivan@example.com")
	if r := s.Get(t, "/list-messages?max_results=1", devtest.Bearer(session)); r.Status != http.StatusOK {
		t.Fatalf("list before the outage: got %d %s", r.Status, r.Body)
	}

	stopOwnEmulator(t)
	for _, tc := range []struct {
		name, method, path string
	}{
		{"list messages", http.MethodGet, "/list-messages"},
		{"authorize", http.MethodGet, "/authorize?login_hint=ivan@example.com"},
		{"callback", http.MethodGet, "/callback?state=" + strings.Repeat("B", 43) + "&code=x"},
		{"disconnect", http.MethodDelete, "/authorize"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.Do(t, tc.method, tc.path, devtest.Bearer(session), "")
			wantRetryable(t, r, "unavailable")
		})
	}
	assertNoSecretsLogged(t, s, session)
}

// startOwnEmulator starts a Firestore emulator only this test uses (it
// will be stopped mid-test) and returns its host:port.
func startOwnEmulator(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the Firestore emulator")
	}
	dir := t.TempDir()
	cmd := exec.Command("../../../.ci/firestore-emulator", "start")
	cmd.Env = append(os.Environ(), "EMULATOR_DIR="+dir)
	out, err := cmd.Output()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot start the Firestore emulator in CI: %v", err)
		}
		t.Skipf("Firestore emulator unavailable (%v); `make test` installs and starts what it needs", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	host := strings.TrimPrefix(lines[len(lines)-1], "FIRESTORE_EMULATOR_HOST=")
	t.Cleanup(func() { stopEmulatorIn(dir) })
	t.Setenv("TEST_OWN_EMULATOR_DIR", dir)
	return host
}

func stopOwnEmulator(t *testing.T) {
	t.Helper()
	if err := stopEmulatorIn(os.Getenv("TEST_OWN_EMULATOR_DIR")); err != nil {
		t.Fatalf("stop emulator: %v", err)
	}
}

func stopEmulatorIn(dir string) error {
	cmd := exec.Command("../../../.ci/firestore-emulator", "stop")
	cmd.Env = append(os.Environ(), "EMULATOR_DIR="+dir)
	return cmd.Run()
}

// TestGmailFaults: transient Gmail 5xx and 429 bursts are retried into a
// success; a Gmail that stays down gives 503 with Retry-After; none of it
// touches the grant.
func TestGmailFaults(t *testing.T) {
	st := memstore.New()
	s := devtest.Start(t, devtest.Options{Store: st, NoPush: true})
	session, userID := s.Connect(t, "judy@example.com")
	rt := refreshToken(t, s, st, userID)
	list := func() *devtest.Response { return s.Get(t, "/list-messages?max_results=3", devtest.Bearer(session)) }

	t.Run("transient 503s are retried", func(t *testing.T) {
		s.Sandbox.ResetStats()
		s.Sandbox.SetGmailFaults(sandbox.GmailFaults{FailNext: 2})
		if r := list(); r.Status != http.StatusOK {
			t.Errorf("got %d %s, want 200 after retries", r.Status, r.Body)
		}
		if got := s.Sandbox.Stats().GmailFailures; got != 2 {
			t.Errorf("injected failures answered = %d, want 2", got)
		}
	})
	t.Run("429 burst recovers", func(t *testing.T) {
		s.Sandbox.ResetStats()
		s.Sandbox.SetGmailFaults(sandbox.GmailFaults{RateLimitNext: 2}) // 429 with Retry-After: 1, twice
		for i := 0; i < 3; i++ {
			if r := list(); r.Status != http.StatusOK {
				t.Errorf("call %d: got %d %s, want 200 once the quota refills", i, r.Status, r.Body)
			}
		}
		if s.Sandbox.Stats().RateLimited == 0 {
			t.Errorf("the sandbox answered no 429: the burst did not hit the quota")
		}
	})
	t.Run("down", func(t *testing.T) {
		s.Sandbox.SetGmailFaults(sandbox.GmailFaults{FailNext: 1000})
		wantRetryable(t, list(), "upstream_unavailable")
	})
	s.Sandbox.SetGmailFaults(sandbox.GmailFaults{})
	grantIntact(t, s, st, userID, rt)
	if r := list(); r.Status != http.StatusOK {
		t.Errorf("after recovery: got %d %s, want 200", r.Status, r.Body)
	}
	assertNoSecretsLogged(t, s, session, rt)
}

// TestFirestoreContendedTransaction: another transaction holds the user's
// credential document (Firestore's pessimistic lock) while ListMessages needs
// a refresh, so the emulator aborts or delays the refresh's transactions.
// The answer is a success or a 503 with Retry-After — never another error —
// and the grant comes out intact and usable.
func TestFirestoreContendedTransaction(t *testing.T) {
	client := fstest.NewClient(t)
	st := fsstore.NewFromClient(client)
	s := devtest.Start(t, devtest.Options{Store: st, NoPush: true, Env: map[string]string{"REQUEST_TIMEOUT": "4s"}})
	session, userID := s.Connect(t, "kate@example.com")
	rt := refreshToken(t, s, st, userID)
	s.Clock.Advance(59 * time.Minute)

	locked, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		first := true
		done <- client.RunTransaction(context.Background(), func(ctx context.Context, tx *firestore.Transaction) error {
			if _, err := tx.Get(client.Collection(fsstore.CredentialsCollection).Doc(userID)); err != nil {
				return err
			}
			if first {
				first = false
				close(locked)
				<-release
			}
			return nil
		})
	}()
	<-locked
	r := s.Get(t, "/list-messages?max_results=1", devtest.Bearer(session))
	close(release)
	<-done
	switch {
	case r.Status == http.StatusOK:
	case r.Status == http.StatusServiceUnavailable && r.Header.Get("Retry-After") != "":
	default:
		t.Errorf("under contention: got %d %s, want 200 or 503 with Retry-After", r.Status, r.Body)
	}
	if r := s.Get(t, "/list-messages?max_results=1", devtest.Bearer(session)); r.Status != http.StatusOK {
		t.Errorf("after the contention: got %d %s, want 200", r.Status, r.Body)
	}
	grantIntact(t, s, st, userID, rt)
	t.Logf("under contention the first call answered %d", r.Status)
}
