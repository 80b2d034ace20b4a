package app

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"example.com/gmailoauth/internal/apperr"
	"example.com/gmailoauth/internal/httpx"
	"example.com/gmailoauth/internal/logging"
	"example.com/gmailoauth/internal/oauthflow"
	"example.com/gmailoauth/internal/session"
)

// authorizeBody is the JSON body of POST /authorize.
type authorizeBody struct {
	LoginHint string `json:"login_hint"`
	ReturnTo  string `json:"return_to"`
	State     string `json:"state"`
}

func authorize(ctx context.Context, d *Deps, w http.ResponseWriter, r *http.Request) error {
	if r.Method == http.MethodDelete {
		return disconnect(ctx, d, w, r)
	}
	var body authorizeBody
	if r.Method == http.MethodPost {
		if err := httpx.DecodeJSON(w, r, &body); err != nil {
			return err
		}
	} else {
		q := r.URL.Query()
		if err := once(q, "login_hint", "return_to", "state"); err != nil {
			return err
		}
		body = authorizeBody{LoginHint: q.Get("login_hint"), ReturnTo: q.Get("return_to"), State: q.Get("state")}
	}
	req := oauthflow.BeginRequest{LoginHint: body.LoginHint, ReturnTo: body.ReturnTo, ClientState: body.State,
		ClientAddr: httpx.ClientAddr(r, d.Config.ClientAddrFromForwardedFor)}
	if tok := httpx.BearerToken(r); tok != "" {
		// A signed-in user: an active grant lets consent be skipped. An
		// invalid session is ignored here; consent is then forced.
		if c, err := d.Flow.Sessions.Verify(tok); err == nil {
			req.UserID, req.UserEmail, req.Grant = c.Subject, c.Email, c.Grant
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

// disconnectResult is the answer of a disconnect that deleted the grant
// but could not revoke it at Google.
type disconnectResult struct {
	Disconnected    bool   `json:"disconnected"`
	RevokedAtGoogle bool   `json:"revoked_at_google"`
	Message         string `json:"message"`
}

// disconnect serves DELETE /authorize: the signed-in user's grant is revoked
// at Google and deleted (204). When the stored token could not be read, the
// grant is deleted all the same and the answer says that Google was not
// asked to revoke it (200).
func disconnect(ctx context.Context, d *Deps, w http.ResponseWriter, r *http.Request) error {
	claims, err := verifySession(ctx, d, r)
	if err != nil {
		return err
	}
	if d.Push != nil {
		// Stop Gmail's notifications while the grant still works (best
		// effort: leftover notifications are acknowledged, the user being
		// unknown from now on).
		if err := d.Push.StopWatch(ctx, claims.Subject, claims.Grant); err != nil {
			d.Log.WarnContext(ctx, "users.stop failed before a disconnect", slog.String("user_id", claims.Subject),
				slog.String("error", logging.Scrub(err.Error())))
		}
	}
	res, err := d.Flow.Revoke(ctx, claims.Subject, claims.Grant)
	if err != nil {
		return err
	}
	if res.Unrevoked {
		httpx.WriteJSON(w, http.StatusOK, disconnectResult{Disconnected: true,
			Message: "Disconnected: the stored grant and synced mail are deleted, but the grant could not be read, so Google was not asked to revoke it. Remove the app's access in your Google Account (https://myaccount.google.com/permissions)."})
		return nil
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// once refuses a query that repeats any of keys.
func once(q map[string][]string, keys ...string) error {
	for _, k := range keys {
		if len(q[k]) > 1 {
			return apperr.Errorf(apperr.InvalidRequest, "%s may be given once", k)
		}
	}
	return nil
}

// verifySession checks the bearer session; on an unknown key id it asks for
// a keyset reload (keys may have been rotated since this instance read
// them), which the keyset's one policy may refuse.
func verifySession(ctx context.Context, d *Deps, r *http.Request) (*session.Claims, error) {
	tok := httpx.BearerToken(r)
	if tok == "" {
		return nil, apperr.New(apperr.MissingSession, "send the session from the callback as Authorization: Bearer <session>")
	}
	c, err := d.Flow.Sessions.Verify(tok)
	var ie *session.ErrInvalid
	if errors.As(err, &ie) && ie.KeyID != "" {
		if rerr := d.reloadKeysFor(ctx, ie.KeyID); rerr == nil {
			c, err = d.Flow.Sessions.Verify(tok)
		}
	}
	if err != nil {
		reason := "invalid"
		if errors.As(err, &ie) {
			reason = ie.Reason
		}
		d.Log.InfoContext(ctx, "session rejected", slog.String("reason", reason))
		return nil, apperr.New(apperr.InvalidSession, "the session is invalid or expired; connect again")
	}
	return c, nil
}
