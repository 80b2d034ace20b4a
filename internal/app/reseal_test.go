package app_test

import (
	"context"
	"fmt"
	"testing"

	"example.com/gmailoauth/internal/keyset"
	"example.com/gmailoauth/internal/local/testenv"
	"example.com/gmailoauth/internal/oauthflow"
)

// TestResealAll: after a rotation of the keyset secret, ResealAll moves
// every stored token to the new primary key (paging past 100 users), the
// tokens still open to the same values, and a second pass has nothing to do.
func TestResealAll(t *testing.T) {
	env := testenv.New(t, testenv.Options{MailboxSize: -1})
	d, ctx := env.Deps, context.Background()
	const users = 130
	before := map[string]string{}
	for i := range users {
		id, _ := env.Connect(t, fmt.Sprintf("reseal%03d@example.com", i))
		c, err := env.Store.GetCredential(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := d.Keys().Open(keyset.Sealed(c.RefreshToken), id, oauthflow.FieldRefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		before[id] = string(pt)
	}
	env.RotateKeys(t, "v2")
	if err := d.ReloadKeys(ctx); err != nil {
		t.Fatalf("ReloadKeys: %v", err)
	}
	scanned, resealed, err := d.ResealAll(ctx)
	if err != nil || scanned != users || resealed != users {
		t.Fatalf("ResealAll = %d scanned, %d resealed, %v; want %d, %d, nil", scanned, resealed, err, users, users)
	}
	for id, want := range before {
		c, _ := env.Store.GetCredential(ctx, id)
		pt, err := d.Keys().Open(keyset.Sealed(c.RefreshToken), id, oauthflow.FieldRefreshToken)
		if c.RefreshToken.KeyID != "enc-v2" || c.AccessToken.KeyID != "enc-v2" || err != nil || string(pt) != want {
			t.Fatalf("user %s: keys %q/%q, open err %v, value ok %v; want enc-v2 and the same token",
				id, c.RefreshToken.KeyID, c.AccessToken.KeyID, err, string(pt) == want)
		}
	}
	if _, resealed, err := d.ResealAll(ctx); err != nil || resealed != 0 {
		t.Errorf("second pass resealed %d (err %v), want 0", resealed, err)
	}
}
