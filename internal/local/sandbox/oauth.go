package sandbox

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Scopes the sandbox knows by name.
const (
	ScopeOpenID        = "openid"
	ScopeEmail         = "email"
	ScopeProfile       = "profile"
	ScopeUserinfoEmail = "https://www.googleapis.com/auth/userinfo.email"
	ScopeUserinfoProf  = "https://www.googleapis.com/auth/userinfo.profile"
	ScopeGmailReadonly = "https://www.googleapis.com/auth/gmail.readonly"
	ScopeGmailModify   = "https://www.googleapis.com/auth/gmail.modify"
	ScopeGmailMetadata = "https://www.googleapis.com/auth/gmail.metadata"
	ScopeMailGoogle    = "https://mail.google.com/"
)

const (
	codeTTL           = 10 * time.Minute
	defaultAccessTTL  = 3599 * time.Second
	idTokenTTL        = time.Hour
	defaultLoginEmail = "demo@example.com"
)

// user is everything the sandbox knows about one Google account.
type user struct {
	email string
	sub   string
	knobs Knobs
	grant grant
	// mailboxSize is the seeded size chosen for this user (0 = default).
	mailboxSize int
	mb          *mailbox // created on first use

	// quota is the user's per-minute Gmail allowance (quota.go).
	quota allowance
}

// grant is the user's authorization of the client, as Google's account
// settings ("Third-party apps with account access") show it.
type grant struct {
	active  bool
	offline bool // a refresh token was granted (access_type=offline)
	scopes  map[string]bool
	gen     int // bumped on revocation: tokens of older generations are dead
}

type authCode struct {
	email       string
	clientID    string
	redirectURI string
	challenge   string
	method      string
	nonce       string
	scopes      []string
	refresh     bool
	gen         int
	expires     time.Time
	failures    int
}

type accessToken struct {
	email   string
	scopes  []string
	gen     int
	expires time.Time
}

type refreshToken struct {
	email    string
	clientID string
	scopes   []string
	gen      int
}

// userLocked returns the user of email, creating it. s.mu must be held.
func (s *Sandbox) userLocked(email string) *user {
	email = normEmail(email)
	u := s.users[email]
	if u == nil {
		u = &user{email: email, sub: SubFor(email)}
		s.users[email] = u
		s.subs[u.sub] = email
	}
	return u
}

func (s *Sandbox) revokeGrantLocked(u *user) bool {
	was := u.grant.active
	u.grant = grant{gen: u.grant.gen + 1}
	for k, t := range s.access {
		if t.email == u.email {
			delete(s.access, k)
		}
	}
	for k, t := range s.refresh {
		if t.email == u.email {
			delete(s.refresh, k)
		}
	}
	s.stopWatch(u.email) // a revoked grant's mailbox is no longer watched
	return was
}

// sweepLocked drops expired codes and access tokens now and then.
func (s *Sandbox) sweepLocked(now time.Time) {
	s.issued++
	if s.issued < 4096 {
		return
	}
	s.issued = 0
	for k, c := range s.codes {
		if now.After(c.expires) {
			delete(s.codes, k)
		}
	}
	for k, t := range s.access {
		if now.After(t.expires) {
			delete(s.access, k)
		}
	}
}

// lookupAccessLocked returns the user and token of a live access token.
func (s *Sandbox) lookupAccessLocked(tok string, now time.Time) (*user, *accessToken) {
	t := s.access[tok]
	if t == nil || !now.Before(t.expires) {
		return nil, nil
	}
	u := s.users[t.email]
	if u == nil || !u.grant.active || u.grant.gen != t.gen {
		return nil, nil
	}
	return u, t
}

// ---- scopes ----

// expandScopes parses a scope parameter the way Google does: "email" and
// "profile" also grant their userinfo URL scopes.
func expandScopes(raw string) (out []string, bad string) {
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, sc := range strings.Fields(raw) {
		switch {
		case sc == ScopeOpenID:
			add(sc)
		case sc == ScopeEmail || sc == ScopeUserinfoEmail:
			add(ScopeEmail)
			add(ScopeUserinfoEmail)
		case sc == ScopeProfile || sc == ScopeUserinfoProf:
			add(ScopeProfile)
			add(ScopeUserinfoProf)
		case strings.HasPrefix(sc, "https://www.googleapis.com/auth/") && len(sc) > len("https://www.googleapis.com/auth/"),
			sc == ScopeMailGoogle:
			add(sc)
		default:
			return nil, sc
		}
	}
	return out, ""
}

// normDropScope turns a knob entry ("gmail.readonly", "email", a full URL)
// into the scopes it removes.
func normDropScope(sc string) []string {
	switch sc {
	case ScopeEmail, ScopeUserinfoEmail, "userinfo.email":
		return []string{ScopeEmail, ScopeUserinfoEmail}
	case ScopeProfile, ScopeUserinfoProf, "userinfo.profile":
		return []string{ScopeProfile, ScopeUserinfoProf}
	case ScopeOpenID, ScopeMailGoogle:
		return []string{sc}
	}
	if !strings.Contains(sc, "/") {
		return []string{"https://www.googleapis.com/auth/" + sc}
	}
	return []string{sc}
}

// sortScopes orders scopes like Google's responses: short names first, then URLs.
func sortScopes(sc []string) []string {
	out := slices.Clone(sc)
	sort.Slice(out, func(i, j int) bool {
		ui, uj := strings.Contains(out[i], "/"), strings.Contains(out[j], "/")
		if ui != uj {
			return !ui
		}
		return out[i] < out[j]
	})
	return out
}

func hasScope(scopes []string, want ...string) bool {
	for _, s := range scopes {
		if slices.Contains(want, s) {
			return true
		}
	}
	return false
}

// ---- authorization endpoint ----

func authErrorPage(w http.ResponseWriter, status int, code, detail string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<!doctype html>
<html><head><title>Error %d (OAuth 2.0 sandbox)</title></head>
<body>
<h1>Access blocked: This app's request is invalid</h1>
<p>Error %d: %s</p>
<p>%s</p>
<p><small>Google OAuth sandbox</small></p>
</body></html>
`, status, status, html.EscapeString(code), html.EscapeString(detail))
}

func redirectWith(w http.ResponseWriter, r *http.Request, redirectURI string, params url.Values) {
	u, _ := url.Parse(redirectURI) // validated at registration
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func validVerifierChars(s string) bool {
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}

func (s *Sandbox) resolveLoginHint(hint string) string {
	hint = strings.TrimSpace(hint)
	if hint == "" {
		return defaultLoginEmail
	}
	if strings.Contains(hint, "@") {
		return normEmail(hint)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.subs[hint]; ok {
		return e
	}
	return defaultLoginEmail
}

func (s *Sandbox) handleAuth(w http.ResponseWriter, r *http.Request) {
	s.bumpStat(func(st *Stats) { st.AuthorizeCalls++ })
	if err := r.ParseForm(); err != nil {
		authErrorPage(w, http.StatusBadRequest, "invalid_request", "Malformed request.")
		return
	}
	q := r.Form
	if id := q.Get("client_id"); id == "" || id != s.cfg.ClientID {
		authErrorPage(w, http.StatusUnauthorized, "invalid_client", "The OAuth client was not found.")
		return
	}
	redirectURI := q.Get("redirect_uri")
	if redirectURI == "" || !slices.Contains(s.cfg.RedirectURIs, redirectURI) {
		authErrorPage(w, http.StatusBadRequest, "redirect_uri_mismatch",
			"You can't sign in to this app because it doesn't comply with Google's OAuth 2.0 policy. "+
				"The redirect_uri is not registered for this client: "+redirectURI)
		return
	}
	bad := func(detail string) { authErrorPage(w, http.StatusBadRequest, "invalid_request", detail) }
	switch rt := q.Get("response_type"); rt {
	case "code":
	case "":
		bad("Required parameter is missing: response_type")
		return
	default:
		bad("Invalid response_type: only \"code\" is supported by the sandbox.")
		return
	}
	if strings.TrimSpace(q.Get("scope")) == "" {
		bad("Missing required parameter: scope")
		return
	}
	scopes, badScope := expandScopes(q.Get("scope"))
	if badScope != "" {
		authErrorPage(w, http.StatusBadRequest, "invalid_scope", "Some requested scopes were invalid: "+badScope)
		return
	}
	state := q.Get("state")
	if state == "" {
		bad("Missing required parameter: state")
		return
	}
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	if challenge == "" && method != "" {
		bad("Missing required parameter: code_challenge")
		return
	}
	if challenge != "" {
		if method == "" {
			method = "plain" // RFC 7636 4.3 default, as Google
		}
		if method != "S256" && method != "plain" {
			bad("Invalid code_challenge_method: use S256 or plain.")
			return
		}
		if len(challenge) < 43 || len(challenge) > 128 || !validVerifierChars(challenge) {
			bad("Invalid code_challenge.")
			return
		}
	}
	prompts := strings.Fields(q.Get("prompt"))
	promptConsent, promptNone := slices.Contains(prompts, "consent"), slices.Contains(prompts, "none")
	if promptNone && len(prompts) > 1 {
		bad("Invalid prompt: none cannot be combined with other values.")
		return
	}
	offline := q.Get("access_type") == "offline"
	includeGranted := q.Get("include_granted_scopes") == "true"
	email := s.resolveLoginHint(q.Get("login_hint"))
	now := s.now()

	s.mu.Lock()
	u := s.userLocked(email)
	knobs := u.knobs
	if knobs.DenyConsent {
		s.mu.Unlock()
		s.log.Info("sandbox: consent denied", "email", email)
		redirectWith(w, r, redirectURI, url.Values{"error": {"access_denied"}, "state": {state}})
		return
	}
	drop := map[string]bool{}
	for _, d := range knobs.DropScopes {
		for _, sc := range normDropScope(d) {
			drop[sc] = true
		}
	}
	var requested []string
	for _, sc := range scopes {
		if !drop[sc] {
			requested = append(requested, sc)
		}
	}
	g := &u.grant
	covered := g.active
	for _, sc := range requested {
		covered = covered && g.scopes[sc]
	}
	if promptNone && !covered {
		s.mu.Unlock()
		redirectWith(w, r, redirectURI, url.Values{"error": {"consent_required"}, "state": {state}})
		return
	}
	consentShown := promptConsent || !covered
	withRefresh := offline && !knobs.WithholdRefreshToken && (promptConsent || !(g.active && g.offline))
	if !g.active {
		g.active = true
		g.scopes = map[string]bool{}
	}
	for _, sc := range requested {
		g.scopes[sc] = true
	}
	if offline {
		g.offline = true
	}
	tokenScopes := requested
	if includeGranted {
		tokenScopes = tokenScopes[:0:0]
		for sc := range g.scopes {
			tokenScopes = append(tokenScopes, sc)
		}
	}
	tokenScopes = sortScopes(tokenScopes)
	code := randToken(CodePrefix)
	s.codes[code] = &authCode{
		email: email, clientID: s.cfg.ClientID, redirectURI: redirectURI,
		challenge: challenge, method: method, nonce: q.Get("nonce"),
		scopes: tokenScopes, refresh: withRefresh, gen: g.gen, expires: now.Add(codeTTL),
	}
	s.sweepLocked(now)
	s.mu.Unlock()

	prompt := "none"
	if consentShown {
		prompt = "consent"
	}
	s.log.Info("sandbox: consent granted", "email", email, "scopes", strings.Join(tokenScopes, " "),
		"refresh_token", withRefresh, "consent_screen", consentShown)
	redirectWith(w, r, redirectURI, url.Values{
		"code":     {code},
		"state":    {state},
		"scope":    {strings.Join(tokenScopes, " ")},
		"authuser": {"0"},
		"prompt":   {prompt},
	})
}

// ---- token endpoint ----

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
	TokenType    string `json:"token_type"`
	IDToken      string `json:"id_token,omitempty"`
}

func tokenError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// sleep waits d or until the request is cancelled.
func sleep(r *http.Request, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

func (s *Sandbox) handleToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	faults := s.tokenFaults
	fail := s.tokenFaults.FailNext > 0
	if fail {
		s.tokenFaults.FailNext--
	}
	s.mu.Unlock()
	sleep(r, faults.Latency)

	_ = r.ParseForm()
	grantType := r.PostForm.Get("grant_type")
	statKey := grantType
	switch statKey {
	case "authorization_code", "refresh_token":
	default:
		statKey = "other"
	}
	s.bumpStat(func(st *Stats) { st.TokenCalls[statKey]++ })
	if fail {
		s.bumpStat(func(st *Stats) { st.TokenFailures++ })
		tokenError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "The service is currently unavailable.")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		tokenError(w, http.StatusBadRequest, "invalid_request", "Content-Type must be application/x-www-form-urlencoded.")
		return
	}

	// Client authentication: HTTP Basic (RFC 6749 2.3.1, form-encoded) or client_secret_post.
	clientID, secret, basic := r.BasicAuth()
	if basic {
		if v, err := url.QueryUnescape(clientID); err == nil {
			clientID = v
		}
		if v, err := url.QueryUnescape(secret); err == nil {
			secret = v
		}
	} else {
		clientID, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	switch {
	case clientID == "":
		tokenError(w, http.StatusBadRequest, "invalid_request", "Could not determine client ID from request.")
		return
	case clientID != s.cfg.ClientID:
		tokenError(w, http.StatusUnauthorized, "invalid_client", "The OAuth client was not found.")
		return
	case secret == "":
		tokenError(w, http.StatusBadRequest, "invalid_request", "client_secret is missing.")
		return
	case subtle.ConstantTimeCompare([]byte(secret), []byte(s.cfg.ClientSecret)) != 1:
		tokenError(w, http.StatusUnauthorized, "invalid_client", "Unauthorized")
		return
	}

	switch grantType {
	case "authorization_code":
		s.exchangeCode(w, r, clientID)
	case "refresh_token":
		s.refreshGrant(w, r, clientID)
	default:
		gt := grantType
		if len(gt) > 64 {
			gt = gt[:64]
		}
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+gt)
	}
}

func (s *Sandbox) exchangeCode(w http.ResponseWriter, r *http.Request, clientID string) {
	code := r.PostForm.Get("code")
	if code == "" {
		tokenError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: code")
		return
	}
	now := s.now()
	s.mu.Lock()
	c := s.codes[code]
	if c == nil || !now.Before(c.expires) || c.clientID != clientID {
		delete(s.codes, code)
		s.mu.Unlock()
		tokenError(w, http.StatusBadRequest, "invalid_grant", "Bad Request")
		return
	}
	// A code is spent by a successful exchange. A request that fails on
	// redirect_uri or PKCE leaves it for a few more tries (golang.org/x/oauth2
	// retries with the other client authentication style after any error),
	// so the caller sees the real reason rather than "Bad Request".
	fail := func(status int, errCode, desc string) {
		c.failures++
		if c.failures >= 3 {
			delete(s.codes, code)
		}
		s.mu.Unlock()
		tokenError(w, status, errCode, desc)
	}
	ru := r.PostForm.Get("redirect_uri")
	if ru == "" {
		s.mu.Unlock()
		tokenError(w, http.StatusBadRequest, "invalid_request", "Missing parameter: redirect_uri")
		return
	}
	if ru != c.redirectURI {
		fail(http.StatusBadRequest, "redirect_uri_mismatch", "Bad Request")
		return
	}
	if c.challenge != "" {
		v := r.PostForm.Get("code_verifier")
		if v == "" {
			fail(http.StatusBadRequest, "invalid_grant", "Missing code verifier.")
			return
		}
		if !pkceMatches(c.method, c.challenge, v) {
			fail(http.StatusBadRequest, "invalid_grant", "Invalid code verifier.")
			return
		}
	}
	delete(s.codes, code) // single use
	u := s.users[c.email]
	if u == nil || !u.grant.active || u.grant.gen != c.gen {
		s.mu.Unlock()
		tokenError(w, http.StatusBadRequest, "invalid_grant", "Bad Request")
		return
	}
	resp, idClaims := s.issueLocked(u, clientID, c.scopes, c.refresh, now)
	knobs := u.knobs
	s.mu.Unlock()
	s.finishTokenResponse(w, resp, idClaims, c.nonce, now, knobs)
	s.log.Info("sandbox: code exchanged", "email", c.email, "refresh_token", c.refresh)
}

func pkceMatches(method, challenge, verifier string) bool {
	if len(verifier) < 43 || len(verifier) > 128 || !validVerifierChars(verifier) {
		return false
	}
	var want string
	switch method {
	case "S256":
		sum := sha256.Sum256([]byte(verifier))
		want = base64.RawURLEncoding.EncodeToString(sum[:])
	default:
		want = verifier
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) == 1
}

func (s *Sandbox) refreshGrant(w http.ResponseWriter, r *http.Request, clientID string) {
	rt := r.PostForm.Get("refresh_token")
	if rt == "" {
		tokenError(w, http.StatusBadRequest, "invalid_request", "Missing required parameter: refresh_token")
		return
	}
	now := s.now()
	s.mu.Lock()
	t := s.refresh[rt]
	var u *user
	if t != nil {
		u = s.users[t.email]
	}
	if t == nil || u == nil || !u.grant.active || u.grant.gen != t.gen || t.clientID != clientID {
		s.mu.Unlock()
		tokenError(w, http.StatusBadRequest, "invalid_grant", "Token has been expired or revoked.")
		return
	}
	scopes := t.scopes
	if want := r.PostForm.Get("scope"); want != "" {
		ws, badScope := expandScopes(want)
		for _, sc := range ws {
			if !slices.Contains(t.scopes, sc) {
				badScope = sc
			}
		}
		if badScope != "" {
			s.mu.Unlock()
			tokenError(w, http.StatusBadRequest, "invalid_scope", "Some requested scopes were invalid.")
			return
		}
		scopes = sortScopes(ws)
	}
	resp, idClaims := s.issueLocked(u, clientID, scopes, false, now)
	email, knobs := u.email, u.knobs
	s.mu.Unlock()
	s.bumpStat(func(st *Stats) { st.RefreshCalls[email]++ })
	s.finishTokenResponse(w, resp, idClaims, "", now, knobs)
}

// issueLocked mints an access token (and a refresh token when asked) and
// returns the response plus the ID token claims to sign (nil without openid).
func (s *Sandbox) issueLocked(u *user, clientID string, scopes []string, withRefresh bool, now time.Time) (*tokenResponse, map[string]any) {
	ttl := u.knobs.AccessTokenTTL
	if ttl <= 0 {
		ttl = defaultAccessTTL
	}
	at := randToken(AccessTokenPrefix)
	s.access[at] = &accessToken{email: u.email, scopes: scopes, gen: u.grant.gen, expires: now.Add(ttl)}
	s.sweepLocked(now)
	resp := &tokenResponse{
		AccessToken: at,
		ExpiresIn:   max(1, int64(math.Ceil(ttl.Seconds()))),
		Scope:       strings.Join(scopes, " "),
		TokenType:   "Bearer",
	}
	if withRefresh {
		resp.RefreshToken = randToken(RefreshTokenPrefix)
		s.refresh[resp.RefreshToken] = &refreshToken{email: u.email, clientID: clientID, scopes: scopes, gen: u.grant.gen}
	}
	s.ensureMailboxLocked(u, now)
	if !slices.Contains(scopes, ScopeOpenID) {
		return resp, nil
	}
	sum := sha256.Sum256([]byte(at))
	claims := map[string]any{
		"iss":     s.issuer,
		"azp":     clientID,
		"aud":     clientID,
		"sub":     u.sub,
		"at_hash": base64.RawURLEncoding.EncodeToString(sum[:16]),
	}
	if hasScope(scopes, ScopeEmail, ScopeUserinfoEmail) {
		claims["email"] = u.email
		claims["email_verified"] = true
	}
	return resp, claims
}

func (s *Sandbox) finishTokenResponse(w http.ResponseWriter, resp *tokenResponse, claims map[string]any, nonce string, now time.Time, k Knobs) {
	if k.TokenType != "" {
		resp.TokenType = k.TokenType
	}
	if claims != nil {
		if nonce != "" {
			claims["nonce"] = nonce
		}
		f := k.IDToken
		if f.ExtraAudience != "" {
			claims["aud"] = []string{claims["aud"].(string), f.ExtraAudience}
		}
		if f.AZP != "" {
			claims["azp"] = f.AZP
		}
		if f.EmailUnverified && claims["email"] != nil {
			claims["email_verified"] = false
		}
		key, err := s.signingKeyFor(f.Forge)
		if err != nil {
			tokenError(w, http.StatusInternalServerError, "internal_failure", "Signing the ID token failed.")
			return
		}
		idt, err := s.sign(key, claims, now, idTokenTTL, f.OmitClaims)
		if err != nil {
			tokenError(w, http.StatusInternalServerError, "internal_failure", "Signing the ID token failed.")
			return
		}
		resp.IDToken = idt
	}
	w.Header().Set("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

func (s *Sandbox) signIDToken(claims map[string]any, now time.Time, ttl time.Duration) (string, error) {
	return s.sign(s.key, claims, now, ttl, nil)
}

// signingKeyFor returns the JWKS key, or for a forged token another key
// (made once) that the JWKS does not hold.
func (s *Sandbox) signingKeyFor(forge bool) (*rsa.PrivateKey, error) {
	if !forge {
		return s.key, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.forgeKey == nil {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		s.forgeKey = k
	}
	return s.forgeKey, nil
}

// sign signs claims (with iat and exp) under the JWKS key's id, leaving out
// the claims named in omit.
func (s *Sandbox) sign(key *rsa.PrivateKey, claims map[string]any, now time.Time, ttl time.Duration, omit []string) (string, error) {
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: s.kid, Algorithm: string(jose.RS256)}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	claims["iat"] = now.Unix()
	claims["exp"] = now.Add(ttl).Unix()
	for _, c := range omit {
		delete(claims, c)
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

// MintIDToken returns a Google-style OIDC ID token for email with the given
// audience, signed by the sandbox key, as Cloud Scheduler's service-account
// tokens are (iss = BaseURL, aud, azp = sub, email, email_verified, sub).
// ttl 0 means one hour.
func (s *Sandbox) MintIDToken(audience, email string, ttl time.Duration) (string, error) {
	if audience == "" || email == "" {
		return "", fmt.Errorf("sandbox: MintIDToken needs an audience and an email")
	}
	if ttl <= 0 {
		ttl = idTokenTTL
	}
	sub := SubFor(email)
	return s.signIDToken(map[string]any{
		"iss":            s.issuer,
		"aud":            audience,
		"azp":            sub,
		"sub":            sub,
		"email":          normEmail(email),
		"email_verified": true,
	}, s.now(), ttl)
}

// ---- revocation ----

func (s *Sandbox) handleRevoke(w http.ResponseWriter, r *http.Request) {
	s.bumpStat(func(st *Stats) { st.RevokeCalls++ })
	s.mu.Lock()
	faults := s.revokeFaults
	s.mu.Unlock()
	if faults.Status != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(faults.Status)
		_, _ = io.WriteString(w, faults.Body)
		return
	}
	_ = r.ParseForm()
	tok := r.Form.Get("token")
	now := s.now()
	s.mu.Lock()
	var u *user
	if t := s.refresh[tok]; t != nil {
		if cand := s.users[t.email]; cand != nil && cand.grant.active && cand.grant.gen == t.gen {
			u = cand
		}
	} else if cand, _ := s.lookupAccessLocked(tok, now); cand != nil {
		u = cand
	}
	if tok == "" || u == nil {
		s.mu.Unlock()
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_token", "error_description": "Token expired or revoked"})
		return
	}
	s.revokeGrantLocked(u)
	s.mu.Unlock()
	s.log.Info("sandbox: grant revoked by token", "email", u.email)
	writeJSON(w, http.StatusOK, map[string]string{})
}

// ---- discovery, JWKS, userinfo ----

func (s *Sandbox) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=3600")
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                s.issuer,
		"authorization_endpoint":                s.AuthURL(),
		"token_endpoint":                        s.TokenURL(),
		"userinfo_endpoint":                     s.base + "/oauth2/v3/userinfo",
		"revocation_endpoint":                   s.RevokeURL(),
		"jwks_uri":                              s.JWKSURL(),
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "email", "profile"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic"},
		"claims_supported": []string{"aud", "email", "email_verified", "exp", "iat", "iss", "sub",
			"azp", "at_hash", "nonce"},
		"code_challenge_methods_supported": []string{"plain", "S256"},
		"grant_types_supported":            []string{"authorization_code", "refresh_token"},
	})
}

func (s *Sandbox) handleJWKS(w http.ResponseWriter, r *http.Request) {
	s.bumpStat(func(st *Stats) { st.JWKSCalls++ })
	s.mu.Lock()
	faults := s.jwksFaults
	s.mu.Unlock()
	sleep(r, faults.Latency)
	w.Header().Set("Cache-Control", "public, max-age=21600, must-revalidate, no-transform")
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &s.key.PublicKey, KeyID: s.kid, Algorithm: string(jose.RS256), Use: "sig",
	}}})
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func (s *Sandbox) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	u, t := s.lookupAccessLocked(bearer(r), s.now())
	s.mu.Unlock()
	if u == nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_request", "error_description": "Invalid Credentials"})
		return
	}
	if !hasScope(t.scopes, ScopeOpenID, ScopeEmail, ScopeUserinfoEmail, ScopeProfile, ScopeUserinfoProf) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="insufficient_scope"`)
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "insufficient_scope", "error_description": "Insufficient Permission"})
		return
	}
	out := map[string]any{"sub": u.sub}
	if hasScope(t.scopes, ScopeEmail, ScopeUserinfoEmail) {
		out["email"] = u.email
		out["email_verified"] = true
	}
	if hasScope(t.scopes, ScopeProfile, ScopeUserinfoProf) {
		name := displayName(u.email)
		out["name"] = name
		out["given_name"] = strings.Fields(name)[0]
	}
	writeJSON(w, http.StatusOK, out)
}

// displayName turns "jane.doe@x" into "Jane Doe".
func displayName(email string) string {
	local, _, _ := strings.Cut(email, "@")
	parts := strings.FieldsFunc(local, func(r rune) bool { return r == '.' || r == '_' || r == '-' || r == '+' })
	for i, p := range parts {
		parts[i] = strings.ToUpper(p[:1]) + p[1:]
	}
	if len(parts) == 0 {
		return "Sandbox User"
	}
	return strings.Join(parts, " ")
}
