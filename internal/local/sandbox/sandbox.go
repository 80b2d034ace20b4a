// Package sandbox is a real HTTP server standing in for Google's OAuth 2.0
// authorization, token and revocation endpoints, its OpenID Connect discovery
// document and JWKS, and the Gmail API (messages, history, profile, labels).
// The local runner mounts it so a newcomer sees the whole flow without a
// Google account; end-to-end tests and sync benchmarks drive it through the
// same libraries production uses (golang.org/x/oauth2, go-oidc,
// google.golang.org/api/gmail/v1), so it speaks Google's wire format.
//
// # Endpoints (relative to Config.BaseURL, which is also the OIDC issuer)
//
//	GET      /o/oauth2/v2/auth                  authorization endpoint (consent is automatic)
//	POST     /token                             token endpoint (authorization_code, refresh_token)
//	POST|GET /revoke                            revocation endpoint (token in form body or query)
//	GET      /.well-known/openid-configuration  OIDC discovery
//	GET      /oauth2/v3/certs                   JWKS (one RSA-2048 key, RS256)
//	GET      /oauth2/v3/userinfo                OIDC userinfo (Bearer access token)
//	GET      /gmail/v1/users/{userId}/messages          users.messages.list
//	GET      /gmail/v1/users/{userId}/messages/{id}     users.messages.get
//	GET      /gmail/v1/users/{userId}/history           users.history.list
//	GET      /gmail/v1/users/{userId}/profile           users.getProfile
//	GET      /gmail/v1/users/{userId}/labels            users.labels.list
//	GET      /gmail/v1/users/{userId}/labels/{id}       users.labels.get
//	POST     /batch/gmail/v1                            batch requests (up to 100 of the calls above)
//	POST     /gmail/v1/users/{userId}/watch             users.watch (push notifications; see push.go)
//	POST     /gmail/v1/users/{userId}/stop              users.stop
//
// Point gmail.NewService at it with option.WithEndpoint(BaseURL+"/"). See
// Sandbox.Endpoint, Sandbox.RevokeURL, Sandbox.GmailURL and
// Sandbox.ClientSecretJSON for ready-made settings.
//
// # Google behaviour followed
//
//   - The authorization endpoint never redirects for a bad client or
//     redirect_uri: it shows a page ("Error 401: invalid_client",
//     "Error 400: redirect_uri_mismatch"). Other request errors
//     (missing scope, state, bad PKCE parameters) show an
//     "Error 400: invalid_request" page too. A denied consent redirects
//     with error=access_denied; prompt=none without a covering grant
//     redirects with error=consent_required.
//   - The redirect carries code, state, scope (granted scopes, space
//     separated; "email" expands to "email
//     https://www.googleapis.com/auth/userinfo.email", "profile" likewise),
//     authuser=0 and prompt ("consent" when the consent screen was shown,
//     "none" when a returning user skipped it).
//   - A refresh token is returned only for access_type=offline, and only when
//     the consent screen was forced (prompt=consent) or the user has no
//     active offline grant for the client yet. A refresh-token grant never
//     returns a new refresh token.
//   - Client authentication by client_secret_post or HTTP Basic.
//   - Token errors: invalid_grant "Bad Request" (unknown, used or expired
//     code), "Missing code verifier." / "Invalid code verifier." (PKCE),
//     "Token has been expired or revoked." (refresh token);
//     redirect_uri_mismatch; invalid_client (401); unsupported_grant_type;
//     invalid_request.
//   - Revoking an access or a refresh token revokes the whole grant; an
//     unknown token answers 400 invalid_token.
//   - ID tokens: RS256 with kid; iss, azp, aud, sub (21 digits), email and
//     email_verified (when an email scope was granted), at_hash, nonce, iat,
//     exp = iat+3600. The ID token is returned whenever "openid" was granted.
//   - Gmail: Google's JSON error bodies (401 authError/UNAUTHENTICATED with a
//     WWW-Authenticate header, 403 insufficientPermissions/PERMISSION_DENIED,
//     404 notFound, 400 invalidArgument, 429 userRateLimitExceeded/
//     RESOURCE_EXHAUSTED, 403 rateLimitExceeded, 503 backendError/UNAVAILABLE); uint64 and int64
//     fields that the Go client tags `json:",string"` (historyId,
//     internalDate, history id) are JSON strings; empty lists are omitted;
//     the gmail.metadata scope cannot use q or format=full/raw.
//   - Quota: every call is charged what gmail.Costs says (the functions'
//     own table: messages.get 20 units, 60 for a whole message, ...), a
//     batch call by call, against a per-minute allowance per user (6,000
//     units) and per project (1,200,000), as Gmail's limits since
//     2026-05-01; see QuotaLimits for how a minute is metered and what is
//     answered past it. Stats shows the units by user and by method.
//
// # Seeded mailbox
//
// Every user starts with the same deterministic mailbox (260 messages by
// default; Config.MailboxSize, SetDefaultMailboxSize or SetMailboxSize change
// it). Message i (0 = newest) is dated i*8h before the moment the user's
// mailbox was first touched (by a token, a Gmail call or an admin call).
// Labels: INBOX, UNREAD, STARRED, IMPORTANT, SENT, SPAM, TRASH,
// CATEGORY_*, and the user label "Label_1" named "Receipts". Message content
// is generated on the fly from its index; only changes (added and deleted
// messages, label changes, history) are stored per user, so 1,000 users with
// 10,000 messages each cost little memory. Dates in q (after:/before:) are
// read in UTC.
//
// Supported q terms, all ANDed (a term may be negated with a leading "-",
// two terms joined by OR match either): from:, to:, subject:, label:,
// in:inbox|sent|spam|trash|starred|important|anywhere,
// is:unread|read|starred|important, category:, newer_than:/older_than: (Nd,
// Nm, Ny), after:/before: (YYYY/MM/DD or Unix seconds), has:attachment
// (never true here), quoted phrases and free words (case-insensitive
// substring of subject, From or snippet). Unknown operators are free words.
//
// # Knobs (Go API and HTTP admin API)
//
// The admin API is unauthenticated: it is for local demos and tests only.
// Durations in JSON are strings such as "250ms" or integers in milliseconds.
//
//	Go                                   HTTP
//	SetUserKnobs(email, Knobs)           PUT    /admin/users/{email}/knobs     {"deny_consent","drop_scopes":[...],"withhold_refresh_token","access_token_ttl","token_type","id_token":{...}}
//	UserKnobs(email)                     GET    /admin/users/{email}/knobs
//	UserInfo(email)                      GET    /admin/users/{email}           grant, scopes, mailbox summary
//	Revoke(email)                        POST   /admin/users/{email}/revoke    as if the user removed the app in their Google account
//	ExpireHistory(email)                 POST   /admin/users/{email}/expire-history   older startHistoryId answers 404
//	AddMessages(email, n)                POST   /admin/users/{email}/messages  {"count":n} -> {"ids":[...]}
//	DeleteMessages(email, ids...)        POST   /admin/users/{email}/messages/delete  {"ids":[...]}
//	ModifyLabels(email, id, add, remove) POST   /admin/users/{email}/messages/{id}/modify  {"add_label_ids":[...],"remove_label_ids":[...]}
//	SetMailboxSize(email, n)             PUT    /admin/users/{email}/mailbox-size  {"size":n} (before first use)
//	SetDefaultMailboxSize(n)             PUT    /admin/mailbox-size            {"size":n}
//	SetGmailFaults(GmailFaults)          PUT    /admin/gmail-faults            {"latency","fail_next","rate_limit_next"}
//	SetQuotaLimits(QuotaLimits)          PUT    /admin/quota                   {"user_per_minute","project_per_minute","window"}
//	QuotaLimits()                        GET    /admin/quota
//	SetTokenFaults(TokenFaults)          PUT    /admin/token-faults            {"latency","fail_next"}
//	SetRevokeFaults(RevokeFaults)        PUT    /admin/revoke-faults           {"status","body"}
//	SetJWKSFaults(JWKSFaults)            PUT    /admin/jwks-faults             {"latency"}
//	SetPushFaults(PushFaults)            PUT    /admin/push-faults             {"delay","drop_next","drop_all"}
//	Watch(email)                         GET    /admin/users/{email}           ("watch": topic and expiration, or null)
//	MintIDToken(aud, email, ttl)         POST   /admin/id-token                {"audience","email","ttl"} -> {"id_token"}
//	Stats()                              GET    /admin/stats
//	ResetStats()                         POST   /admin/stats/reset
//	SubFor(email)                        GET    /admin/users/{email}           ("sub")
//
// Example: curl -X PUT localhost:8080/sandbox/admin/users/demo@example.com/knobs -d '{"drop_scopes":["gmail.readonly"]}'
//
// Tokens and codes are opaque random strings in the shapes of Google's own
// (CodePrefix, AccessTokenPrefix, RefreshTokenPrefix), so the production log
// scrubber, which knows only Google's formats, catches them too; they are
// never logged or echoed in error descriptions.
package sandbox

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// Config configures a Sandbox.
type Config struct {
	// BaseURL is the public URL of the handler's root, e.g.
	// "http://127.0.0.1:8080/sandbox". It is also the OIDC issuer, exactly.
	BaseURL string
	// ClientID and ClientSecret identify the one registered OAuth client.
	ClientID     string
	ClientSecret string
	// RedirectURIs are the client's registered redirect URIs (exact match).
	RedirectURIs []string
	// Now is the clock (codes, token expiry, mailbox dates, quota); nil = time.Now.
	Now func() time.Time
	// Logger receives one line per notable event; nil = discard. Tokens and
	// codes are never logged.
	Logger *slog.Logger
	// MailboxSize is the number of seeded messages of every new mailbox
	// (0 = 260).
	MailboxSize int
	// SigningKey is the ID token signing key; nil = a fresh RSA-2048 key.
	// Tests that create many sandboxes may share one key to save time.
	SigningKey *rsa.PrivateKey
	// QuotaLimits are the Gmail limits enforced; zero fields are Gmail's
	// (6,000 units per user-minute, 1,200,000 per project-minute).
	QuotaLimits QuotaLimits
	// Notify publishes the notifications of watched mailboxes (users.watch)
	// to their topic; nil = notifications go nowhere.
	Notify Notifier
}

// DefaultMailboxSize is the number of seeded messages when none is configured.
const DefaultMailboxSize = 260

// Sandbox is a stand-in for Google's OAuth, OIDC and Gmail endpoints. It is
// an http.Handler and safe for concurrent use.
type Sandbox struct {
	cfg    Config
	issuer string
	base   string // issuer without a trailing slash, for joining paths
	now    func() time.Time
	log    *slog.Logger
	key    *rsa.PrivateKey
	kid    string
	mux    *http.ServeMux

	mu          sync.Mutex // guards everything below; never held while sleeping
	users       map[string]*user
	subs        map[string]string // sub -> email
	codes       map[string]*authCode
	access      map[string]*accessToken
	refresh     map[string]*refreshToken
	issued      int // access tokens issued since the last sweep of expired ones
	defaultSize int
	gmailFaults GmailFaults
	tokenFaults TokenFaults
	quotaLimits QuotaLimits
	// projectQuota is the project's per-minute allowance (quota.go).
	projectQuota allowance
	revokeFaults RevokeFaults
	jwksFaults   JWKSFaults
	forgeKey     *rsa.PrivateKey // signs forged ID tokens (IDTokenFaults.Forge); made on first use

	statsMu sync.Mutex
	stats   Stats

	push pushState // push.go
}

// New returns a Sandbox for cfg. It generates the ID token signing key
// unless cfg.SigningKey is set.
func New(cfg Config) (*Sandbox, error) {
	if cfg.BaseURL == "" {
		return nil, errors.New("sandbox: Config.BaseURL is required")
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("sandbox: Config.BaseURL %q is not an absolute http(s) URL", cfg.BaseURL)
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("sandbox: Config.ClientID and Config.ClientSecret are required")
	}
	for _, ru := range cfg.RedirectURIs {
		if p, err := url.Parse(ru); err != nil || p.Scheme == "" || p.Host == "" || p.Fragment != "" {
			return nil, fmt.Errorf("sandbox: redirect URI %q is not an absolute URL without fragment", ru)
		}
	}
	if cfg.MailboxSize < 0 {
		return nil, errors.New("sandbox: Config.MailboxSize must not be negative")
	}
	s := &Sandbox{
		cfg:     cfg,
		issuer:  cfg.BaseURL,
		base:    strings.TrimSuffix(cfg.BaseURL, "/"),
		now:     cfg.Now,
		log:     cfg.Logger,
		key:     cfg.SigningKey,
		users:   map[string]*user{},
		subs:    map[string]string{},
		codes:   map[string]*authCode{},
		access:  map[string]*accessToken{},
		refresh: map[string]*refreshToken{},
	}
	s.cfg.RedirectURIs = append([]string(nil), cfg.RedirectURIs...)
	s.quotaLimits = cfg.QuotaLimits.withDefaults()
	s.defaultSize = cfg.MailboxSize
	if s.defaultSize == 0 {
		s.defaultSize = DefaultMailboxSize
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.key == nil {
		if s.key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return nil, fmt.Errorf("sandbox: generating signing key: %w", err)
		}
	}
	der, err := x509.MarshalPKIXPublicKey(&s.key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("sandbox: signing key: %w", err)
	}
	sum := sha256.Sum256(der)
	s.kid = hex.EncodeToString(sum[:20])
	s.stats = newStats()
	s.routes()
	return s, nil
}

// StartServer starts an httptest server (on 127.0.0.1) serving a new Sandbox
// at its root. When cfg.BaseURL is empty it becomes the server's URL. The
// caller closes the server.
func StartServer(cfg Config) (*Sandbox, *httptest.Server, error) {
	srv := httptest.NewUnstartedServer(nil)
	if cfg.BaseURL == "" {
		cfg.BaseURL = "http://" + srv.Listener.Addr().String()
	}
	sb, err := New(cfg)
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	srv.Config.Handler = sb
	srv.Start()
	return sb, srv, nil
}

func (s *Sandbox) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /o/oauth2/v2/auth", s.handleAuth)
	m.HandleFunc("POST /o/oauth2/v2/auth", s.handleAuth)
	m.HandleFunc("POST /token", s.handleToken)
	m.HandleFunc("GET /revoke", s.handleRevoke)
	m.HandleFunc("POST /revoke", s.handleRevoke)
	m.HandleFunc("GET /.well-known/openid-configuration", s.handleDiscovery)
	m.HandleFunc("GET /oauth2/v3/certs", s.handleJWKS)
	m.HandleFunc("GET /oauth2/v3/userinfo", s.handleUserinfo)
	m.HandleFunc("POST /oauth2/v3/userinfo", s.handleUserinfo)

	gm := func(pattern string, h func(http.ResponseWriter, *http.Request, *gmailReq)) {
		m.Handle(pattern, s.countBytes(s.gmail(h)))
	}
	gm("GET /gmail/v1/users/{userId}/messages", s.gmailListMessages)
	gm("GET /gmail/v1/users/{userId}/messages/{id}", s.gmailGetMessage)
	gm("GET /gmail/v1/users/{userId}/history", s.gmailListHistory)
	gm("GET /gmail/v1/users/{userId}/profile", s.gmailProfile)
	gm("GET /gmail/v1/users/{userId}/labels", s.gmailListLabels)
	gm("GET /gmail/v1/users/{userId}/labels/{id}", s.gmailGetLabel)
	gm("POST /gmail/v1/users/{userId}/watch", s.gmailWatch)
	gm("POST /gmail/v1/users/{userId}/stop", s.gmailStop)
	m.HandleFunc("/gmail/", s.gmailNotFound)
	m.Handle("POST /batch/gmail/v1", s.countBytes(http.HandlerFunc(s.gmailBatch)))

	s.adminRoutes(m)
	m.HandleFunc("GET /{$}", s.handleIndex)
	s.mux = m
}

// prefix is the path the sandbox is mounted under ("/sandbox" for
// http://localhost:8080/sandbox), "" at a server's root.
func (s *Sandbox) prefix() string {
	u, _ := url.Parse(s.base)
	return strings.TrimSuffix(u.Path, "/")
}

// handleIndex lists what the sandbox serves, as full URLs to paste.
func (s *Sandbox) handleIndex(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	b := s.base
	fmt.Fprintf(w, `Google sandbox: a stand-in for Google's OAuth 2.0, OpenID Connect and Gmail endpoints.
Consent is automatic for any login_hint; every user gets the same seeded mailbox.

Google's endpoints (what the functions call):
  GET  %[1]s/o/oauth2/v2/auth                  authorization (consent screen)
  POST %[1]s/token                             token endpoint
  POST %[1]s/revoke                            revocation
  GET  %[1]s/.well-known/openid-configuration  OIDC discovery (issuer %[1]s)
  GET  %[1]s/oauth2/v3/certs                   JWKS
  GET  %[1]s/oauth2/v3/userinfo                userinfo (Bearer access token)
  GET  %[1]s/gmail/v1/users/me/messages        Gmail users.messages.list (and .../messages/{id}, history, profile, labels)

`, b)
	_, _ = io.WriteString(w, adminHelp(s.prefix(), b))
}

// ServeHTTP serves the sandbox. Paths are relative to the handler's root; a
// runner mounting it under a prefix uses http.StripPrefix.
func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// Issuer returns the OIDC issuer (Config.BaseURL).
func (s *Sandbox) Issuer() string { return s.issuer }

// AuthURL returns the authorization endpoint.
func (s *Sandbox) AuthURL() string { return s.base + "/o/oauth2/v2/auth" }

// TokenURL returns the token endpoint.
func (s *Sandbox) TokenURL() string { return s.base + "/token" }

// RevokeURL returns the revocation endpoint.
func (s *Sandbox) RevokeURL() string { return s.base + "/revoke" }

// JWKSURL returns the JWKS endpoint.
func (s *Sandbox) JWKSURL() string { return s.base + "/oauth2/v3/certs" }

// GmailURL returns the Gmail API base URL, with a trailing slash, as
// option.WithEndpoint wants it.
func (s *Sandbox) GmailURL() string { return s.base + "/" }

// Endpoint returns the oauth2.Endpoint of the sandbox.
func (s *Sandbox) Endpoint() oauth2.Endpoint {
	return oauth2.Endpoint{AuthURL: s.AuthURL(), TokenURL: s.TokenURL()}
}

// ClientSecretJSON returns the OAuth client in the shape of the
// credentials.json Google Cloud Console downloads for a web client.
func (s *Sandbox) ClientSecretJSON() []byte {
	b, _ := json.MarshalIndent(map[string]any{"web": map[string]any{
		"client_id":                   s.cfg.ClientID,
		"project_id":                  "sandbox",
		"auth_uri":                    s.AuthURL(),
		"token_uri":                   s.TokenURL(),
		"auth_provider_x509_cert_url": s.base + "/oauth2/v1/certs",
		"client_secret":               s.cfg.ClientSecret,
		"redirect_uris":               s.cfg.RedirectURIs,
	}}, "", "  ")
	return b
}

// SubFor returns the stable "sub" (21 decimal digits) of email.
func SubFor(email string) string {
	sum := sha256.Sum256([]byte(normEmail(email)))
	n := binary.BigEndian.Uint64(sum[:8]) % 10_000_000_000_000_000_000
	return fmt.Sprintf("1%d%019d", sum[8]%10, n)
}

// SubFor returns the stable "sub" of email (the same as the package-level SubFor).
func (s *Sandbox) SubFor(email string) string { return SubFor(email) }

func normEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

// randToken returns prefix + 32 random bytes in base64url.
// Prefixes of the sandbox's codes and tokens: Google's (4/0…, ya29.…,
// 1//0…) followed by "sbx".
const (
	CodePrefix         = "4/0sbx"
	AccessTokenPrefix  = "ya29.sbx"
	RefreshTokenPrefix = "1//0sbx"
)

func randToken(prefix string) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // readable "Name <addr>" headers for curl users
	if err := enc.Encode(v); err != nil {
		http.Error(w, "sandbox: encoding response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
