package fsstore_test

import (
	"testing"
	"time"

	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/fsstore/fstest"
)

func benchCredential() *store.Credential {
	now := time.Now()
	return &store.Credential{
		Email:             "bench@example.com",
		RefreshToken:      store.Sealed{KeyID: "k1", Ciphertext: make([]byte, 128)},
		AccessToken:       store.Sealed{KeyID: "k1", Ciphertext: make([]byte, 256)},
		AccessTokenExpiry: now.Add(time.Hour),
		Scopes:            []string{"openid", "email", "https://www.googleapis.com/auth/gmail.readonly"},
		Status:            store.StatusActive,
		CreatedAt:         now,
		UpdatedAt:         now,
	}
}

// BenchmarkGetCredential measures one document read on the emulator.
func BenchmarkGetCredential(b *testing.B) {
	s := fstest.NewStore(b)
	ctx := b.Context()
	c := benchCredential()
	if _, err := s.UpdateCredential(ctx, "u1", func(*store.Credential) (*store.Credential, error) { return c, nil }); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.GetCredential(ctx, "u1"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpdateCredential measures an uncontended read-modify-write
// transaction (begin, get, commit) on the emulator.
func BenchmarkUpdateCredential(b *testing.B) {
	s := fstest.NewStore(b)
	ctx := b.Context()
	c := benchCredential()
	if _, err := s.UpdateCredential(ctx, "u1", func(*store.Credential) (*store.Credential, error) { return c, nil }); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		_, err := s.UpdateCredential(ctx, "u1", func(cur *store.Credential) (*store.Credential, error) {
			cur.UpdatedAt = time.Now()
			return cur, nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
