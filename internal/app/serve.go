package app

import (
	"context"
	"net/http"
	"strings"

	"example.com/gmailoauth/internal/httpx"
	"example.com/gmailoauth/internal/logging"
)

// handlerFunc is a handler that reports failures as errors; serve answers
// them in the contract's shape.
type handlerFunc func(ctx context.Context, d *Deps, w http.ResponseWriter, r *http.Request) error

// serve runs fn for one request: one request line is logged when it ends
// (httpx.LogRequests), panics become a clean 500, every answer carries the
// safe headers, the trace is attached to the logs, CORS is answered for the
// allow-listed origins (on error answers too, so a frontend can show them),
// oversized or malformed queries are refused, the instance's dependencies
// are ready and the method is checked; fn's error becomes the contract's
// JSON.
func (a *App) serve(w http.ResponseWriter, r *http.Request, methods []string, fn handlerFunc) {
	r = r.WithContext(logging.WithRequestTrace(r.Context(), r))
	httpx.LogRequests(a.log, httpx.Recover(a.log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.SecurityHeaders(w.Header())
		ctx := r.Context()
		d, derr := a.Deps(ctx)
		origins := a.fallbackOrigins
		if derr == nil {
			origins = d.Config.AllowedReturnOrigins
		}
		if preflight, err := httpx.CORS(w, r, origins, strings.Join(methods, ", ")); preflight {
			if err != nil {
				httpx.WriteError(w, r, a.log, err)
			}
			return
		}
		if err := httpx.CheckQuery(r); err != nil {
			httpx.WriteError(w, r, a.log, err)
			return
		}
		if derr != nil {
			httpx.WriteError(w, r, a.log, derr)
			return
		}
		if err := httpx.Allow(r, methods...); err != nil {
			w.Header().Set("Allow", strings.Join(append(methods, http.MethodOptions), ", "))
			httpx.WriteError(w, r, a.log, err)
			return
		}
		if err := fn(ctx, d, w, r); err != nil {
			httpx.WriteError(w, r, a.log, err)
		}
	}))).ServeHTTP(w, r)
}

// timed bounds fn by the request deadline (REQUEST_TIMEOUT), store calls
// included: a person is waiting.
func timed(fn handlerFunc) handlerFunc {
	return func(ctx context.Context, d *Deps, w http.ResponseWriter, r *http.Request) error {
		ctx, cancel := context.WithTimeout(ctx, d.Config.RequestTimeout)
		defer cancel()
		return fn(ctx, d, w, r.WithContext(ctx))
	}
}

// Authorize serves GET|POST|DELETE /authorize.
func (a *App) Authorize(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, []string{http.MethodGet, http.MethodPost, http.MethodDelete}, timed(authorize))
}

// OAuthCallback serves GET /callback.
func (a *App) OAuthCallback(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, []string{http.MethodGet}, timed(callback))
}

// ListMessages serves GET /list-messages (the frontend, under the request
// deadline) and POST /list-messages (the scheduler's sweep, which watches
// SYNC_DEADLINE itself).
func (a *App) ListMessages(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, []string{http.MethodGet, http.MethodPost}, func(ctx context.Context, d *Deps, w http.ResponseWriter, r *http.Request) error {
		if r.Method == http.MethodPost {
			return schedulerSync(ctx, d, w, r)
		}
		return timed(listMessages)(ctx, d, w, r)
	})
}

// Authorize is the Authorize function's handler on the default App.
func Authorize(w http.ResponseWriter, r *http.Request) { Default().Authorize(w, r) }

// OAuthCallback is the OAuthCallback function's handler on the default App.
func OAuthCallback(w http.ResponseWriter, r *http.Request) { Default().OAuthCallback(w, r) }

// ListMessages is the ListMessages function's handler on the default App.
func ListMessages(w http.ResponseWriter, r *http.Request) { Default().ListMessages(w, r) }
