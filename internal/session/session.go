// Package session issues and verifies the bearer sessions that OAuthCallback
// hands to a frontend and ListMessages and Authorize accept: short-lived
// HS256 JWTs signed with a key of the app keyset, verified with
// github.com/golang-jwt/jwt/v5 (algorithm pinned, expiry required).
package session

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"example.com/gmailoauth/internal/keyset"
)

const (
	issuer   = "gmailoauth"
	audience = "gmailoauth-session"
)

// ErrInvalid is returned for every session that does not verify: malformed,
// forged, expired, wrong algorithm. Reason says which, for logs only.
// KeyID is set when the session names a key id the keyset lacks.
type ErrInvalid struct {
	Reason string
	KeyID  string
}

func (e *ErrInvalid) Error() string { return "session invalid: " + e.Reason }

// Claims are what a session asserts.
type Claims struct {
	Email string `json:"email,omitempty"`
	// Grant is the stored grant the session was issued for
	// (store.Credential.Grant): once that grant is gone (a disconnect,
	// a revocation), the session is dead, even after the user connects
	// again.
	Grant string `json:"gid,omitempty"`
	jwt.RegisteredClaims
}

// Manager issues and verifies sessions. Keys returns the current keyset; it is
// called for every operation so a refreshed keyset takes effect at once.
type Manager struct {
	Keys func() *keyset.Keyset
	TTL  time.Duration
	Now  func() time.Time
}

// Issue returns a session for userID's grant and its expiry.
func (m *Manager) Issue(userID, email, grant string) (string, time.Time, error) {
	now := m.Now()
	exp := now.Add(m.TTL).Truncate(time.Second)
	kid, key := m.Keys().PrimarySessionKey()
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{
		Email: email,
		Grant: grant,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   userID,
			Audience:  jwt.ClaimStrings{audience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
	})
	t.Header["kid"] = kid
	s, err := t.SignedString(key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("session: sign: %w", err)
	}
	return s, exp, nil
}

// Verify checks a session and returns its claims. Any failure is an
// *ErrInvalid; a session signed by a key id the keyset lacks also matches
// keyset.ErrUnknownKey with errors.Is, so the caller can reload the keyset.
func (m *Manager) Verify(token string) (*Claims, error) {
	if token == "" || len(token) > 4096 {
		return nil, &ErrInvalid{Reason: "empty or oversized"}
	}
	ks := m.Keys()
	var unknownKey bool
	var kid string
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(m.Now),
		jwt.WithStrictDecoding(),
	)
	var c Claims
	_, err := p.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		key, ok := ks.SessionKey(kid)
		if !ok {
			unknownKey = true
			return nil, keyset.ErrUnknownKey
		}
		return key, nil
	})
	switch {
	case err == nil && c.Subject != "":
		return &c, nil
	case err == nil:
		return nil, &ErrInvalid{Reason: "no subject"}
	case unknownKey:
		return nil, errors.Join(&ErrInvalid{Reason: "unknown key id", KeyID: kid}, keyset.ErrUnknownKey)
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, &ErrInvalid{Reason: "expired"}
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return nil, &ErrInvalid{Reason: "bad signature"}
	case errors.Is(err, jwt.ErrTokenUnverifiable), errors.Is(err, jwt.ErrTokenMalformed):
		return nil, &ErrInvalid{Reason: "malformed or unverifiable"}
	default:
		return nil, &ErrInvalid{Reason: "claims rejected"}
	}
}
