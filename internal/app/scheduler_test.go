package app_test

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"example.com/gmailoauth/internal/app"
	"example.com/gmailoauth/internal/local/sandbox"
	"example.com/gmailoauth/internal/local/testenv"
	"example.com/gmailoauth/internal/logging"
	"example.com/gmailoauth/internal/store"
)

const (
	schedSA       = testenv.SchedulerAccount
	schedAudience = testenv.SchedulerAudience
)

// schedEnv is an App wired to a sandbox, with one connected user.
type schedEnv struct {
	sb      *sandbox.Sandbox
	key     *rsa.PrivateKey
	st      store.Store
	a       *app.App
	user    string
	session string
}

func newSchedEnv(t *testing.T) *schedEnv {
	t.Helper()
	env := testenv.New(t, testenv.Options{MailboxSize: 12, Logger: logging.New(io.Discard, "", slog.LevelError)})
	e := &schedEnv{sb: env.Sandbox, key: testenv.SigningKey(), st: env.Store, a: env.NewApp()}
	e.user, e.session = env.Connect(t, "sched-user@example.com")
	e.sb.ResetStats()
	return e
}

// sign returns an RS256 ID token signed by the sandbox's (the issuer's) key.
func (e *schedEnv) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	der, _ := x509.MarshalPKIXPublicKey(&e.key.PublicKey)
	sum := sha256.Sum256(der)
	kid := hex.EncodeToString(sum[:20])
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256,
		Key: jose.JSONWebKey{Key: e.key, KeyID: kid, Algorithm: string(jose.RS256)}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (e *schedEnv) claims(mut func(map[string]any)) map[string]any {
	now := time.Now()
	c := map[string]any{"iss": e.sb.Issuer(), "aud": schedAudience, "sub": "1234", "azp": "1234",
		"email": schedSA, "email_verified": true, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	if mut != nil {
		mut(c)
	}
	return c
}

func (e *schedEnv) post(t *testing.T, token, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/list-messages", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	e.a.ListMessages(rec, req)
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

func (e *schedEnv) gmailCalls() int {
	n := 0
	for _, v := range e.sb.Stats().GmailCalls {
		n += v
	}
	return n
}

func TestSchedulerAuthMatrix(t *testing.T) {
	e := newSchedEnv(t)
	sessionTok := e.session
	b64 := base64.RawURLEncoding.EncodeToString
	claimsJSON, _ := json.Marshal(e.claims(nil))
	algNone := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64(claimsJSON) + "."
	signed := e.sign(t, e.claims(nil))
	parts := strings.Split(signed, ".")
	unsigned := parts[0] + "." + parts[1] + "."
	minted, err := e.sb.MintIDToken(schedAudience, schedSA, 0)
	if err != nil {
		t.Fatal(err)
	}

	bad := []struct {
		name   string
		token  string
		status int
		code   string
	}{
		{"missing token", "", http.StatusUnauthorized, "missing_token"},
		{"wrong audience", e.sign(t, e.claims(func(c map[string]any) { c["aud"] = "https://other.example.com/fn" })), http.StatusUnauthorized, "invalid_token"},
		{"wrong account", e.sign(t, e.claims(func(c map[string]any) { c["email"] = "intruder@proj.iam.gserviceaccount.com" })), http.StatusForbidden, "forbidden"},
		{"email not verified", e.sign(t, e.claims(func(c map[string]any) { c["email_verified"] = false })), http.StatusForbidden, "forbidden"},
		{"no email claim", e.sign(t, e.claims(func(c map[string]any) { delete(c, "email") })), http.StatusForbidden, "forbidden"},
		{"session token instead of OIDC", sessionTok, http.StatusUnauthorized, "invalid_token"},
		{"alg none", algNone, http.StatusUnauthorized, "invalid_token"},
		{"signature stripped", unsigned, http.StatusUnauthorized, "invalid_token"},
		{"wrong issuer", e.sign(t, e.claims(func(c map[string]any) { c["iss"] = "https://accounts.google.com" })), http.StatusUnauthorized, "invalid_token"},
		{"expired", e.sign(t, e.claims(func(c map[string]any) {
			c["iat"] = time.Now().Add(-2 * time.Hour).Unix()
			c["exp"] = time.Now().Add(-time.Hour).Unix()
		})), http.StatusUnauthorized, "invalid_token"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			status, body := e.post(t, tc.token, `{}`)
			errObj, _ := body["error"].(map[string]any)
			if status != tc.status || errObj == nil || errObj["code"] != tc.code {
				t.Fatalf("status %d body %v, want %d %s", status, body, tc.status, tc.code)
			}
			if n := e.gmailCalls(); n != 0 {
				t.Fatalf("a rejected request made %d Gmail calls", n)
			}
			if _, err := e.st.GetMailbox(context.Background(), e.user); err == nil {
				t.Fatalf("a rejected request synced a mailbox")
			}
		})
	}

	for _, tc := range []struct{ name, token string }{{"valid token (sandbox minted)", minted}, {"valid token (claims)", signed}} {
		t.Run(tc.name, func(t *testing.T) {
			e.sb.ResetStats()
			status, body := e.post(t, tc.token, `{}`)
			if status != http.StatusOK {
				t.Fatalf("status %d body %v", status, body)
			}
			for _, k := range []string{"users", "synced", "revoked", "failed", "messages_added", "messages_removed", "gmail_calls", "quota_units", "duration_ms", "complete"} {
				if _, ok := body[k]; !ok {
					t.Fatalf("summary lacks %q: %v", k, body)
				}
			}
			if body["users"] != float64(1) || body["synced"] != float64(1) || body["complete"] != true {
				t.Fatalf("summary %v, want the one user synced", body)
			}
			if e.gmailCalls() == 0 {
				t.Fatalf("a valid request made no Gmail call")
			}
		})
	}

	t.Run("one user", func(t *testing.T) {
		status, body := e.post(t, minted, `{"user_id":"`+e.user+`"}`)
		if status != http.StatusOK || body["users"] != float64(1) || body["synced"] != float64(1) {
			t.Fatalf("status %d body %v", status, body)
		}
		status, body = e.post(t, minted, `{"user_id":"404404"}`)
		if errObj, _ := body["error"].(map[string]any); status != http.StatusNotFound || errObj["code"] != "unknown_user" {
			t.Fatalf("unknown user: status %d body %v", status, body)
		}
	})
}
