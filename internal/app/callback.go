package app

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"example.com/gmailoauth/internal/httpx"
	"example.com/gmailoauth/internal/logging"
	"example.com/gmailoauth/internal/oauthflow"
)

func callback(ctx context.Context, d *Deps, w http.ResponseWriter, r *http.Request) error {
	if err := needsClientSecret(d); err != nil {
		return err
	}
	q := r.URL.Query()
	if err := once(q, "state", "code", "error", "iss"); err != nil {
		return err
	}
	res, err := d.Flow.Callback(ctx, oauthflow.CallbackRequest{State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error"), Issuer: q.Get("iss")})
	if err != nil {
		if res == nil || res.ReturnTo == "" {
			return err
		}
		// Back to the frontend, which shows the error; details in the
		// fragment. The failure is logged as a JSON answer's would be.
		e := httpx.NoteError(r, d.Log, err)
		f := url.Values{"error": {string(e.Code)}, "error_description": {e.Message}}
		if res.ClientState != "" {
			f.Set("state", res.ClientState)
		}
		if e.AuthorizationURL != "" {
			f.Set("authorization_url", e.AuthorizationURL)
		}
		redirectWithFragment(w, res.ReturnTo, f)
		return nil
	}
	handOn(ctx, d, res.UserID)
	if res.ReturnTo == "" {
		httpx.WriteJSON(w, http.StatusOK, res)
		return nil
	}
	f := url.Values{"session": {res.Session}, "session_expires_at": {res.SessionExpiresAt.UTC().Format(time.RFC3339)}}
	if res.ClientState != "" {
		f.Set("state", res.ClientState)
	}
	redirectWithFragment(w, res.ReturnTo, f)
	return nil
}

// handOn hands a new grant to the push path: GmailPush watches the mailbox
// and runs its first sync within seconds, on an instance of its own, while
// the browser goes on at once (a sync here would keep the user waiting, and
// a function's CPU is throttled once it has answered, so it cannot be left
// running in the background either). Publishing the task takes a few
// milliseconds; when it fails, the grant stands and the next sweep finds
// the mailbox unwatched and hands it on.
func handOn(ctx context.Context, d *Deps, userID string) {
	if d.Push == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := d.Push.Connected(ctx, userID); err != nil {
		d.Log.WarnContext(ctx, "handing the new grant to the push path failed; the next sweep picks it up",
			slog.String("user_id", userID), slog.String("error", logging.Scrub(err.Error())))
	}
}

// redirectWithFragment sends the browser to returnTo with values in the URL
// fragment, which browsers never send to servers or put in Referer headers.
func redirectWithFragment(w http.ResponseWriter, returnTo string, f url.Values) {
	w.Header().Set("Location", returnTo+"#"+f.Encode())
	w.WriteHeader(http.StatusFound)
}
