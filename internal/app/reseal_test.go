package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"example.com/gmailoauth/internal/app"
	"example.com/gmailoauth/internal/keyset"
	"example.com/gmailoauth/internal/logging"
	"example.com/gmailoauth/internal/oauthflow"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/memstore"
)

// TestResealAll: after a rotation of the keyset secret, ResealAll moves
// every stored token to the new primary key (paging past 100 users), the
// tokens still open to the same values, and a second pass has nothing to do.
func TestResealAll(t *testing.T) {
	dir := t.TempDir()
	client := filepath.Join(dir, "client.json")
	os.WriteFile(client, []byte(`{"web":{"client_id":"id.apps.googleusercontent.com","client_secret":"s","redirect_uris":["https://fn.example.com/callback"]}}`), 0o600)
	keysFile := filepath.Join(dir, "keys.json")
	v1, _ := keyset.Generate("v1")
	if err := os.WriteFile(keysFile, v1, 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"OAUTH_CLIENT_SECRET_FILE": client, "APP_KEYS_FILE": keysFile, "OAUTH_REDIRECT_URL": "https://fn.example.com/callback"}
	st := memstore.New()
	a := app.New(app.Options{Getenv: func(k string) string { return env[k] }, Store: st, Logger: logging.New(&syncBuffer{}, "", slog.LevelError)})
	ctx := context.Background()
	d, err := a.Deps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const users = 130
	for i := range users {
		id := fmt.Sprintf("1%05d", i)
		rt, _ := d.Keys().Seal([]byte("refresh-"+id), id, oauthflow.FieldRefreshToken)
		if _, err := st.UpdateCredential(ctx, id, func(*store.Credential) (*store.Credential, error) {
			return &store.Credential{Status: store.StatusActive, RefreshToken: rt}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	v2, err := keyset.Rotate(v1, "v2")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keysFile, v2, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.ReloadKeys(ctx); err != nil {
		t.Fatalf("ReloadKeys: %v", err)
	}
	scanned, resealed, err := d.ResealAll(ctx)
	if err != nil || scanned != users || resealed != users {
		t.Fatalf("ResealAll = %d scanned, %d resealed, %v; want %d, %d, nil", scanned, resealed, err, users, users)
	}
	for i := range users {
		id := fmt.Sprintf("1%05d", i)
		c, _ := st.GetCredential(ctx, id)
		pt, err := d.Keys().Open(c.RefreshToken, id, oauthflow.FieldRefreshToken)
		if c.RefreshToken.KeyID != "enc-v2" || err != nil || string(pt) != "refresh-"+id {
			t.Fatalf("user %s: key %q, open err %v, value ok %v; want enc-v2 and the same token", id, c.RefreshToken.KeyID, err, string(pt) == "refresh-"+id)
		}
	}
	if _, resealed, err := d.ResealAll(ctx); err != nil || resealed != 0 {
		t.Errorf("second pass resealed %d (err %v), want 0", resealed, err)
	}
}
