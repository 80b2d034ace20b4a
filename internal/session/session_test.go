package session_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"example.com/gmailoauth/internal/keyset"
	"example.com/gmailoauth/internal/session"
)

// t0 is the fixed "now" of these tests.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

var (
	sessKey  = bytes.Repeat([]byte{0x5E}, 32)
	otherKey = bytes.Repeat([]byte{0x77}, 32)
)

// testKeys returns a keyset whose primary session key is "s1" = sessKey.
func testKeys(t testing.TB) *keyset.Keyset {
	t.Helper()
	b64 := base64.StdEncoding.EncodeToString
	data, err := json.Marshal(map[string]any{
		"encryption": map[string]any{"primary": "e1", "keys": map[string]string{"e1": b64(bytes.Repeat([]byte{1}, 32))}},
		"session":    map[string]any{"primary": "s1", "keys": map[string]string{"s1": b64(sessKey)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	k, err := keyset.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// clock is an injectable, settable time source.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

// newManager returns a Manager with a one-hour TTL and a clock at t0.
func newManager(t testing.TB) (*session.Manager, *clock) {
	ks := testKeys(t)
	c := &clock{now: t0}
	return &session.Manager{Keys: func() *keyset.Keyset { return ks }, TTL: time.Hour, Now: c.Now}, c
}

// b64 is unpadded base64url, the JWT segment encoding.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// handToken assembles a JWT from header and claims by hand and signs it with
// HMAC-h under key; a nil h leaves the signature empty ("alg":"none").
func handToken(t testing.TB, header, claims map[string]any, h func() hash.Hash, key []byte) string {
	t.Helper()
	hj, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	cj, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := b64(hj) + "." + b64(cj)
	if h == nil {
		return input + "."
	}
	mac := hmac.New(h, key)
	mac.Write([]byte(input))
	return input + "." + b64(mac.Sum(nil))
}

// goodClaims are valid claims for user-1 at t0, as Issue would make them.
func goodClaims() map[string]any {
	return map[string]any{
		"iss": "gmailoauth", "aud": []string{"gmailoauth-session"}, "sub": "user-1",
		"email": "u@example.com", "iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix(),
	}
}

// with returns a copy of m with kv applied; a nil value deletes the key.
func with(m map[string]any, kv map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for k, v := range kv {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	m, _ := newManager(t)
	tok, exp, err := m.Issue("user-1", "u@example.com", "g1")
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if want := t0.Add(time.Hour); !exp.Equal(want) {
		t.Errorf("expiry: got %v, want %v", exp, want)
	}
	c, err := m.Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	got := map[string]any{"sub": c.Subject, "email": c.Email, "gid": c.Grant, "iss": c.Issuer, "aud": []string(c.Audience),
		"iat": c.IssuedAt.Unix(), "exp": c.ExpiresAt.Unix()}
	want := map[string]any{"sub": "user-1", "email": "u@example.com", "gid": "g1", "iss": "gmailoauth", "aud": []string{"gmailoauth-session"},
		"iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix()}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("claims mismatch (-want +got):\n%s", diff)
	}
	// The hand-built equivalent verifies too, so the attack tokens below
	// differ from a good token only in what each test changes.
	hand := handToken(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": "s1"}, goodClaims(), sha256.New, sessKey)
	if _, err := m.Verify(hand); err != nil {
		t.Fatalf("Verify(hand-built good token): %v", err)
	}
}

func TestVerifyExpiryWithClock(t *testing.T) {
	m, c := newManager(t)
	tok, _, err := m.Issue("user-1", "", "g1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		now    time.Time
		wantOK bool
	}{
		{"at issue", t0, true},
		{"just before expiry", t0.Add(time.Hour - time.Second), true},
		{"at expiry", t0.Add(time.Hour), false},
		{"after expiry", t0.Add(2 * time.Hour), false},
		{"before issue (iat in future)", t0.Add(-time.Minute), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.now = tt.now
			t.Cleanup(func() { c.now = t0 })
			_, err := m.Verify(tok)
			if (err == nil) != tt.wantOK {
				t.Errorf("Verify at %v: got %v, want ok=%v", tt.now, err, tt.wantOK)
			}
		})
	}
}

func TestVerifyRejectsAttacks(t *testing.T) {
	m, _ := newManager(t)
	good, _, err := m.Issue("user-1", "u@example.com", "g1")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	hs256 := map[string]any{"alg": "HS256", "typ": "JWT", "kid": "s1"}

	tamperedPayload := func() string {
		c := with(goodClaims(), map[string]any{"sub": "admin"})
		cj, _ := json.Marshal(c)
		return parts[0] + "." + b64(cj) + "." + parts[2]
	}()
	malleable := nonCanonical(good)

	tests := []struct {
		name       string
		token      string
		unknownKey bool
	}{
		{"empty", "", false},
		{"oversized", strings.Repeat("a", 4097), false},
		{"garbage", "not-a-jwt", false},
		{"two segments", parts[0] + "." + parts[1], false},
		{"four segments", good + ".x", false},
		{"forged with other key", handToken(t, hs256, goodClaims(), sha256.New, otherKey), false},
		{"tampered payload", tamperedPayload, false},
		{"truncated signature", good[:len(good)-2], false},
		{"non-canonical signature encoding", malleable, false},
		{"padded signature", good + "=", false},
		{"alg none", handToken(t, map[string]any{"alg": "none", "typ": "JWT", "kid": "s1"}, goodClaims(), nil, nil), false},
		{"alg None", handToken(t, map[string]any{"alg": "None", "kid": "s1"}, goodClaims(), nil, nil), false},
		{"alg none with signature", handToken(t, map[string]any{"alg": "none", "kid": "s1"}, goodClaims(), sha256.New, sessKey), false},
		{"HS512 with the real key", handToken(t, map[string]any{"alg": "HS512", "kid": "s1"}, goodClaims(), sha512.New, sessKey), false},
		{"HS384 header, HS256 signature", handToken(t, map[string]any{"alg": "HS384", "kid": "s1"}, goodClaims(), sha256.New, sessKey), false},
		{"RS256 header, HMAC signature", handToken(t, map[string]any{"alg": "RS256", "kid": "s1"}, goodClaims(), sha256.New, sessKey), false},
		{"missing kid", handToken(t, map[string]any{"alg": "HS256"}, goodClaims(), sha256.New, sessKey), true},
		{"kid not a string", handToken(t, map[string]any{"alg": "HS256", "kid": 1}, goodClaims(), sha256.New, sessKey), true},
		{"unknown kid", handToken(t, map[string]any{"alg": "HS256", "kid": "s9"}, goodClaims(), sha256.New, sessKey), true},
		{"encryption key id as kid", handToken(t, map[string]any{"alg": "HS256", "kid": "e1"}, goodClaims(), sha256.New, bytes.Repeat([]byte{1}, 32)), true},
		{"expired", handToken(t, hs256, with(goodClaims(), map[string]any{"iat": t0.Add(-2 * time.Hour).Unix(), "exp": t0.Add(-time.Hour).Unix()}), sha256.New, sessKey), false},
		{"no exp", handToken(t, hs256, with(goodClaims(), map[string]any{"exp": nil}), sha256.New, sessKey), false},
		{"iat in future", handToken(t, hs256, with(goodClaims(), map[string]any{"iat": t0.Add(time.Minute).Unix()}), sha256.New, sessKey), false},
		{"not yet valid", handToken(t, hs256, with(goodClaims(), map[string]any{"nbf": t0.Add(time.Minute).Unix()}), sha256.New, sessKey), false},
		{"wrong audience", handToken(t, hs256, with(goodClaims(), map[string]any{"aud": "other-app"}), sha256.New, sessKey), false},
		{"no audience", handToken(t, hs256, with(goodClaims(), map[string]any{"aud": nil}), sha256.New, sessKey), false},
		{"wrong issuer", handToken(t, hs256, with(goodClaims(), map[string]any{"iss": "https://accounts.google.com"}), sha256.New, sessKey), false},
		{"no subject", handToken(t, hs256, with(goodClaims(), map[string]any{"sub": nil}), sha256.New, sessKey), false},
		{"exp as string", handToken(t, hs256, with(goodClaims(), map[string]any{"exp": "never"}), sha256.New, sessKey), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := m.Verify(tt.token)
			if err == nil {
				t.Fatalf("Verify: got claims %+v, want *ErrInvalid", c)
			}
			if c != nil {
				t.Errorf("Verify returned claims %+v with error %v", c, err)
			}
			var inv *session.ErrInvalid
			if !errors.As(err, &inv) {
				t.Errorf("Verify error: got %T %v, want *session.ErrInvalid", err, err)
			}
			if got := errors.Is(err, keyset.ErrUnknownKey); got != tt.unknownKey {
				t.Errorf("errors.Is(err, ErrUnknownKey): got %v, want %v (err %v)", got, tt.unknownKey, err)
			}
			if tt.token != "" && len(tt.token) > 20 && strings.Contains(err.Error(), tt.token[len(tt.token)-20:]) {
				t.Errorf("error %q echoes the token", err)
			}
		})
	}
}

func TestVerifyAfterRotation(t *testing.T) {
	b := base64.StdEncoding.EncodeToString
	mk := func(primary string, keys map[string]string) *keyset.Keyset {
		data, _ := json.Marshal(map[string]any{
			"encryption": map[string]any{"primary": "e1", "keys": map[string]string{"e1": b(bytes.Repeat([]byte{1}, 32))}},
			"session":    map[string]any{"primary": primary, "keys": keys},
		})
		k, err := keyset.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	before := mk("s1", map[string]string{"s1": b(sessKey)})
	after := mk("s2", map[string]string{"s1": b(sessKey), "s2": b(otherKey)})
	current := before
	c := &clock{now: t0}
	m := &session.Manager{Keys: func() *keyset.Keyset { return current }, TTL: time.Hour, Now: c.Now}
	old, _, err := m.Issue("u", "", "g1")
	if err != nil {
		t.Fatal(err)
	}
	current = after
	fresh, _, err := m.Issue("u", "", "g1")
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"old": old, "fresh": fresh} {
		if _, err := m.Verify(tok); err != nil {
			t.Errorf("Verify(%s) after rotation: got %v, want ok", name, err)
		}
	}
	current = before // an instance that has not reloaded the keyset yet
	if _, err := m.Verify(fresh); !errors.Is(err, keyset.ErrUnknownKey) {
		t.Errorf("Verify(fresh) with the old keyset: got %v, want ErrUnknownKey", err)
	}
}

// nonCanonical re-encodes tok's signature with different, otherwise unused
// low bits in its last base64url character: the same signature bytes, a
// different token string. A strict verifier refuses it.
func nonCanonical(tok string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b := []byte(tok)
	i := strings.IndexByte(alphabet, b[len(b)-1])
	if b[len(b)-1] = alphabet[i|1]; string(b) == tok {
		b[len(b)-1] = alphabet[i&^1]
	}
	return string(b)
}

// issuedSet returns tokens issued by m for a few users; a fuzzed token that
// verifies must be one of them.
func issuedSet(t testing.TB, m *session.Manager) map[string]bool {
	set := map[string]bool{}
	for _, u := range []string{"user-1", "1234567890", "x"} {
		tok, _, err := m.Issue(u, u+"@example.com", "g1")
		if err != nil {
			t.Fatal(err)
		}
		set[tok] = true
	}
	return set
}

func FuzzSessionVerify(f *testing.F) {
	m, _ := newManager(f)
	issued := issuedSet(f, m)
	for tok := range issued {
		f.Add(tok)
		f.Add(nonCanonical(tok))
	}
	f.Add("")
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add(handToken(f, map[string]any{"alg": "HS256", "kid": "s1"}, goodClaims(), sha256.New, otherKey))
	f.Fuzz(func(t *testing.T, token string) {
		c, err := m.Verify(token)
		if err != nil {
			var inv *session.ErrInvalid
			if c != nil || !errors.As(err, &inv) {
				t.Fatalf("Verify(%q): got %v, %T %v; want nil, *ErrInvalid", token, c, err, err)
			}
			return
		}
		if !issued[token] {
			t.Fatalf("Verify accepted %q, which Issue did not produce (claims %+v)", token, c)
		}
	})
}
