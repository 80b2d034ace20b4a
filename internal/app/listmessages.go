package app

import (
	"context"
	"net/http"

	"example.com/gmailoauth/internal/apperr"
	"example.com/gmailoauth/internal/httpx"
	"example.com/gmailoauth/internal/mailbox"
	"example.com/gmailoauth/internal/oauthflow"
	"example.com/gmailoauth/internal/weburl"
)

// listMessages serves GET /list-messages: one page of the signed-in user's
// messages, from the mirror or from Gmail (mailbox.Reader decides).
func listMessages(ctx context.Context, d *Deps, w http.ResponseWriter, r *http.Request) error {
	if err := needsClientSecret(d); err != nil {
		return err
	}
	claims, err := verifySession(ctx, d, r)
	if err != nil {
		return err
	}
	req, err := mailbox.ParseListRequest(r.URL.Query())
	if err != nil {
		return err
	}
	// Only the session's grant may be used (oauthflow.WithSessionGrant), for
	// Gmail and for the mirror alike.
	ctx = oauthflow.WithSessionGrant(ctx, claims.Grant)
	res, err := d.Mailbox.List(ctx, claims.Subject, req)
	if err != nil {
		return withReauthURL(ctx, d, r, firstNonEmpty(claims.Email, claims.Subject), err)
	}
	httpx.WriteJSON(w, http.StatusOK, res)
	return nil
}

// withReauthURL adds a consent URL to errors whose fix is consent:
// reauthorization_required and insufficient_scope. The browser returns to
// the first allowed return URL on the calling page's origin, if any.
func withReauthURL(ctx context.Context, d *Deps, r *http.Request, loginHint string, err error) error {
	e := apperr.As(err)
	if e == nil || e.Code != apperr.ReauthorizationRequired && e.Code != apperr.InsufficientScope {
		return err
	}
	returnTo := ""
	if o := r.Header.Get("Origin"); o != "" {
		if n, err := weburl.NormalizeOrigin(o); err == nil {
			returnTo = d.Flow.ReturnURLFor(n)
		}
	}
	out := *e
	out.AuthorizationURL = d.Flow.ReauthURL(ctx, loginHint, returnTo)
	return &out
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
