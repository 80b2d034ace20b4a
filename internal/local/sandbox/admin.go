package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Knobs change how the sandbox treats one user.
type Knobs struct {
	// DenyConsent makes the user click "Cancel": the authorization endpoint
	// redirects with error=access_denied.
	DenyConsent bool
	// DropScopes are unticked on the consent screen: they are left out of
	// the grant. Entries are full scope URLs or short names
	// ("gmail.readonly", "email").
	DropScopes []string
	// WithholdRefreshToken makes code exchanges answer without a refresh token.
	WithholdRefreshToken bool
	// AccessTokenTTL is the lifetime of new access tokens (0 = 3599s).
	AccessTokenTTL time.Duration
	// TokenType, when set, replaces the token_type of the user's token
	// responses ("Bearer"), e.g. "mac": a token a client must not use as a
	// bearer token (RFC 6749 section 7.1).
	TokenType string
	// IDToken makes the user's ID tokens ones a relying party must refuse.
	IDToken IDTokenFaults
}

// IDTokenFaults spoil the ID tokens of a user's token responses, as the
// OpenID Foundation's relying-party tests do (OpenID Connect Core 3.1.3.7).
// The zero value changes nothing.
type IDTokenFaults struct {
	// OmitClaims are left out of the ID token ("sub", "iat", "azp", ...).
	OmitClaims []string
	// ExtraAudience, when set, makes aud an array: the client id and this.
	ExtraAudience string
	// AZP, when set, replaces the azp claim (the client id).
	AZP string
	// Forge signs the ID token with a key the JWKS does not hold, under the
	// JWKS key's id.
	Forge bool
	// EmailUnverified sets email_verified to false.
	EmailUnverified bool
}

// GmailFaults are injected into every Gmail call.
type GmailFaults struct {
	// Latency is added before each call is answered (once for a batch).
	Latency time.Duration
	// FailNext makes the next N calls answer 503 backendError.
	FailNext int
	// RateLimitNext makes the next N calls answer 429 userRateLimitExceeded
	// with Retry-After: 1, whatever the quota (see QuotaLimits for the
	// limits themselves).
	RateLimitNext int
}

// TokenFaults are injected into the token endpoint.
type TokenFaults struct {
	Latency  time.Duration
	FailNext int // the next N calls answer 503 temporarily_unavailable
}

// RevokeFaults are injected into the revocation endpoint.
type RevokeFaults struct {
	// Status, when set, answers every revocation with it and Body, revoking
	// nothing.
	Status int
	Body   string
}

// JWKSFaults are injected into the JWKS endpoint.
type JWKSFaults struct {
	// Latency is added before the key set is answered.
	Latency time.Duration
}

// Stats counts what the sandbox answered since the start or the last ResetStats.
type Stats struct {
	AuthorizeCalls int            `json:"authorize_calls"`
	TokenCalls     map[string]int `json:"token_calls"`    // by grant_type ("authorization_code", "refresh_token", "other")
	TokenFailures  int            `json:"token_failures"` // injected 503s
	RefreshCalls   map[string]int `json:"refresh_calls"`  // successful refresh_token grants by email
	RevokeCalls    int            `json:"revoke_calls"`
	JWKSCalls      int            `json:"jwks_calls"`     // key set fetches
	GmailCalls     map[string]int `json:"gmail_calls"`    // by method (gmail.Classify's names: messages.list, messages.get, history.list, getProfile, labels.list, labels.get, batch)
	GmailFailures  int            `json:"gmail_failures"` // injected 503s
	// RateLimited counts the rate-limit answers: 429 userRateLimitExceeded
	// (the user's limit, or RateLimitNext) and 403 rateLimitExceeded (the
	// project's, also counted in RateLimitedProject).
	RateLimited        int `json:"rate_limited"`
	RateLimitedProject int `json:"rate_limited_project"`
	// QuotaUnits are the units spent by calls that passed the quota check,
	// in all, by user and by method.
	QuotaUnits         int64            `json:"quota_units"`
	QuotaUnitsByUser   map[string]int64 `json:"quota_units_by_user"`
	QuotaUnitsByMethod map[string]int64 `json:"quota_units_by_method"`
	// GmailBytes is the size of the Gmail answers' bodies, batches
	// included (not their parts again).
	GmailBytes int64 `json:"gmail_bytes"`
	// Notifications of watched mailboxes: published, dropped on purpose
	// (PushFaults), or not accepted by Config.Notify.
	Notifications        int `json:"notifications"`
	NotificationsDropped int `json:"notifications_dropped"`
	NotificationFailures int `json:"notification_failures"`
}

func newStats() Stats {
	return Stats{TokenCalls: map[string]int{}, RefreshCalls: map[string]int{}, GmailCalls: map[string]int{},
		QuotaUnitsByUser: map[string]int64{}, QuotaUnitsByMethod: map[string]int64{}}
}

func (s *Sandbox) bumpStat(fn func(*Stats)) {
	s.statsMu.Lock()
	fn(&s.stats)
	s.statsMu.Unlock()
}

// Stats returns a copy of the counters.
func (s *Sandbox) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	st := s.stats
	st.TokenCalls = maps.Clone(st.TokenCalls)
	st.RefreshCalls = maps.Clone(st.RefreshCalls)
	st.GmailCalls = maps.Clone(st.GmailCalls)
	st.QuotaUnitsByUser = maps.Clone(st.QuotaUnitsByUser)
	st.QuotaUnitsByMethod = maps.Clone(st.QuotaUnitsByMethod)
	return st
}

// ResetStats zeroes the counters.
func (s *Sandbox) ResetStats() {
	s.statsMu.Lock()
	s.stats = newStats()
	s.statsMu.Unlock()
}

// SetUserKnobs sets the knobs of email for later requests.
func (s *Sandbox) SetUserKnobs(email string, k Knobs) {
	k.DropScopes = slices.Clone(k.DropScopes)
	k.IDToken.OmitClaims = slices.Clone(k.IDToken.OmitClaims)
	s.mu.Lock()
	s.userLocked(email).knobs = k
	s.mu.Unlock()
}

// UserKnobs returns the knobs of email.
func (s *Sandbox) UserKnobs(email string) Knobs {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.userLocked(email).knobs
	k.DropScopes = slices.Clone(k.DropScopes)
	k.IDToken.OmitClaims = slices.Clone(k.IDToken.OmitClaims)
	return k
}

// Revoke revokes the user's grant as if they removed the app in their Google
// account: every token dies, and the next consent returns a refresh token.
// It reports whether a grant was active.
func (s *Sandbox) Revoke(email string) bool {
	s.mu.Lock()
	was := s.revokeGrantLocked(s.userLocked(email))
	s.mu.Unlock()
	s.log.Info("sandbox: grant revoked", "email", normEmail(email))
	return was
}

func (s *Sandbox) mailboxFor(email string) *mailbox {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ensureMailboxLocked(s.userLocked(email), s.now())
}

// ExpireHistory makes history.list answer 404 for any startHistoryId older
// than the mailbox's current historyId.
func (s *Sandbox) ExpireHistory(email string) {
	mb := s.mailboxFor(email)
	mb.mu.Lock()
	mb.floor = mb.historyID
	mb.mu.Unlock()
}

// AddMessages delivers n new messages (INBOX, UNREAD), newest last in the
// returned ids, each recorded in history as messageAdded.
func (s *Sandbox) AddMessages(email string, n int) []string {
	if n <= 0 {
		return nil
	}
	mb := s.mailboxFor(email)
	now := s.now()
	mb.mu.Lock()
	ids := mb.addMessages(n, now)
	mb.mu.Unlock()
	s.mailboxChanged(email)
	return ids
}

// DeleteMessages permanently deletes messages, each recorded in history as
// messageDeleted. An unknown id deletes nothing and returns an error.
func (s *Sandbox) DeleteMessages(email string, ids ...string) error {
	mb := s.mailboxFor(email)
	mb.mu.Lock()
	err := mb.deleteMessages(ids)
	mb.mu.Unlock()
	if err == nil {
		s.mailboxChanged(email)
	}
	return err
}

// ModifyLabels adds and removes label ids on a message, recorded in history
// as labelAdded / labelRemoved.
func (s *Sandbox) ModifyLabels(email, id string, add, remove []string) error {
	mb := s.mailboxFor(email)
	mb.mu.Lock()
	err := mb.modifyLabels(id, add, remove)
	mb.mu.Unlock()
	if err == nil {
		s.mailboxChanged(email)
	}
	return err
}

// SetMailboxSize sets the number of seeded messages of email's mailbox. It
// must be called before the mailbox is first used.
func (s *Sandbox) SetMailboxSize(email string, n int) error {
	if n < 0 {
		return errors.New("sandbox: mailbox size must not be negative")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.userLocked(email)
	if u.mb != nil {
		return fmt.Errorf("sandbox: the mailbox of %s is already in use", u.email)
	}
	u.mailboxSize = n
	if n == 0 {
		u.mailboxSize = -1 // explicitly empty
	}
	return nil
}

// SetDefaultMailboxSize sets the seeded size of mailboxes created from now on.
func (s *Sandbox) SetDefaultMailboxSize(n int) {
	s.mu.Lock()
	s.defaultSize = max(n, 0)
	s.mu.Unlock()
}

// HistoryID returns the current historyId of email's mailbox.
func (s *Sandbox) HistoryID(email string) uint64 {
	mb := s.mailboxFor(email)
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return mb.historyID
}

// SetGmailFaults replaces the Gmail fault settings.
func (s *Sandbox) SetGmailFaults(f GmailFaults) {
	s.mu.Lock()
	s.gmailFaults = f
	s.mu.Unlock()
}

// SetTokenFaults replaces the token endpoint fault settings.
func (s *Sandbox) SetTokenFaults(f TokenFaults) {
	s.mu.Lock()
	s.tokenFaults = f
	s.mu.Unlock()
}

// SetRevokeFaults replaces the revocation endpoint's fault settings.
func (s *Sandbox) SetRevokeFaults(f RevokeFaults) {
	s.mu.Lock()
	s.revokeFaults = f
	s.mu.Unlock()
}

// SetJWKSFaults replaces the JWKS endpoint's fault settings.
func (s *Sandbox) SetJWKSFaults(f JWKSFaults) {
	s.mu.Lock()
	s.jwksFaults = f
	s.mu.Unlock()
}

// UserInfo is a snapshot of one user, for demos and tests.
type UserInfo struct {
	Email         string   `json:"email"`
	Sub           string   `json:"sub"`
	GrantActive   bool     `json:"grant_active"`
	OfflineAccess bool     `json:"offline_access"`
	Scopes        []string `json:"scopes"`
	HistoryID     uint64   `json:"history_id,string"`
	MailboxSize   int      `json:"mailbox_size"` // seeded size
	Added         int      `json:"added_messages"`
	Deleted       int      `json:"deleted_messages"`
	// Watch is the mailbox's watch (users.watch), or null.
	Watch *WatchInfo `json:"watch"`
	Knobs Knobs      `json:"-"`
}

// UserInfo returns a snapshot of email's grant and mailbox.
func (s *Sandbox) UserInfo(email string) UserInfo {
	mb := s.mailboxFor(email)
	s.mu.Lock()
	u := s.userLocked(email)
	info := UserInfo{Email: u.email, Sub: u.sub, GrantActive: u.grant.active, OfflineAccess: u.grant.offline, Knobs: u.knobs}
	for sc := range u.grant.scopes {
		info.Scopes = append(info.Scopes, sc)
	}
	s.mu.Unlock()
	info.Scopes = sortScopes(info.Scopes)
	mb.mu.Lock()
	info.HistoryID, info.MailboxSize, info.Added, info.Deleted = mb.historyID, mb.size, len(mb.added), len(mb.deleted)
	mb.mu.Unlock()
	info.Watch = s.Watch(email)
	return info
}

// ---- HTTP admin API ----

// duration reads "250ms"-style strings or integer milliseconds.
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		v, err := time.ParseDuration(str)
		if err != nil {
			return err
		}
		*d = duration(v)
		return nil
	}
	var ms float64
	if err := json.Unmarshal(b, &ms); err != nil {
		return errors.New("duration must be a string like \"250ms\" or a number of milliseconds")
	}
	*d = duration(time.Duration(ms * float64(time.Millisecond)))
	return nil
}

func (d duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

type knobsJSON struct {
	DenyConsent          bool              `json:"deny_consent"`
	DropScopes           []string          `json:"drop_scopes"`
	WithholdRefreshToken bool              `json:"withhold_refresh_token"`
	AccessTokenTTL       duration          `json:"access_token_ttl"`
	TokenType            string            `json:"token_type,omitempty"`
	IDToken              idTokenFaultsJSON `json:"id_token"`
}

type idTokenFaultsJSON struct {
	OmitClaims      []string `json:"omit_claims,omitempty"`
	ExtraAudience   string   `json:"extra_audience,omitempty"`
	AZP             string   `json:"azp,omitempty"`
	Forge           bool     `json:"forge,omitempty"`
	EmailUnverified bool     `json:"email_unverified,omitempty"`
}

func (k knobsJSON) knobs() Knobs {
	return Knobs{DenyConsent: k.DenyConsent, DropScopes: k.DropScopes, WithholdRefreshToken: k.WithholdRefreshToken,
		AccessTokenTTL: time.Duration(k.AccessTokenTTL), TokenType: k.TokenType,
		IDToken: IDTokenFaults{OmitClaims: k.IDToken.OmitClaims, ExtraAudience: k.IDToken.ExtraAudience,
			AZP: k.IDToken.AZP, Forge: k.IDToken.Forge, EmailUnverified: k.IDToken.EmailUnverified}}
}

func knobsToJSON(k Knobs) knobsJSON {
	return knobsJSON{DenyConsent: k.DenyConsent, DropScopes: k.DropScopes, WithholdRefreshToken: k.WithholdRefreshToken,
		AccessTokenTTL: duration(k.AccessTokenTTL), TokenType: k.TokenType,
		IDToken: idTokenFaultsJSON{OmitClaims: k.IDToken.OmitClaims, ExtraAudience: k.IDToken.ExtraAudience,
			AZP: k.IDToken.AZP, Forge: k.IDToken.Forge, EmailUnverified: k.IDToken.EmailUnverified}}
}

type gmailFaultsJSON struct {
	Latency       duration `json:"latency"`
	FailNext      int      `json:"fail_next"`
	RateLimitNext int      `json:"rate_limit_next"`
}

type quotaJSON struct {
	UserPerMinute    float64  `json:"user_per_minute"`
	ProjectPerMinute float64  `json:"project_per_minute"`
	Window           duration `json:"window"`
}

type tokenFaultsJSON struct {
	Latency  duration `json:"latency"`
	FailNext int      `json:"fail_next"`
}

func adminError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// decode reads an optional JSON body into v.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		adminError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}

// adminHelp lists the admin API with every path as the caller must type it
// (p is the sandbox's mount path, such as "/sandbox", base its URL).
func adminHelp(p, base string) string {
	return strings.NewReplacer("PREFIX", p, "BASE", base).Replace(`Google sandbox admin API (JSON). {email} is the user's address.
GET      PREFIX/admin/users/{email}                        grant and mailbox snapshot (sub, scopes, history_id, watch)
GET|PUT  PREFIX/admin/users/{email}/knobs                  {"deny_consent","drop_scopes":[..],"withhold_refresh_token","access_token_ttl":"30s",
                                                           "token_type":"mac","id_token":{"omit_claims":["sub"],"extra_audience","azp","forge","email_unverified"}}
POST     PREFIX/admin/users/{email}/revoke                 revoke the grant (user removed the app)
POST     PREFIX/admin/users/{email}/expire-history         older startHistoryId -> 404
POST     PREFIX/admin/users/{email}/messages               {"count":n} -> {"ids":[..]}
POST     PREFIX/admin/users/{email}/messages/delete        {"ids":[..]}
POST     PREFIX/admin/users/{email}/messages/{id}/modify   {"add_label_ids":[..],"remove_label_ids":[..]}
PUT      PREFIX/admin/users/{email}/mailbox-size           {"size":n} (before first use)
PUT      PREFIX/admin/mailbox-size                         {"size":n} default for new mailboxes
GET|PUT  PREFIX/admin/gmail-faults                         {"latency":"100ms","fail_next":2,"rate_limit_next":1}
GET|PUT  PREFIX/admin/quota                                {"user_per_minute":6000,"project_per_minute":1200000,"window":"1m"} (0: Gmail's; -1: unlimited)
GET|PUT  PREFIX/admin/token-faults                         {"latency":"100ms","fail_next":1}
PUT      PREFIX/admin/revoke-faults                        {"status":400,"body":"..."} every revocation answers this; {} ends it
PUT      PREFIX/admin/jwks-faults                          {"latency":"2s"}
GET|PUT  PREFIX/admin/push-faults                          {"delay":"2s","drop_next":1,"drop_all":false} notifications of watched mailboxes
POST     PREFIX/admin/id-token                             {"audience","email","ttl"} -> {"id_token"}
GET      PREFIX/admin/stats                                counters (quota units by user and by method); POST PREFIX/admin/stats/reset zeroes them

Example: curl -X PUT -d '{"drop_scopes":["gmail.readonly"]}' BASE/admin/users/alice@example.com/knobs
`)
}

func (s *Sandbox) adminRoutes(m *http.ServeMux) {
	both := func(path string, h http.HandlerFunc) {
		m.HandleFunc("PUT "+path, h)
		m.HandleFunc("POST "+path, h)
	}
	m.HandleFunc("GET /admin", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, adminHelp(s.prefix(), s.base))
	})
	m.HandleFunc("GET /admin/users/{email}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.UserInfo(r.PathValue("email")))
	})
	m.HandleFunc("GET /admin/users/{email}/knobs", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, knobsToJSON(s.UserKnobs(r.PathValue("email"))))
	})
	both("/admin/users/{email}/knobs", func(w http.ResponseWriter, r *http.Request) {
		var k knobsJSON
		if !decode(w, r, &k) {
			return
		}
		s.SetUserKnobs(r.PathValue("email"), k.knobs())
		writeJSON(w, http.StatusOK, k)
	})
	m.HandleFunc("POST /admin/users/{email}/revoke", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"was_active": s.Revoke(r.PathValue("email"))})
	})
	m.HandleFunc("POST /admin/users/{email}/expire-history", func(w http.ResponseWriter, r *http.Request) {
		email := r.PathValue("email")
		s.ExpireHistory(email)
		writeJSON(w, http.StatusOK, map[string]string{"history_id": strconv.FormatUint(s.HistoryID(email), 10)})
	})
	m.HandleFunc("POST /admin/users/{email}/messages", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Count int `json:"count"`
		}
		if !decode(w, r, &body) {
			return
		}
		if body.Count <= 0 || body.Count > 100000 {
			adminError(w, http.StatusBadRequest, "count must be between 1 and 100000")
			return
		}
		writeJSON(w, http.StatusOK, map[string][]string{"ids": s.AddMessages(r.PathValue("email"), body.Count)})
	})
	m.HandleFunc("POST /admin/users/{email}/messages/delete", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			IDs []string `json:"ids"`
		}
		if !decode(w, r, &body) {
			return
		}
		if err := s.DeleteMessages(r.PathValue("email"), body.IDs...); err != nil {
			adminError(w, http.StatusNotFound, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]int{"deleted": len(body.IDs)})
	})
	m.HandleFunc("POST /admin/users/{email}/messages/{id}/modify", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Add    []string `json:"add_label_ids"`
			Remove []string `json:"remove_label_ids"`
		}
		if !decode(w, r, &body) {
			return
		}
		if err := s.ModifyLabels(r.PathValue("email"), r.PathValue("id"), body.Add, body.Remove); err != nil {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id")})
	})
	both("/admin/users/{email}/mailbox-size", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Size int `json:"size"`
		}
		if !decode(w, r, &body) {
			return
		}
		if err := s.SetMailboxSize(r.PathValue("email"), body.Size); err != nil {
			adminError(w, http.StatusConflict, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, body)
	})
	both("/admin/mailbox-size", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Size int `json:"size"`
		}
		if !decode(w, r, &body) {
			return
		}
		s.SetDefaultMailboxSize(body.Size)
		writeJSON(w, http.StatusOK, body)
	})
	m.HandleFunc("GET /admin/gmail-faults", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		f := s.gmailFaults
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, gmailFaultsJSON{duration(f.Latency), f.FailNext, f.RateLimitNext})
	})
	both("/admin/gmail-faults", func(w http.ResponseWriter, r *http.Request) {
		var f gmailFaultsJSON
		if !decode(w, r, &f) {
			return
		}
		s.SetGmailFaults(GmailFaults{Latency: time.Duration(f.Latency), FailNext: f.FailNext, RateLimitNext: f.RateLimitNext})
		writeJSON(w, http.StatusOK, f)
	})
	m.HandleFunc("GET /admin/quota", func(w http.ResponseWriter, r *http.Request) {
		l := s.QuotaLimits()
		writeJSON(w, http.StatusOK, quotaJSON{l.UserPerMinute, l.ProjectPerMinute, duration(l.Window)})
	})
	both("/admin/quota", func(w http.ResponseWriter, r *http.Request) {
		var q quotaJSON
		if !decode(w, r, &q) {
			return
		}
		if q.Window < 0 {
			adminError(w, http.StatusBadRequest, "window must not be negative")
			return
		}
		s.SetQuotaLimits(QuotaLimits{UserPerMinute: q.UserPerMinute, ProjectPerMinute: q.ProjectPerMinute, Window: time.Duration(q.Window)})
		l := s.QuotaLimits()
		writeJSON(w, http.StatusOK, quotaJSON{l.UserPerMinute, l.ProjectPerMinute, duration(l.Window)})
	})
	m.HandleFunc("GET /admin/token-faults", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		f := s.tokenFaults
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, tokenFaultsJSON{duration(f.Latency), f.FailNext})
	})
	both("/admin/token-faults", func(w http.ResponseWriter, r *http.Request) {
		var f tokenFaultsJSON
		if !decode(w, r, &f) {
			return
		}
		s.SetTokenFaults(TokenFaults{time.Duration(f.Latency), f.FailNext})
		writeJSON(w, http.StatusOK, f)
	})
	both("/admin/revoke-faults", func(w http.ResponseWriter, r *http.Request) {
		var f struct {
			Status int    `json:"status"`
			Body   string `json:"body"`
		}
		if !decode(w, r, &f) {
			return
		}
		s.SetRevokeFaults(RevokeFaults{Status: f.Status, Body: f.Body})
		writeJSON(w, http.StatusOK, f)
	})
	both("/admin/jwks-faults", func(w http.ResponseWriter, r *http.Request) {
		var f struct {
			Latency duration `json:"latency"`
		}
		if !decode(w, r, &f) {
			return
		}
		s.SetJWKSFaults(JWKSFaults{Latency: time.Duration(f.Latency)})
		writeJSON(w, http.StatusOK, f)
	})
	m.HandleFunc("POST /admin/id-token", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Audience string   `json:"audience"`
			Email    string   `json:"email"`
			TTL      duration `json:"ttl"`
		}
		if !decode(w, r, &body) {
			return
		}
		tok, err := s.MintIDToken(body.Audience, body.Email, time.Duration(body.TTL))
		if err != nil {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"id_token": tok})
	})
	s.pushAdminRoutes(m)
	m.HandleFunc("GET /admin/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	m.HandleFunc("POST /admin/stats/reset", func(w http.ResponseWriter, r *http.Request) {
		s.ResetStats()
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("/admin/", func(w http.ResponseWriter, r *http.Request) {
		adminError(w, http.StatusNotFound, "no such admin endpoint: "+s.prefix()+strings.TrimSpace(r.URL.Path)+"; GET "+s.base+"/admin lists them")
	})
}
