package app

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"example.com/gmailoauth/internal/config"
	"example.com/gmailoauth/internal/gmailquota"
	"example.com/gmailoauth/internal/httpx"
	"example.com/gmailoauth/internal/keyset"
	"example.com/gmailoauth/internal/logging"
	"example.com/gmailoauth/internal/mailbox"
	"example.com/gmailoauth/internal/oauthflow"
	"example.com/gmailoauth/internal/session"
	"example.com/gmailoauth/internal/store"
)

// handlerFunc is a handler that reports failures as errors.
type handlerFunc func(ctx context.Context, d *Deps, w http.ResponseWriter, r *http.Request) error

// serve adapts fn: recovery, safe headers, trace, limits, lazy dependencies,
// CORS, the request deadline (REQUEST_TIMEOUT; not for a scheduler sweep,
// which watches SYNC_DEADLINE) and the method check come first; errors
// become the contract's JSON.
func (a *App) serve(w http.ResponseWriter, r *http.Request, methods []string, sweep bool, fn handlerFunc) {
	httpx.Recover(a.log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.SecurityHeaders(w.Header())
		ctx := logging.WithRequestTrace(r.Context(), r)
		r = r.WithContext(ctx)
		if err := httpx.CheckQuery(r); err != nil {
			httpx.WriteError(w, r, a.log, err)
			return
		}
		d, err := a.Deps(ctx)
		if err != nil {
			httpx.WriteError(w, r, a.log, err)
			return
		}
		if httpx.CORS(w, r, d.Config.AllowedReturnOrigins, strings.Join(methods, ", ")) {
			return
		}
		if !(sweep && r.Method == http.MethodPost) { // a sweep watches SYNC_DEADLINE itself
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d.Config.RequestTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		if err := httpx.Allow(r, methods...); err != nil {
			w.Header().Set("Allow", strings.Join(append(methods, http.MethodOptions), ", "))
			httpx.WriteError(w, r, a.log, err)
			return
		}
		if err := fn(ctx, d, w, r); err != nil {
			httpx.WriteError(w, r, a.log, err)
		}
	})).ServeHTTP(w, r)
}

// Authorize serves GET|POST|DELETE /authorize.
func (a *App) Authorize(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, []string{http.MethodGet, http.MethodPost, http.MethodDelete}, false, authorize)
}

// OAuthCallback serves GET /callback.
func (a *App) OAuthCallback(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, []string{http.MethodGet}, false, callback)
}

// ListMessages serves GET /list-messages (frontend) and POST /list-messages
// (scheduler).
func (a *App) ListMessages(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, []string{http.MethodGet, http.MethodPost}, true, listMessages)
}

// authorizeBody is the JSON body of POST /authorize.
type authorizeBody struct {
	LoginHint string `json:"login_hint"`
	ReturnTo  string `json:"return_to"`
	State     string `json:"state"`
}

func authorize(ctx context.Context, d *Deps, w http.ResponseWriter, r *http.Request) error {
	if r.Method == http.MethodDelete {
		claims, err := d.verifySession(ctx, r)
		if err != nil {
			return err
		}
		if err := d.Flow.Revoke(ctx, claims.Subject); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	var body authorizeBody
	if r.Method == http.MethodPost {
		if err := httpx.DecodeJSON(w, r, &body); err != nil {
			return err
		}
	} else {
		q := r.URL.Query()
		for _, k := range []string{"login_hint", "return_to", "state"} {
			if len(q[k]) > 1 {
				return httpx.Errorf(http.StatusBadRequest, "invalid_request", "%s may be given once", k)
			}
		}
		body = authorizeBody{LoginHint: q.Get("login_hint"), ReturnTo: q.Get("return_to"), State: q.Get("state")}
	}
	req := oauthflow.BeginRequest{LoginHint: body.LoginHint, ReturnTo: body.ReturnTo, ClientState: body.State}
	if tok := httpx.BearerToken(r); tok != "" {
		// A signed-in user: an active grant lets consent be skipped. An
		// invalid session is ignored here; consent is then forced.
		if c, err := d.Flow.Sessions.Verify(tok); err == nil {
			req.UserID = c.Subject
		}
	}
	res, err := d.Flow.Begin(ctx, req)
	if err != nil {
		return err
	}
	if r.Method == http.MethodPost || httpx.WantsJSON(r) {
		httpx.WriteJSON(w, http.StatusOK, res)
		return nil
	}
	http.Redirect(w, r, res.URL, http.StatusFound)
	return nil
}

func callback(ctx context.Context, d *Deps, w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	for _, k := range []string{"state", "code", "error"} {
		if len(q[k]) > 1 {
			return httpx.Errorf(http.StatusBadRequest, "invalid_request", "%s may be given once", k)
		}
	}
	res, err := d.Flow.Callback(ctx, oauthflow.CallbackRequest{State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error")})
	if err != nil {
		var he *httpx.Error
		if res != nil && res.ReturnTo != "" && errors.As(err, &he) {
			// Back to the frontend, which shows the error; details in the fragment.
			if he.Cause != nil {
				d.Log.WarnContext(ctx, "callback failed", slog.String("code", he.Code), slog.String("cause", logging.Scrub(he.Cause.Error())))
			}
			f := url.Values{"error": {he.Code}, "error_description": {he.Message}}
			if res.ClientState != "" {
				f.Set("state", res.ClientState)
			}
			if he.AuthorizationURL != "" {
				f.Set("authorization_url", he.AuthorizationURL)
			}
			redirectWithFragment(w, r, res.ReturnTo, f)
			return nil
		}
		return err
	}
	if res.ReturnTo == "" {
		httpx.WriteJSON(w, http.StatusOK, res)
		return nil
	}
	f := url.Values{"session": {res.Session}, "session_expires_at": {res.SessionExpiresAt.UTC().Format(time.RFC3339)}}
	if res.ClientState != "" {
		f.Set("state", res.ClientState)
	}
	redirectWithFragment(w, r, res.ReturnTo, f)
	return nil
}

// redirectWithFragment sends the browser to returnTo with values in the URL
// fragment, which browsers never send to servers or put in Referer headers.
func redirectWithFragment(w http.ResponseWriter, r *http.Request, returnTo string, f url.Values) {
	w.Header().Set("Location", returnTo+"#"+f.Encode())
	w.WriteHeader(http.StatusFound)
}

// verifySession checks the bearer session; on an unknown key id it reloads
// the keyset once (keys may have been rotated since this instance read it).
func (d *Deps) verifySession(ctx context.Context, r *http.Request) (*session.Claims, error) {
	tok := httpx.BearerToken(r)
	if tok == "" {
		w := &httpx.Error{Status: http.StatusUnauthorized, Code: "missing_session",
			Message: "send the session from the callback as Authorization: Bearer <session>"}
		return nil, w
	}
	c, err := d.Flow.Sessions.Verify(tok)
	if err != nil && errors.Is(err, keyset.ErrUnknownKey) {
		if rerr := d.ReloadKeys(ctx); rerr == nil {
			c, err = d.Flow.Sessions.Verify(tok)
		}
	}
	if err != nil {
		var ie *session.ErrInvalid
		reason := "invalid"
		if errors.As(err, &ie) {
			reason = ie.Reason
		}
		d.Log.InfoContext(ctx, "session rejected", slog.String("reason", reason))
		return nil, &httpx.Error{Status: http.StatusUnauthorized, Code: "invalid_session",
			Message: "the session is invalid or expired; connect again"}
	}
	return c, nil
}

func listMessages(ctx context.Context, d *Deps, w http.ResponseWriter, r *http.Request) error {
	if r.Method == http.MethodPost {
		return d.schedulerSync(ctx, w, r)
	}
	claims, err := d.verifySession(ctx, r)
	if err != nil {
		return err
	}
	req, err := mailbox.ParseListRequest(r.URL.Query())
	if err != nil {
		return err
	}
	userID := claims.Subject
	returnTo := ""
	if o := r.Header.Get("Origin"); o != "" {
		if n, err := config.NormalizeOrigin(o); err == nil {
			returnTo = n + "/"
		}
	}
	reauth := func(e *oauthflow.ReauthError) error {
		return &httpx.Error{Status: http.StatusUnauthorized, Code: "reauthorization_required",
			Message:          "Gmail access for this user must be granted again: " + e.Reason,
			AuthorizationURL: d.Flow.ReauthURL(ctx, firstNonEmpty(claims.Email, userID), returnTo)}
	}
	for attempt := 0; ; attempt++ {
		at, err := d.Flow.AccessToken(ctx, userID)
		if err != nil {
			var re *oauthflow.ReauthError
			if errors.As(err, &re) {
				return reauth(re)
			}
			return tokenError(err)
		}
		gctx := gmailquota.WithRetry(gmailquota.WithUser(ctx, userID), FrontendRetry)
		svc, err := mailbox.NewService(gctx, d.Config.GmailAPIURL, d.Gmail, at)
		if err != nil {
			return err
		}
		res, err := mailbox.List(gctx, svc, req)
		if err == nil {
			httpx.WriteJSON(w, http.StatusOK, res)
			return nil
		}
		kind, retryAfter := mailbox.Classify(err)
		switch kind {
		case mailbox.KindUnauthorized:
			if attempt == 0 {
				// The token may have been revoked early; refresh once.
				if err := d.Flow.ExpireAccessToken(ctx, userID); err != nil {
					return tokenError(err)
				}
				continue
			}
			if err := d.Flow.MarkRevoked(ctx, userID, "gmail answered 401 to a freshly refreshed token"); err != nil {
				return tokenError(err)
			}
			return reauth(&oauthflow.ReauthError{UserID: userID, Reason: "Gmail no longer accepts this grant"})
		case mailbox.KindForbidden:
			return &httpx.Error{Status: http.StatusForbidden, Code: "insufficient_scope",
				Message:          "the grant does not include Gmail read access",
				AuthorizationURL: d.Flow.ReauthURL(ctx, firstNonEmpty(claims.Email, userID), returnTo)}
		case mailbox.KindRateLimited:
			if retryAfter <= 0 {
				retryAfter = 10 * time.Second
			}
			return &httpx.Error{Status: http.StatusTooManyRequests, Code: "rate_limited",
				Message: "Gmail's quota for this user is exhausted; retry later", RetryAfter: retryAfter}
		case mailbox.KindBadRequest:
			return &httpx.Error{Status: http.StatusBadRequest, Code: "invalid_request",
				Message: "Gmail refused the query or page token"}
		default:
			return &httpx.Error{Status: http.StatusServiceUnavailable, Code: "upstream_unavailable",
				Message: "Gmail did not answer; try again shortly", RetryAfter: 5 * time.Second, Cause: errors.New(kind)}
		}
	}
}

// FrontendRetry is how a frontend request retries Gmail's 429s and 5xx: a
// few quick tries within the request's deadline, since a person is waiting.
var FrontendRetry = gmailquota.Retry{MaxAttempts: 3, BaseDelay: 100 * time.Millisecond, MaxDelay: 2 * time.Second}

// tokenError maps a failure to get an access token to the contract.
func tokenError(err error) error {
	var he *httpx.Error
	if errors.As(err, &he) {
		return he
	}
	if errors.Is(err, store.ErrUnavailable) {
		return &httpx.Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
			Message: "storage is unavailable, try again shortly", RetryAfter: 5 * time.Second, Cause: err}
	}
	if oauthflow.IsTemporary(err) {
		return &httpx.Error{Status: http.StatusServiceUnavailable, Code: "upstream_unavailable",
			Message: "Google or storage did not answer; try again shortly", RetryAfter: 5 * time.Second, Cause: err}
	}
	var ue *oauthflow.UpstreamError
	if errors.As(err, &ue) {
		return &httpx.Error{Status: http.StatusBadGateway, Code: "upstream_error", Message: "Google refused the token refresh", Cause: err}
	}
	return &httpx.Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error", Cause: err}
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
