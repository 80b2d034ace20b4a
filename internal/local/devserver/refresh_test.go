package devserver_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"example.com/gmailoauth/internal/local/devtest"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/fsstore/fstest"
	"example.com/gmailoauth/internal/store/memstore"
)

func TestConcurrentRefreshMemory(t *testing.T)    { testConcurrentRefresh(t, memstore.New()) }
func TestConcurrentRefreshFirestore(t *testing.T) { testConcurrentRefresh(t, fstest.NewStore(t)) }

// testConcurrentRefresh: 50 concurrent ListMessages calls for one user whose
// access token has expired make exactly one call to the token endpoint, and
// all 50 succeed.
func testConcurrentRefresh(t *testing.T, st store.Store) {
	s := devtest.Start(t, devtest.Options{Store: st})
	const email = "dave@example.com"
	session, _ := s.Connect(t, email)
	s.Clock.Advance(59 * time.Minute) // the access token (3599 s) is about to expire; the session (1 h) is not
	s.Sandbox.ResetStats()

	const n = 50
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = s.Get(t, "/list-messages?max_results=1", devtest.Bearer(session)).Status
		}()
	}
	began := time.Now()
	wg.Wait()
	t.Logf("%d concurrent calls in %v", n, time.Since(began))
	for i, got := range statuses {
		if got != http.StatusOK {
			t.Errorf("call %d: got %d, want 200", i, got)
		}
	}
	if got := s.Sandbox.Stats().TokenCalls["refresh_token"]; got != 1 {
		t.Errorf("token endpoint refresh calls = %d, want exactly 1", got)
	}
}
