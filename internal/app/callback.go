package app

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"example.com/gmailoauth/internal/httpx"
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

// redirectWithFragment sends the browser to returnTo with values in the URL
// fragment, which browsers never send to servers or put in Referer headers.
func redirectWithFragment(w http.ResponseWriter, returnTo string, f url.Values) {
	w.Header().Set("Location", returnTo+"#"+f.Encode())
	w.WriteHeader(http.StatusFound)
}
