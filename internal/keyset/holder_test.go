package keyset_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"example.com/gmailoauth/internal/keyset"
)

func TestValidIDAndParse(t *testing.T) {
	for _, id := range []string{"k1", "s1", "enc-20260101T000000", "sess-v2", "a.b_c-d"} {
		if !keyset.ValidID(id) {
			t.Errorf("ValidID(%q) = false, want true", id)
		}
	}
	for _, id := range []string{"", "-k", "k/1", "k 1", "../k", strings.Repeat("k", 65), "ké"} {
		if keyset.ValidID(id) {
			t.Errorf("ValidID(%q) = true, want false", id)
		}
	}
	data := []byte(`{"encryption":{"primary":"k/1","keys":{"k/1":"` + strings.Repeat("A", 43) + `="}},"session":{"primary":"s1","keys":{"s1":"` + strings.Repeat("A", 43) + `="}}}`)
	if _, err := keyset.Parse(data); err == nil || !strings.Contains(err.Error(), "key id") {
		t.Errorf("Parse with key id k/1: %v, want a key id problem", err)
	}
}

// TestHolderReloadPolicy: reloads for unknown key ids are one at a time,
// at most one per interval, and never for a malformed key id.
func TestHolderReloadPolicy(t *testing.T) {
	first, _ := keyset.Generate("a")
	rotated, _ := keyset.Rotate(first, "b")
	ks0, _ := keyset.Parse(first)
	ks1, _ := keyset.Parse(rotated)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var clock atomic.Int64
	var loads atomic.Int32
	release, started := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h := keyset.NewHolder(ks0, func(context.Context) (*keyset.Keyset, error) {
		loads.Add(1)
		once.Do(func() { close(started) })
		<-release
		return ks1, nil
	}, time.Minute, func() time.Time { return now.Add(time.Duration(clock.Load())) })
	ctx := context.Background()

	if err := h.ReloadFor(ctx, "bad/id"); !errors.Is(err, keyset.ErrUnknownKey) || loads.Load() != 0 {
		t.Fatalf("malformed key id: err %v, %d loads; want ErrUnknownKey and none", err, loads.Load())
	}
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() { errs[i] = h.ReloadFor(ctx, "sess-b") })
	}
	<-started
	close(release)
	wg.Wait()
	if n := loads.Load(); n != 1 {
		t.Errorf("20 concurrent reloads: %d loads, want 1", n)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v, want the rotated key found", i, err)
		}
	}
	if !h.Keys().Has("sess-b") {
		t.Errorf("the rotated keyset is not in use")
	}
	if err := h.ReloadFor(ctx, "sess-c"); !errors.Is(err, keyset.ErrUnknownKey) || loads.Load() != 1 {
		t.Errorf("within the interval: err %v, %d loads; want ErrUnknownKey and no new load", err, loads.Load())
	}
	clock.Add(int64(time.Minute))
	if err := h.ReloadFor(ctx, "sess-c"); !errors.Is(err, keyset.ErrUnknownKey) || loads.Load() != 2 {
		t.Errorf("after the interval: err %v, %d loads; want one new load and ErrUnknownKey (still unknown)", err, loads.Load())
	}
}
