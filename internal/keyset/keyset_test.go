package keyset_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"example.com/gmailoauth/internal/keyset"
)

// Fixed test keys: 32 bytes each, in standard base64.
var (
	keyA = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xA1}, 32))
	keyB = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xB2}, 32))
	keyS = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x5E}, 32))
)

// keysetJSON builds a keyset secret from an encryption and a session ring.
func keysetJSON(t testing.TB, encPrimary string, enc map[string]string, sessPrimary string, sess map[string]string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"encryption": map[string]any{"primary": encPrimary, "keys": enc},
		"session":    map[string]any{"primary": sessPrimary, "keys": sess},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustParse parses data or fails the test.
func mustParse(t testing.TB, data []byte) *keyset.Keyset {
	t.Helper()
	k, err := keyset.Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return k
}

// validKeyset is a keyset with two encryption keys (k2 primary) and one
// session key.
func validKeyset(t testing.TB) *keyset.Keyset {
	return mustParse(t, keysetJSON(t, "k2", map[string]string{"k1": keyA, "k2": keyB}, "s1", map[string]string{"s1": keyS}))
}

func TestParseValid(t *testing.T) {
	k := validKeyset(t)
	// Both encryption keys open what they sealed; a session key id is not
	// an encryption key.
	sealed, err := k.Seal([]byte("pt"), "u", "f")
	if err != nil || sealed.KeyID != "k2" {
		t.Fatalf("Seal: got key %q, %v; want the primary k2", sealed.KeyID, err)
	}
	for _, id := range []string{"k1", "s1"} {
		_, err := k.Open(keyset.Sealed{KeyID: id, Ciphertext: sealed.Ciphertext}, "u", "f")
		want := keyset.ErrOpen // k1 is a key; it just did not seal this
		if id == "s1" {
			want = keyset.ErrUnknownKey
		}
		if !errors.Is(err, want) {
			t.Errorf("Open with key id %s: got %v, want %v", id, err, want)
		}
	}
	id, key := k.PrimarySessionKey()
	if id != "s1" || !bytes.Equal(key, bytes.Repeat([]byte{0x5E}, 32)) {
		t.Errorf("PrimarySessionKey: got %q %x, want s1 and the session key", id, key)
	}
	if _, ok := k.SessionKey("nope"); ok {
		t.Errorf("SessionKey(nope): got ok, want missing")
	}
}

func TestParseErrorsNeverCarryKeyMaterial(t *testing.T) {
	short := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xC3}, 16))
	notB64 := "!!" + strings.Repeat("Zm9v", 10) + "!!"
	tests := []struct {
		name     string
		data     []byte
		wantSubs []string
		secrets  []string
	}{
		{"not json", []byte(`{"encryption": {"keys": {"k1": "` + keyA + `"`), []string{"not valid keyset JSON"}, []string{keyA}},
		{"unknown field", []byte(`{"encryption":{"primary":"k1","keys":{"k1":"` + keyA + `"}},"session":{"primary":"s1","keys":{"s1":"` + keyS + `"}},"extra":"` + keyB + `"}`),
			[]string{"not valid keyset JSON"}, []string{keyA, keyS, keyB}},
		{"empty object", []byte(`{}`), []string{"encryption: no keys", "session: no keys"}, nil},
		{"short key", keysetJSON(t, "k1", map[string]string{"k1": short}, "s1", map[string]string{"s1": keyS}),
			[]string{`encryption: key "k1" must be 32 bytes`}, []string{short, keyS}},
		{"not base64", keysetJSON(t, "k1", map[string]string{"k1": keyA}, "s1", map[string]string{"s1": notB64}),
			[]string{`session: key "s1" must be 32 bytes`}, []string{notB64, keyA}},
		{"primary missing", keysetJSON(t, "k9", map[string]string{"k1": keyA}, "s1", map[string]string{"s1": keyS}),
			[]string{`encryption: primary "k9" is not one of the keys`}, []string{keyA, keyS}},
		// Operator mistakes that put the key where an id belongs.
		{"key pasted as primary", keysetJSON(t, keyA, map[string]string{"k1": keyA}, "s1", map[string]string{"s1": keyS}),
			[]string{"encryption: primary (an id of 44 bytes, not shown) is not one of the keys"}, []string{keyA, keyS}},
		{"key and id swapped", keysetJSON(t, "k1", map[string]string{keyA: "k1"}, "s1", map[string]string{"s1": keyS}),
			[]string{"must be 32 bytes"}, []string{keyA, keyS}},
		{"every problem at once", keysetJSON(t, "x", map[string]string{"k1": short}, "", nil),
			[]string{`primary "x"`, `key "k1"`, "session: no keys"}, []string{short}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := keyset.Parse(tt.data)
			if err == nil {
				t.Fatalf("Parse: got %v, want error", k)
			}
			msg := err.Error()
			for _, s := range tt.wantSubs {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q: want it to contain %q", msg, s)
				}
			}
			for _, s := range tt.secrets {
				if strings.Contains(msg, s) {
					t.Errorf("error %q contains key material %q", msg, s)
				}
				raw, _ := base64.StdEncoding.DecodeString(s)
				if len(raw) > 0 && strings.Contains(msg, string(raw)) {
					t.Errorf("error %q contains raw key bytes", msg)
				}
			}
		})
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	k := validKeyset(t)
	for _, pt := range []string{"", "1//0refresh-token", strings.Repeat("x", 4096)} {
		s, err := k.Seal([]byte(pt), "user-1", "refresh_token")
		if err != nil {
			t.Fatalf("Seal: %v", err)
		}
		if s.KeyID != "k2" {
			t.Errorf("KeyID: got %q, want k2 (the primary)", s.KeyID)
		}
		if pt != "" && bytes.Contains(s.Ciphertext, []byte(pt)) {
			t.Errorf("ciphertext contains the plaintext")
		}
		got, err := k.Open(s, "user-1", "refresh_token")
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if string(got) != pt {
			t.Errorf("Open: got %q, want %q", got, pt)
		}
	}
}

func TestSealUsesFreshNonce(t *testing.T) {
	k := validKeyset(t)
	a, err := k.Seal([]byte("same"), "u", "f")
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.Seal([]byte("same"), "u", "f")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Ciphertext, b.Ciphertext) {
		t.Errorf("two seals of the same plaintext are equal: got %x twice, want different", a.Ciphertext)
	}
	if bytes.Equal(a.Ciphertext[:12], b.Ciphertext[:12]) {
		t.Errorf("two seals share the nonce %x", a.Ciphertext[:12])
	}
}

func TestOpenFailures(t *testing.T) {
	k := validKeyset(t)
	s, err := k.Seal([]byte("secret"), "user-A", "refresh_token")
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) keyset.Sealed {
		c := bytes.Clone(s.Ciphertext)
		c[i] ^= 0x01
		return keyset.Sealed{KeyID: s.KeyID, Ciphertext: c}
	}
	tests := []struct {
		name        string
		sealed      keyset.Sealed
		user, field string
		want        error
	}{
		{"other user", s, "user-B", "refresh_token", keyset.ErrOpen},
		{"other field", s, "user-A", "access_token", keyset.ErrOpen},
		{"user/field boundary", s, "user-A\x00refresh_token", "", keyset.ErrOpen},
		{"tampered nonce", flip(0), "user-A", "refresh_token", keyset.ErrOpen},
		{"tampered body", flip(13), "user-A", "refresh_token", keyset.ErrOpen},
		{"tampered tag", flip(len(s.Ciphertext) - 1), "user-A", "refresh_token", keyset.ErrOpen},
		{"truncated", keyset.Sealed{KeyID: s.KeyID, Ciphertext: s.Ciphertext[:len(s.Ciphertext)-1]}, "user-A", "refresh_token", keyset.ErrOpen},
		{"shorter than nonce", keyset.Sealed{KeyID: s.KeyID, Ciphertext: s.Ciphertext[:5]}, "user-A", "refresh_token", keyset.ErrOpen},
		{"empty", keyset.Sealed{KeyID: s.KeyID}, "user-A", "refresh_token", keyset.ErrOpen},
		{"other known key", keyset.Sealed{KeyID: "k1", Ciphertext: s.Ciphertext}, "user-A", "refresh_token", keyset.ErrOpen},
		{"unknown key", keyset.Sealed{KeyID: "k9", Ciphertext: s.Ciphertext}, "user-A", "refresh_token", keyset.ErrUnknownKey},
		{"session key id", keyset.Sealed{KeyID: "s1", Ciphertext: s.Ciphertext}, "user-A", "refresh_token", keyset.ErrUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, err := k.Open(tt.sealed, tt.user, tt.field)
			if !errors.Is(err, tt.want) {
				t.Errorf("Open: got %q, %v; want %v", pt, err, tt.want)
			}
			if pt != nil {
				t.Errorf("Open returned plaintext %q with an error", pt)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	data, err := keyset.Generate("2025-01")
	if err != nil {
		t.Fatal(err)
	}
	old := mustParse(t, data)
	oldSealed, err := old.Seal([]byte("rt-old"), "u1", "refresh_token")
	if err != nil {
		t.Fatal(err)
	}
	if oldSealed.KeyID != "enc-2025-01" {
		t.Errorf("KeyID: got %q, want enc-2025-01", oldSealed.KeyID)
	}

	rotated, err := keyset.Rotate(data, "2025-06")
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	k := mustParse(t, rotated)

	newSealed, err := k.Seal([]byte("rt-new"), "u1", "refresh_token")
	if err != nil {
		t.Fatal(err)
	}
	if newSealed.KeyID != "enc-2025-06" {
		t.Errorf("new KeyID: got %q, want enc-2025-06", newSealed.KeyID)
	}
	if got, err := k.Open(oldSealed, "u1", "refresh_token"); err != nil || string(got) != "rt-old" {
		t.Errorf("Open(old) after rotation: got %q, %v; want rt-old", got, err)
	}
	if got, err := k.Open(newSealed, "u1", "refresh_token"); err != nil || string(got) != "rt-new" {
		t.Errorf("Open(new): got %q, %v; want rt-new", got, err)
	}
	if _, err := old.Open(newSealed, "u1", "refresh_token"); !errors.Is(err, keyset.ErrUnknownKey) {
		t.Errorf("old keyset Open(new): got %v, want ErrUnknownKey", err)
	}
	if got := k.NeedsReseal(oldSealed); !got {
		t.Errorf("NeedsReseal(old): got %v, want true", got)
	}
	if got := k.NeedsReseal(newSealed); got {
		t.Errorf("NeedsReseal(new): got %v, want false", got)
	}
	if got := k.NeedsReseal(keyset.Sealed{}); got {
		t.Errorf("NeedsReseal(zero): got %v, want false", got)
	}

	oldID, oldKey := old.PrimarySessionKey()
	newID, _ := k.PrimarySessionKey()
	if newID != "sess-2025-06" {
		t.Errorf("session primary: got %q, want sess-2025-06", newID)
	}
	if key, ok := k.SessionKey(oldID); !ok || !bytes.Equal(key, oldKey) {
		t.Errorf("old session key %q after rotation: got %x %v, want it kept", oldID, key, ok)
	}
}

func TestRotateRefusesExistingIDs(t *testing.T) {
	data, err := keyset.Generate("1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keyset.Rotate(data, "1"); err == nil {
		t.Errorf("Rotate with an existing id: got nil error, want refusal")
	}
	// Only the session id collides: the session key must not be replaced.
	data = keysetJSON(t, "k1", map[string]string{"k1": keyA}, "sess-2", map[string]string{"sess-2": keyS})
	if _, err := keyset.Rotate(data, "2"); err == nil {
		t.Errorf("Rotate over an existing session id: got nil error, want refusal")
	}
	if _, err := keyset.Rotate([]byte("{}"), "3"); err == nil {
		t.Errorf("Rotate of an invalid keyset: got nil error, want error")
	}
}

func TestGenerateParses(t *testing.T) {
	a, err := keyset.Generate("x")
	if err != nil {
		t.Fatal(err)
	}
	b, err := keyset.Generate("x")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Errorf("two Generate calls: got equal keysets, want fresh keys")
	}
	k := mustParse(t, a)
	if s, err := k.Seal([]byte("pt"), "u", "f"); err != nil || s.KeyID != "enc-x" {
		t.Errorf("Seal: got key %q, %v; want enc-x", s.KeyID, err)
	}
	if id, key := k.PrimarySessionKey(); id != "sess-x" || len(key) != 32 {
		t.Errorf("PrimarySessionKey: got %q (%d bytes), want sess-x (32 bytes)", id, len(key))
	}
}

func FuzzKeysetParse(f *testing.F) {
	f.Add(keysetJSON(f, "k1", map[string]string{"k1": keyA}, "s1", map[string]string{"s1": keyS}))
	f.Add(keysetJSON(f, "k2", map[string]string{"k1": keyA, "k2": keyB}, "s1", map[string]string{"s1": keyS}))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"encryption":{"primary":"","keys":{"":""}},"session":null}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := keyset.Parse(data)
		if err != nil {
			if k != nil {
				t.Fatalf("Parse returned a keyset with error %v", err)
			}
			return
		}
		// A keyset that parses must seal and open with its primary key.
		s, err := k.Seal([]byte("pt"), "u", "f")
		if err != nil {
			t.Fatalf("Seal: %v", err)
		}
		if got, err := k.Open(s, "u", "f"); err != nil || string(got) != "pt" {
			t.Fatalf("Open: got %q, %v; want pt", got, err)
		}
		if id, key := k.PrimarySessionKey(); len(key) != 32 {
			t.Fatalf("PrimarySessionKey %q: got %d bytes, want 32", id, len(key))
		}
	})
}

func TestPageTokenKeys(t *testing.T) {
	data, err := keyset.Generate("a")
	if err != nil {
		t.Fatal(err)
	}
	k1, err := keyset.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	keys := k1.PageTokenKeys()
	_, sess := k1.PrimarySessionKey()
	if len(keys) != 1 || len(keys[0]) != 32 || bytes.Equal(keys[0], sess) {
		t.Fatalf("PageTokenKeys = %d keys, want one 32-byte key other than the session key", len(keys))
	}
	if !bytes.Equal(keys[0], k1.PageTokenKeys()[0]) {
		t.Errorf("PageTokenKeys is not deterministic")
	}
	rotated, err := keyset.Rotate(data, "b")
	if err != nil {
		t.Fatal(err)
	}
	k2, err := keyset.Parse(rotated)
	if err != nil {
		t.Fatal(err)
	}
	keys2 := k2.PageTokenKeys()
	if len(keys2) != 2 || bytes.Equal(keys2[0], keys[0]) || !bytes.Equal(keys2[1], keys[0]) {
		t.Errorf("after a rotation: want the new key first and the old one still there")
	}
}
