package oauthflow_test

import (
	"context"
	"testing"

	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/fsstore/fstest"
	"example.com/gmailoauth/internal/store/memstore"
)

func BenchmarkHotPathMemory(b *testing.B)    { benchmarkHotPath(b, memstore.New()) }
func BenchmarkHotPathFirestore(b *testing.B) { benchmarkHotPath(b, fstest.NewStore(b)) }

// benchmarkHotPath measures what a frontend ListMessages call does before it
// calls Gmail when the cached access token is valid: verify the session,
// read the credential, decrypt the access token.
func benchmarkHotPath(b *testing.B, st store.Store) {
	e := newEnv(b)
	f := e.instance(b, st).Flow
	userID := e.connect(b, f, "bench@example.com")
	sess, _, err := f.Sessions.Issue(userID, "bench@example.com", "")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	check := func() {
		c, err := f.Sessions.Verify(sess)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.AccessToken(ctx, c.Subject); err != nil {
			b.Fatal(err)
		}
	}
	check()
	e.Sandbox.ResetStats()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		check()
	}
	b.StopTimer()
	if n := e.Sandbox.Stats().TokenCalls["refresh_token"]; n != 0 {
		b.Fatalf("hot path refreshed %d times, want 0", n)
	}
}
