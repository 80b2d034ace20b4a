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
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"example.com/gmailoauth/internal/apperr"
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
// 500 internal, with no detail sent. The failure is logged once, scrubbed, at
// the code's severity (see NoteError): on the request line under
// LogRequests, else on a line of its own.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e := NoteError(r, log, err)
	status, retryAfter := Status(e.Code)
	if e.RetryAfter != 0 {
		retryAfter = max(0, e.RetryAfter)
	}
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((retryAfter+time.Second-1)/time.Second)))
	}
	WriteJSON(w, status, ErrorBody{Error: ErrorDetail{Code: string(e.Code), Message: e.Message, AuthorizationURL: e.AuthorizationURL}})
}

func isDeadline(err error) bool { return errors.Is(err, context.DeadlineExceeded) }

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

// DecodeJSON decodes a JSON request body into v, a pointer to a struct:
// Content-Type must be application/json (415 otherwise), the body is capped
// (413), unknown fields and trailing data are refused (400). An empty body
// decodes as {}. A refusal says what is wrong: the unknown field and the
// fields there are, the field with the wrong type, or where the JSON breaks.
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
		return apperr.New(apperr.InvalidJSON, describeJSONError(err, v))
	}
	if _, err := dec.Token(); err != io.EOF {
		return apperr.New(apperr.InvalidJSON, "request body has data after the JSON object")
	}
	return nil
}

// maxShownField caps a field name DecodeJSON repeats from a request.
const maxShownField = 64

// describeJSONError says in plain words why a body did not decode into v.
func describeJSONError(err error, v any) string {
	fields := jsonFields(v)
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("request body is not valid JSON (at byte %d)", syn.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "request body is not valid JSON (it ends too early)"
	case errors.As(err, &typ) && typ.Field == "":
		return "request body must be a JSON object, got " + typ.Value
	case errors.As(err, &typ):
		return fmt.Sprintf("field %s must be %s, got %s", strconv.Quote(typ.Field), jsonKind(typ.Type), typ.Value)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ = strconv.Unquote(name)
		if len(name) > maxShownField {
			name = name[:maxShownField] + "…"
		}
		msg := "unknown field " + strconv.Quote(name)
		if near := nearestField(name, fields); near != "" {
			msg += " (did you mean " + strconv.Quote(near) + "?)"
		}
		if len(fields) > 0 {
			msg += "; the fields are " + strings.Join(fields, ", ")
		}
		return msg
	}
	return "request body is not the expected JSON object"
}

// jsonFields lists the JSON names of the fields of the struct v points to.
func jsonFields(v any) []string {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}

// nearestField returns the field that name is a different spelling of
// (returnTo, ReturnTo and return-to all mean return_to), or "".
func nearestField(name string, fields []string) string {
	squash := func(s string) string {
		return strings.ToLower(strings.NewReplacer("_", "", "-", "", " ", "").Replace(s))
	}
	for _, f := range fields {
		if squash(f) == squash(name) {
			return f
		}
	}
	return ""
}

// jsonKind names a Go type as the JSON value it decodes from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

// Recover turns a panic in next into a clean 500 internal answer whose log
// (see WriteError) carries the panic's value, scrubbed, but none of the
// request's data.
func Recover(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(p)
				}
				WriteError(w, r, log, apperr.Wrap(apperr.Internal, "internal error", fmt.Errorf("panic in handler: %v", p)))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// maxLoggedOrigin caps a refused Origin header in logs.
const maxLoggedOrigin = 200

// CORS answers preflight requests and sets CORS headers for origins in
// allowed (exact, normalised origins), on every answer, errors included, so
// that an allowed page can read the real error. Other origins get no CORS
// headers, so browsers refuse to hand them the answer. It reports whether
// the request was a preflight: answered (204) when the origin is allowed,
// else left to the caller with the returned origin_not_allowed error, whose
// cause names the refused origin for the logs. Any request from a refused
// origin has it on its request line (refused_origin; see LogRequests).
func CORS(w http.ResponseWriter, r *http.Request, allowed []string, methods string) (preflight bool, err error) {
	origin := r.Header.Get("Origin")
	h := w.Header()
	h.Add("Vary", "Origin")
	ok := origin != "" && slices.Contains(allowed, origin)
	shown := origin
	if len(shown) > maxLoggedOrigin {
		shown = shown[:maxLoggedOrigin] + "…"
	}
	switch {
	case ok:
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Expose-Headers", "Retry-After")
	case origin != "":
		noteRefusedOrigin(r, shown)
	}
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return false, nil
	}
	if !ok {
		return true, apperr.Wrap(apperr.OriginNotAllowed, "origin is not allowed",
			fmt.Errorf("CORS preflight from origin %q, which is not in ALLOWED_RETURN_ORIGINS", shown))
	}
	h.Set("Access-Control-Allow-Methods", methods)
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return true, nil
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
