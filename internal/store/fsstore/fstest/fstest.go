// Package fstest gives tests a Firestore store on the local emulator, each on
// a fresh, empty project so tests can run in parallel without seeing each
// other's documents.
//
// The emulator's address comes from FIRESTORE_EMULATOR_HOST (`make test`
// starts one with .ci/firestore-emulator). When it is unset, tests fail if CI
// is true (a CI that cannot start the emulator must not pass silently) and
// are skipped otherwise.
package fstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"example.com/gmailoauth/internal/store/fsstore"
)

// EnvHost is the variable the Firestore client library reads the emulator's
// host:port from.
const EnvHost = "FIRESTORE_EMULATOR_HOST"

// howToRun tells a developer how to get the tests to run.
const howToRun = "FIRESTORE_EMULATOR_HOST is not set: Firestore tests need the emulator. " +
	"Run `make test`, or start one with `.ci/firestore-emulator start` and export the " +
	"FIRESTORE_EMULATOR_HOST=127.0.0.1:PORT line it prints (stop it with `.ci/firestore-emulator stop`)"

var (
	probeOnce sync.Once
	probeErr  error
)

// EmulatorHost returns the emulator's host:port. Without FIRESTORE_EMULATOR_HOST
// it fails t when CI is true and skips t otherwise; when the emulator does not
// answer, it fails t. Under -short (`make test-short`: the tests that need no
// emulator) it always skips.
func EmulatorHost(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the Firestore emulator; skipped under -short")
	}
	host := os.Getenv(EnvHost)
	if host == "" {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatal(howToRun + " (CI=true: failing rather than skipping)")
		}
		t.Skip(howToRun)
	}
	probeOnce.Do(func() { probeErr = probe(host) })
	if probeErr != nil {
		t.Fatalf("Firestore emulator at %s=%s does not answer: %v", EnvHost, host, probeErr)
	}
	return host
}

// probe checks once that the emulator answers, so that a stale
// FIRESTORE_EMULATOR_HOST fails fast instead of every call retrying until the
// test times out.
func probe(host string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET / answered %s", resp.Status)
	}
	return nil
}

// NewProject returns a fresh project ID to use on the emulator; its database
// is reset when t ends. Pass it to fsstore.New, or to a process under test as
// GOOGLE_CLOUD_PROJECT together with FIRESTORE_EMULATOR_HOST.
func NewProject(t testing.TB) string {
	t.Helper()
	host := EmulatorHost(t)
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	project := "demo-test-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		if err := Reset(context.Background(), host, project); err != nil {
			t.Logf("fstest: reset of emulator project %s: %v", project, err)
		}
	})
	return project
}

// Reset deletes every document of the "(default)" database of projectID in
// the emulator at host.
func Reset(ctx context.Context, host, projectID string) error {
	u := "http://" + host + "/emulator/v1/projects/" + url.PathEscape(projectID) + "/databases/(default)/documents"
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("DELETE %s: %s", u, resp.Status)
	}
	return nil
}

// NewClient returns a Firestore client on a fresh emulator project, closed
// when t ends.
func NewClient(t testing.TB) *firestore.Client {
	t.Helper()
	c := newClient(t)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newClient(t testing.TB) *firestore.Client {
	t.Helper()
	return newClientFor(t, NewProject(t))
}

func newClientFor(t testing.TB, project string) *firestore.Client {
	t.Helper()
	c, err := firestore.NewClient(context.Background(), project)
	if err != nil {
		t.Fatalf("firestore.NewClient(%s): %v", project, err)
	}
	return c
}

// NewStore returns an fsstore.Store on a fresh emulator project, closed when
// t ends.
func NewStore(t testing.TB) *fsstore.Store {
	t.Helper()
	s := fsstore.NewFromClient(newClient(t))
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// NewStores returns n stores with their own clients on one fresh emulator
// project, as n function instances would share one database; they are closed
// when t ends.
func NewStores(t testing.TB, n int) []*fsstore.Store {
	t.Helper()
	project := NewProject(t)
	stores := make([]*fsstore.Store, n)
	for i := range stores {
		s := fsstore.NewFromClient(newClientFor(t, project))
		t.Cleanup(func() { _ = s.Close() })
		stores[i] = s
	}
	return stores
}
