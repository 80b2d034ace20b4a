package app_test

import (
	"context"
	"crypto/rand"
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
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"example.com/gmailoauth/internal/app"
	"example.com/gmailoauth/internal/keyset"
	"example.com/gmailoauth/internal/logging"
	"example.com/gmailoauth/internal/oauthflow"
	"example.com/gmailoauth/internal/local/sandbox"
	"example.com/gmailoauth/internal/session"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/memstore"
)

const (
	schedSA       = "scheduler@proj.iam.gserviceaccount.com"
	schedAudience = "https://fn.example.com/list-messages"
	schedRedirect = "http://127.0.0.1:9/callback"
	schedClientID = "sched.apps.googleusercontent.com"
)

// schedEnv is an App wired to a sandbox, with one connected user.
type schedEnv struct {
	sb   *sandbox.Sandbox
	key  *rsa.PrivateKey
	ks   *keyset.Keyset
	st   store.Store
	a    *app.App
	user string
}

func newSchedEnv(t *testing.T) *schedEnv {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sb, srv, err := sandbox.StartServer(sandbox.Config{ClientID: schedClientID, ClientSecret: "sched-secret",
		RedirectURIs: []string{schedRedirect}, SigningKey: key, MailboxSize: 12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	client := filepath.Join(dir, "client.json")
	if err := os.WriteFile(client, sb.ClientSecretJSON(), 0o600); err != nil {
		t.Fatal(err)
	}
	keysData, _ := keyset.Generate("sched")
	keys := filepath.Join(dir, "keys.json")
	if err := os.WriteFile(keys, keysData, 0o600); err != nil {
		t.Fatal(err)
	}
	ks, err := keyset.Parse(keysData)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"OAUTH_CLIENT_SECRET_FILE": client, "APP_KEYS_FILE": keys, "OAUTH_REDIRECT_URL": schedRedirect,
		"SCHEDULER_SERVICE_ACCOUNT": schedSA, "SCHEDULER_AUDIENCE": schedAudience,
		"GOOGLE_AUTH_URL": sb.AuthURL(), "GOOGLE_TOKEN_URL": sb.TokenURL(), "GOOGLE_REVOKE_URL": sb.RevokeURL(),
		"GOOGLE_ISSUER": sb.Issuer(), "GMAIL_API_URL": sb.GmailURL(), "STORE": "memory",
	}
	st := memstore.New()
	a := app.New(app.Options{Getenv: func(k string) string { return env[k] }, Store: st,
		Logger: logging.New(io.Discard, "", slog.LevelError)})
	e := &schedEnv{sb: sb, key: key, ks: ks, st: st, a: a}
	e.user = e.connect(t, "sched-user@example.com")
	sb.ResetStats()
	return e
}

// connect runs the code flow against the sandbox and stores the grant sealed
// with the app's keyset, as the callback would.
func (e *schedEnv) connect(t *testing.T, email string) string {
	t.Helper()
	oc := &oauth2.Config{ClientID: schedClientID, ClientSecret: "sched-secret", RedirectURL: schedRedirect,
		Scopes:   []string{sandbox.ScopeGmailReadonly},
		Endpoint: oauth2.Endpoint{AuthURL: e.sb.AuthURL(), TokenURL: e.sb.TokenURL(), AuthStyle: oauth2.AuthStyleInParams}}
	v := oauth2.GenerateVerifier()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(oc.AuthCodeURL("s", oauth2.AccessTypeOffline, oauth2.SetAuthURLParam("prompt", "consent"),
		oauth2.SetAuthURLParam("login_hint", email), oauth2.S256ChallengeOption(v)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	tok, err := oc.Exchange(context.Background(), loc.Query().Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	sub := sandbox.SubFor(email)
	rt, _ := e.ks.Seal([]byte(tok.RefreshToken), sub, oauthflow.FieldRefreshToken)
	at, _ := e.ks.Seal([]byte(tok.AccessToken), sub, oauthflow.FieldAccessToken)
	_, err = e.st.UpdateCredential(context.Background(), sub, func(*store.Credential) (*store.Credential, error) {
		return &store.Credential{Email: email, RefreshToken: rt, AccessToken: at, AccessTokenExpiry: tok.Expiry,
			Scopes: []string{sandbox.ScopeGmailReadonly}, Status: store.StatusActive, CreatedAt: time.Now()}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sub
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
	ks := e.ks
	sess := &session.Manager{Keys: func() *keyset.Keyset { return ks }, TTL: time.Hour, Now: time.Now}
	sessionTok, _, err := sess.Issue(e.user, "sched-user@example.com")
	if err != nil {
		t.Fatal(err)
	}
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
