// Package keyset holds the app's own keys, read from the app keyset secret:
// AES-256-GCM keys that seal tokens at rest and HMAC keys that sign sessions.
// Each key has an id; one key of each kind is primary (used for new
// ciphertexts and sessions), the others still open and verify what they made,
// which is how keys are rotated.
//
// The keyset secret is JSON:
//
//	{"encryption": {"primary": "k2", "keys": {"k1": "<base64 32 bytes>", "k2": "..."}},
//	 "session":    {"primary": "s1", "keys": {"s1": "<base64 32 bytes>"}}}
package keyset

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrUnknownKey means a ciphertext or session names a key id the keyset does
// not hold (it may have been added since the keyset was read).
var ErrUnknownKey = errors.New("keyset: unknown key id")

// ErrOpen means a ciphertext failed authentication: it was altered, or it was
// sealed for another user or field.
var ErrOpen = errors.New("keyset: ciphertext does not open")

// Sealed is a ciphertext: AES-256-GCM with a random nonce prepended, bound
// to one user and one field. KeyID names the key that sealed it, so old keys
// keep opening old ciphertexts after a rotation.
type Sealed struct {
	KeyID      string
	Ciphertext []byte
}

// IsZero reports whether s holds no ciphertext.
func (s Sealed) IsZero() bool { return len(s.Ciphertext) == 0 }

// Keyset is a parsed app keyset. It is safe for concurrent use.
type Keyset struct {
	encPrimary  string
	enc         map[string]cipher.AEAD
	sessPrimary string
	sess        map[string][]byte
}

type ring struct {
	Primary string            `json:"primary"`
	Keys    map[string]string `json:"keys"`
}

type file struct {
	Encryption ring `json:"encryption"`
	Session    ring `json:"session"`
}

// Parse parses a keyset secret. Errors describe what is wrong without
// including key material.
func Parse(data []byte) (*Keyset, error) {
	var f file
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, errors.New("keyset: not valid keyset JSON (want {\"encryption\":{...},\"session\":{...}})")
	}
	var problems []string
	k := &Keyset{enc: map[string]cipher.AEAD{}, sess: map[string][]byte{}}
	keys := func(kind string, r ring, use func(id string, key []byte) error) string {
		if len(r.Keys) == 0 {
			problems = append(problems, kind+": no keys")
			return ""
		}
		if _, ok := r.Keys[r.Primary]; !ok {
			problems = append(problems, fmt.Sprintf("%s: primary %s is not one of the keys", kind, showID(r.Primary)))
		}
		for _, id := range sortedIDs(r.Keys) {
			if !ValidID(id) {
				problems = append(problems, fmt.Sprintf("%s: key id %s must be 1 to 64 letters, digits, '.', '_' or '-'", kind, showID(id)))
			}
			key, err := base64.StdEncoding.DecodeString(r.Keys[id])
			if err != nil || len(key) != 32 {
				problems = append(problems, fmt.Sprintf("%s: key %s must be 32 bytes in standard base64", kind, showID(id)))
				continue
			}
			if err := use(id, key); err != nil {
				problems = append(problems, fmt.Sprintf("%s: key %s: %v", kind, showID(id), err))
			}
		}
		return r.Primary
	}
	k.encPrimary = keys("encryption", f.Encryption, func(id string, key []byte) error {
		block, err := aes.NewCipher(key)
		if err != nil {
			return err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return err
		}
		k.enc[id] = aead
		return nil
	})
	k.sessPrimary = keys("session", f.Session, func(id string, key []byte) error {
		k.sess[id] = key
		return nil
	})
	if len(problems) > 0 {
		return nil, errors.New("keyset: " + strings.Join(problems, "; "))
	}
	return k, nil
}

// showID quotes a key id for an error message, unless it is long enough to be
// key material pasted in the wrong place (a 32-byte key is 44 base64 chars).
func showID(id string) string {
	if len(id) > 32 || strings.ContainsAny(id, "\n\r\t ") {
		return fmt.Sprintf("(an id of %d bytes, not shown)", len(id))
	}
	return fmt.Sprintf("%q", id)
}

func sortedIDs(m map[string]string) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// aad binds a ciphertext to one user and one field: moved to another user's
// document, or from the access to the refresh token field, it does not open.
func aad(userID, field string) []byte {
	return []byte("gmailoauth/v1\x00" + field + "\x00" + userID)
}

// Seal encrypts plaintext for userID's field with the primary encryption key
// and a fresh random nonce (prepended to the ciphertext).
func (k *Keyset) Seal(plaintext []byte, userID, field string) (Sealed, error) {
	aead := k.enc[k.encPrimary]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return Sealed{}, err
	}
	return Sealed{KeyID: k.encPrimary, Ciphertext: aead.Seal(nonce, nonce, plaintext, aad(userID, field))}, nil
}

// Open decrypts s for userID's field. It returns ErrUnknownKey when s was
// sealed with a key the keyset lacks, and ErrOpen when authentication fails.
func (k *Keyset) Open(s Sealed, userID, field string) ([]byte, error) {
	aead, ok := k.enc[s.KeyID]
	if !ok {
		return nil, ErrUnknownKey
	}
	if len(s.Ciphertext) < aead.NonceSize() {
		return nil, ErrOpen
	}
	nonce, ct := s.Ciphertext[:aead.NonceSize()], s.Ciphertext[aead.NonceSize():]
	pt, err := aead.Open(nil, nonce, ct, aad(userID, field))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// NeedsReseal reports whether s was sealed with a key other than the primary.
func (k *Keyset) NeedsReseal(s Sealed) bool {
	return !s.IsZero() && s.KeyID != k.encPrimary
}

// SessionKey returns the session signing key with the given id.
func (k *Keyset) SessionKey(id string) ([]byte, bool) {
	key, ok := k.sess[id]
	return key, ok
}

// PrimarySessionKey returns the id and key that sign new sessions.
func (k *Keyset) PrimarySessionKey() (string, []byte) {
	return k.sessPrimary, k.sess[k.sessPrimary]
}

// Generate returns a new keyset secret with one random key of each kind,
// named by the given id suffix (for example a date).
func Generate(id string) ([]byte, error) {
	if !ValidID("sess-" + id) {
		return nil, fmt.Errorf("keyset: id suffix %s must be letters, digits, '.', '_' or '-'", showID(id))
	}
	b := make([]byte, 64)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	f := file{
		Encryption: ring{Primary: "enc-" + id, Keys: map[string]string{"enc-" + id: base64.StdEncoding.EncodeToString(b[:32])}},
		Session:    ring{Primary: "sess-" + id, Keys: map[string]string{"sess-" + id: base64.StdEncoding.EncodeToString(b[32:])}},
	}
	return json.MarshalIndent(f, "", "  ")
}

// Rotate returns the keyset secret data with a new primary key of each kind
// named by id; the old keys stay so existing ciphertexts and sessions open.
func Rotate(data []byte, id string) ([]byte, error) {
	if _, err := Parse(data); err != nil {
		return nil, err
	}
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	b := make([]byte, 64)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	encID, sessID := "enc-"+id, "sess-"+id
	if !ValidID(sessID) {
		return nil, fmt.Errorf("keyset: id suffix %s must be letters, digits, '.', '_' or '-'", showID(id))
	}
	if _, dup := f.Encryption.Keys[encID]; dup {
		return nil, fmt.Errorf("keyset: key id %q exists already", encID)
	}
	if _, dup := f.Session.Keys[sessID]; dup {
		return nil, fmt.Errorf("keyset: key id %q exists already", sessID)
	}
	f.Encryption.Keys[encID] = base64.StdEncoding.EncodeToString(b[:32])
	f.Encryption.Primary = encID
	f.Session.Keys[sessID] = base64.StdEncoding.EncodeToString(b[32:])
	f.Session.Primary = sessID
	return json.MarshalIndent(f, "", "  ")
}

// pageTokenInfo separates page-token keys from the session keys they are
// derived from.
const pageTokenInfo = "gmailoauth/v1 page tokens"

// PageTokenKeys returns the keys that sign the frontend's page tokens, the
// one to sign with first: one per session key, derived from it with
// HKDF-SHA256, so a page token and a session never share a key and
// rotating the session keys rotates these too.
func (k *Keyset) PageTokenKeys() [][]byte {
	ids := make([]string, 0, len(k.sess))
	for id := range k.sess {
		if id != k.sessPrimary {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	ids = append([]string{k.sessPrimary}, ids...)
	out := make([][]byte, 0, len(ids))
	for _, id := range ids {
		key, err := hkdf.Key(sha256.New, k.sess[id], nil, pageTokenInfo, 32)
		if err != nil { // only for lengths HKDF cannot produce
			panic(err)
		}
		out = append(out, key)
	}
	return out
}
