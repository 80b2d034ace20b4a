// Package httpx holds the HTTP plumbing the three functions share: the
// contract's JSON error shape, safe response headers, request limits, CORS for
// the allow-listed origins, and panic recovery that ends in a clean 500.
package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"example.com/gmailoauth/internal/apperr"
	"example.com/gmailoauth/internal/logging"
)

// MaxBodyBytes caps every request body.
const MaxBodyBytes = 16 << 10

// MaxQueryBytes caps every raw query string.
const MaxQueryBytes = 8 << 10

// ErrorBody is the JSON shape of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inner object of ErrorBody.
type ErrorDetail struct {
	Code             string `json:"code"`
	Message          string `json:"message"`
	AuthorizationURL string `json:"authorization_url,omitempty"`
}

// SecurityHeaders sets the headers every answer carries. Answers may carry a
// code, state, token or session, so none is cached or leaks a Referer.
func SecurityHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

// WriteError answers err in the contract's shape, with the status and
// Retry-After the code maps to (see Status). Errors that carry no code become
// 500 internal, with no detail sent. The cause is logged, scrubbed: at ERROR
// for 5xx answers, at INFO otherwise.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e := apperr.As(err)
	switch {
	case e != nil:
	case errors.Is(err, context.DeadlineExceeded):
		e = apperr.Wrap(apperr.Unavailable, "the request took too long; try again shortly", err)
	default:
		e = apperr.Wrap(apperr.Internal, "internal error", err)
	}
	status, retryAfter := Status(e.Code)
	if e.RetryAfter != 0 {
		retryAfter = max(0, e.RetryAfter)
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	attrs := []any{slog.Int("status", status), slog.String("code", string(e.Code))}
	switch {
	case !sameError(err, e): // the coded error is inside another: log the whole chain
		attrs = append(attrs, slog.String("cause", logging.Scrub(err.Error())))
	case e.Cause != nil:
		attrs = append(attrs, slog.String("cause", logging.Scrub(e.Cause.Error())))
	}
	log.Log(r.Context(), level, "request failed", attrs...)
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((retryAfter+time.Second-1)/time.Second)))
	}
	WriteJSON(w, status, ErrorBody{Error: ErrorDetail{Code: string(e.Code), Message: e.Message, AuthorizationURL: e.AuthorizationURL}})
}

// sameError reports whether err is e itself, not an error that wraps it.
func sameError(err error, e *apperr.Error) bool {
	got, ok := err.(*apperr.Error) //nolint:errorlint // identity, not a match in the chain
	return ok && got == e
}

// Allow answers 405 with an Allow header unless r's method is listed.
func Allow(r *http.Request, methods ...string) error {
	for _, m := range methods {
		if r.Method == m {
			return nil
		}
	}
	return apperr.New(apperr.MethodNotAllowed,
		"method "+strconvQuote(r.Method)+" is not allowed; allowed: "+strings.Join(methods, ", "))
}

func strconvQuote(s string) string {
	if len(s) > 20 {
		s = s[:20]
	}
	return strconv.Quote(s)
}

// CheckQuery refuses oversized query strings and unparsable ones.
func CheckQuery(r *http.Request) error {
	if len(r.URL.RawQuery) > MaxQueryBytes {
		return apperr.Errorf(apperr.QueryTooLong, "query string is longer than %d bytes", MaxQueryBytes)
	}
	if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
		return apperr.New(apperr.InvalidRequest, "query string does not parse")
	}
	return nil
}

// DecodeJSON decodes a JSON request body into v: Content-Type must be
// application/json (415 otherwise), the body is capped (413), unknown fields
// and trailing data are refused (400). An empty body decodes as {}.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return apperr.New(apperr.UnsupportedMediaType, "Content-Type must be application/json")
	}
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	data, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return apperr.Errorf(apperr.RequestTooLarge, "request body is larger than %d bytes", MaxBodyBytes)
		}
		return apperr.New(apperr.InvalidRequest, "request body could not be read")
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		data = []byte("{}")
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apperr.New(apperr.InvalidJSON, "request body is not the expected JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return apperr.New(apperr.InvalidJSON, "request body has data after the JSON object")
	}
	return nil
}

// Recover turns a panic in next into a clean 500 internal answer and an error
// log line (without the request's data).
func Recover(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(p)
				}
				log.ErrorContext(r.Context(), "panic in handler", slog.String("panic", logging.Scrub(fmt.Sprint(p))))
				WriteJSON(w, http.StatusInternalServerError, ErrorBody{Error: ErrorDetail{Code: string(apperr.Internal), Message: "internal error"}})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// CORS answers preflight requests and sets CORS headers for origins in
// allowed (exact, normalised origins). Other origins get no CORS headers, so
// browsers refuse to hand them the answer. It reports whether the request was
// a preflight that has been answered.
func CORS(w http.ResponseWriter, r *http.Request, allowed []string, methods string) bool {
	origin := r.Header.Get("Origin")
	h := w.Header()
	h.Add("Vary", "Origin")
	ok := false
	if origin != "" {
		for _, a := range allowed {
			if origin == a {
				ok = true
				break
			}
		}
	}
	if ok {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Expose-Headers", "Retry-After")
	}
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		if ok {
			h.Set("Access-Control-Allow-Methods", methods)
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
		} else {
			WriteJSON(w, http.StatusForbidden, ErrorBody{Error: ErrorDetail{Code: string(apperr.OriginNotAllowed), Message: "origin is not allowed"}})
		}
		return true
	}
	return false
}

// BearerToken returns the token of an "Authorization: Bearer" header.
func BearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// WantsJSON reports whether the client asked for JSON rather than a redirect.
func WantsJSON(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err == nil && mt == "application/json" {
			return true
		}
	}
	return false
}
