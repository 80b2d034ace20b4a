package httpx_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"example.com/gmailoauth/internal/apperr"
	"example.com/gmailoauth/internal/httpx"
	"example.com/gmailoauth/internal/logging"
)

// testLogger returns a logger writing Cloud Logging JSON into the returned
// buffer.
func testLogger(t *testing.T) (*slog.Logger, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	return logging.New(&buf, "", slog.LevelDebug), &buf
}

// decodeError decodes an error answer, failing the test if it is not the
// contract's shape.
func decodeError(t *testing.T, rec *httptest.ResponseRecorder) httpx.ErrorDetail {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type: got %q, want application/json; charset=utf-8", ct)
	}
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	var b httpx.ErrorBody
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("error body is not {\"error\":{...}}: %v", err)
	}
	return b.Error
}

func TestWriteError(t *testing.T) {
	tests := []struct {
		name           string
		err            error
		wantStatus     int
		wantBody       httpx.ErrorDetail
		wantRetryAfter string
	}{
		{"plain", apperr.Errorf(apperr.InvalidRequest, "bad %s", "thing"), 400,
			httpx.ErrorDetail{Code: "invalid_request", Message: "bad thing"}, ""},
		{"with authorization url", &apperr.Error{Code: apperr.ReauthorizationRequired, Message: "m", AuthorizationURL: "https://accounts.example/auth?x=1"}, 401,
			httpx.ErrorDetail{Code: "reauthorization_required", Message: "m", AuthorizationURL: "https://accounts.example/auth?x=1"}, ""},
		{"the table's retry after", apperr.New(apperr.Unavailable, "m"), 503,
			httpx.ErrorDetail{Code: "unavailable", Message: "m"}, "5"},
		{"own retry after rounds up", &apperr.Error{Code: apperr.Unavailable, Message: "m", RetryAfter: 1500 * time.Millisecond}, 503,
			httpx.ErrorDetail{Code: "unavailable", Message: "m"}, "2"},
		{"own retry after whole seconds", &apperr.Error{Code: apperr.RateLimited, Message: "m", RetryAfter: 7 * time.Second}, 429,
			httpx.ErrorDetail{Code: "rate_limited", Message: "m"}, "7"},
		{"wrapped *Error", errors.Join(errors.New("ctx"), apperr.New(apperr.UnknownUser, "nope")), 404,
			httpx.ErrorDetail{Code: "unknown_user", Message: "nope"}, ""},
		{"a provider's own code is 400", apperr.New("temporarily_unavailable", "m"), 400,
			httpx.ErrorDetail{Code: "temporarily_unavailable", Message: "m"}, ""},
		{"cause is not sent", &apperr.Error{Code: apperr.UpstreamError, Message: "m", Cause: errors.New("refresh_token=opaqueRT dial tcp")}, 502,
			httpx.ErrorDetail{Code: "upstream_error", Message: "m"}, ""},
		{"non-*Error is 500 internal", errors.New("pq: password=opaquePW relation users"), 500,
			httpx.ErrorDetail{Code: "internal", Message: "internal error"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, logs := testLogger(t)
			rec := httptest.NewRecorder()
			httpx.WriteError(rec, httptest.NewRequest("GET", "/", nil), log, tt.err)
			if rec.Code != tt.wantStatus {
				t.Errorf("status: got %d, want %d", rec.Code, tt.wantStatus)
			}
			if got := rec.Header().Get("Retry-After"); got != tt.wantRetryAfter {
				t.Errorf("Retry-After: got %q, want %q", got, tt.wantRetryAfter)
			}
			body := rec.Body.String()
			if diff := cmp.Diff(tt.wantBody, decodeError(t, rec)); diff != "" {
				t.Errorf("body mismatch (-want +got):\n%s", diff)
			}
			if strings.Contains(body, "opaque") || strings.Contains(body, "dial tcp") || strings.Contains(body, "relation") {
				t.Errorf("body %q leaks the cause", body)
			}
			if strings.Contains(logs.String(), "opaque") {
				t.Errorf("log %q contains a secret", logs.String())
			}
			if !strings.Contains(logs.String(), `"code":"`+tt.wantBody.Code+`"`) {
				t.Errorf("log %q: want the error code logged", logs.String())
			}
		})
	}
}

// statusOf returns the status and code err is answered with.
func statusOf(err error) (int, apperr.Code) {
	st, _ := httpx.Status(apperr.CodeOf(err))
	return st, apperr.CodeOf(err)
}

// TestEveryCodeHasAStatus: the table covers every code of the contract.
func TestEveryCodeHasAStatus(t *testing.T) {
	for _, c := range apperr.Codes() {
		st, _ := httpx.Status(c)
		if st < 400 || st > 599 {
			t.Errorf("code %q: status %d", c, st)
		}
	}
	if st, ra := httpx.Status(apperr.Unavailable); st != 503 || ra != httpx.RetryUnavailable {
		t.Errorf("unavailable: got %d %v, want 503 %v", st, ra, httpx.RetryUnavailable)
	}
}

// jsonRequest returns a POST with body and content type ct.
func jsonRequest(body, ct string) *http.Request {
	r := httptest.NewRequest("POST", "/authorize", strings.NewReader(body))
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	return r
}

type beginBody struct {
	LoginHint string `json:"login_hint"`
	ReturnTo  string `json:"return_to"`
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name       string
		body, ct   string
		want       beginBody
		wantStatus int // 0: success
		wantCode   string
	}{
		{"ok", `{"login_hint":"a@b.c"}`, "application/json", beginBody{LoginHint: "a@b.c"}, 0, ""},
		{"ok with charset", `{"return_to":"https://x"}`, "application/json; charset=utf-8", beginBody{ReturnTo: "https://x"}, 0, ""},
		{"ok upper case type", `{}`, "Application/JSON", beginBody{}, 0, ""},
		{"empty body is {}", "", "application/json", beginBody{}, 0, ""},
		{"whitespace body is {}", " \n\t", "application/json", beginBody{}, 0, ""},
		{"trailing whitespace", "{}\n", "application/json", beginBody{}, 0, ""},
		{"no content type", `{}`, "", beginBody{}, 415, "unsupported_media_type"},
		{"form content type", `login_hint=x`, "application/x-www-form-urlencoded", beginBody{}, 415, "unsupported_media_type"},
		{"text/plain (CORS simple request)", `{}`, "text/plain", beginBody{}, 415, "unsupported_media_type"},
		{"json look-alike type", `{}`, "application/jsonx", beginBody{}, 415, "unsupported_media_type"},
		{"malformed", `{"login_hint":`, "application/json", beginBody{}, 400, "invalid_json"},
		{"wrong type", `{"login_hint":1}`, "application/json", beginBody{}, 400, "invalid_json"},
		{"array", `[]`, "application/json", beginBody{}, 400, "invalid_json"},
		{"unknown field", `{"login_hint":"a","admin":true}`, "application/json", beginBody{}, 400, "invalid_json"},
		{"second object", `{}{}`, "application/json", beginBody{}, 400, "invalid_json"},
		{"trailing garbage", `{} x`, "application/json", beginBody{}, 400, "invalid_json"},
		{"trailing brace", `{}}`, "application/json", beginBody{}, 400, "invalid_json"},
		{"trailing bracket", `{"login_hint":"a"} ]`, "application/json", beginBody{}, 400, "invalid_json"},
		{"too large", `{"login_hint":"` + strings.Repeat("a", httpx.MaxBodyBytes) + `"}`, "application/json", beginBody{}, 413, "request_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got beginBody
			err := httpx.DecodeJSON(httptest.NewRecorder(), jsonRequest(tt.body, tt.ct), &got)
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("DecodeJSON: got %v, want nil", err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("decoded mismatch (-want +got):\n%s", diff)
				}
				return
			}
			if apperr.As(err) == nil {
				t.Fatalf("DecodeJSON: got %v, want *apperr.Error", err)
			}
			if st, code := statusOf(err); st != tt.wantStatus || string(code) != tt.wantCode {
				t.Errorf("DecodeJSON: got %d %s, want %d %s", st, code, tt.wantStatus, tt.wantCode)
			}
		})
	}
}

func TestDecodeJSONAtLimit(t *testing.T) {
	pad := httpx.MaxBodyBytes - len(`{"login_hint":""}`)
	body := `{"login_hint":"` + strings.Repeat("a", pad) + `"}`
	var got beginBody
	if err := httpx.DecodeJSON(httptest.NewRecorder(), jsonRequest(body, "application/json"), &got); err != nil {
		t.Errorf("DecodeJSON of exactly %d bytes: got %v, want nil", len(body), err)
	}
}

func TestAllow(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	if err := httpx.Allow(r, "POST", "GET"); err != nil {
		t.Errorf("Allow(GET in POST,GET): got %v, want nil", err)
	}
	r = httptest.NewRequest("PUT", "/", nil)
	err := httpx.Allow(r, "GET", "POST")
	if st, code := statusOf(err); st != 405 || code != apperr.MethodNotAllowed {
		t.Errorf("Allow(PUT): got %d %s, want 405 method_not_allowed", st, code)
	}
	r.Method = strings.Repeat("X", 100)
	if he := apperr.As(httpx.Allow(r, "GET")); len(he.Message) > 100 {
		t.Errorf("Allow with a 100-byte method: message of %d bytes, want the method truncated", len(he.Message))
	}
}

func TestCheckQuery(t *testing.T) {
	tests := []struct {
		name, rawQuery string
		wantStatus     int
	}{
		{"empty", "", 0},
		{"normal", "q=from%3Ame&max_results=10", 0},
		{"at limit", "q=" + strings.Repeat("a", httpx.MaxQueryBytes-2), 0},
		{"over limit", "q=" + strings.Repeat("a", httpx.MaxQueryBytes-1), 414},
		{"bad escape", "q=%zz", 400},
		{"semicolon", "a=1;b=2", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.URL.RawQuery = tt.rawQuery
			err := httpx.CheckQuery(r)
			if tt.wantStatus == 0 {
				if err != nil {
					t.Errorf("CheckQuery: got %v, want nil", err)
				}
				return
			}
			if st, _ := statusOf(err); apperr.As(err) == nil || st != tt.wantStatus {
				t.Errorf("CheckQuery: got %v, want status %d", err, tt.wantStatus)
			}
		})
	}
}

func TestCORS(t *testing.T) {
	allowed := []string{"https://app.example.com", "http://localhost:3000"}
	tests := []struct {
		name, method, origin, reqMethod string
		wantHandled                     bool
		wantStatus                      int
		wantACAO                        string
	}{
		{"simple allowed", "GET", "https://app.example.com", "", false, 200, "https://app.example.com"},
		{"simple allowed localhost", "GET", "http://localhost:3000", "", false, 200, "http://localhost:3000"},
		{"simple disallowed", "GET", "https://evil.example.com", "", false, 200, ""},
		{"look-alike", "GET", "https://app.example.com.evil.com", "", false, 200, ""},
		{"scheme differs", "GET", "http://app.example.com", "", false, 200, ""},
		{"case differs", "GET", "https://APP.example.com", "", false, 200, ""},
		{"null origin", "GET", "null", "", false, 200, ""},
		{"star origin", "GET", "*", "", false, 200, ""},
		{"no origin", "GET", "", "", false, 200, ""},
		{"preflight allowed", "OPTIONS", "https://app.example.com", "GET", true, 204, "https://app.example.com"},
		{"preflight disallowed", "OPTIONS", "https://evil.example.com", "GET", true, 403, ""},
		{"preflight without origin", "OPTIONS", "", "GET", true, 403, ""},
		{"plain OPTIONS is not a preflight", "OPTIONS", "https://app.example.com", "", false, 200, "https://app.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/list-messages", nil)
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if tt.reqMethod != "" {
				r.Header.Set("Access-Control-Request-Method", tt.reqMethod)
			}
			rec := httptest.NewRecorder()
			log, logs := testLogger(t)
			handled, err := httpx.CORS(rec, r, allowed, "GET, POST")
			if err != nil {
				httpx.WriteError(rec, r, log, err)
			}
			if handled != tt.wantHandled {
				t.Errorf("handled: got %v, want %v", handled, tt.wantHandled)
			}
			if rec.Code != tt.wantStatus {
				t.Errorf("status: got %d, want %d", rec.Code, tt.wantStatus)
			}
			h := rec.Header()
			if got := h.Get("Access-Control-Allow-Origin"); got != tt.wantACAO {
				t.Errorf("Access-Control-Allow-Origin: got %q, want %q", got, tt.wantACAO)
			}
			if got := h.Values("Access-Control-Allow-Origin"); len(got) > 1 {
				t.Errorf("Access-Control-Allow-Origin: got %d values, want at most 1", len(got))
			}
			if h.Get("Access-Control-Allow-Origin") == "*" {
				t.Errorf("Access-Control-Allow-Origin is *")
			}
			if h.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("Access-Control-Allow-Credentials set: bearer sessions need no credentials mode")
			}
			if got := h.Get("Vary"); got != "Origin" {
				t.Errorf("Vary: got %q, want Origin", got)
			}
			if tt.wantStatus == 204 {
				if got := h.Get("Access-Control-Allow-Methods"); got != "GET, POST" {
					t.Errorf("Access-Control-Allow-Methods: got %q, want GET, POST", got)
				}
				if got := h.Get("Access-Control-Allow-Headers"); !strings.Contains(got, "Authorization") {
					t.Errorf("Access-Control-Allow-Headers: got %q, want Authorization listed", got)
				}
			}
			if tt.wantStatus == 403 {
				if got := decodeError(t, rec).Code; got != "origin_not_allowed" {
					t.Errorf("code: got %q, want origin_not_allowed", got)
				}
				if h.Get("Access-Control-Allow-Methods") != "" {
					t.Errorf("disallowed preflight got Access-Control-Allow-Methods")
				}
				// The log names the refused origin, so the operator knows
				// what to add to ALLOWED_RETURN_ORIGINS.
				if !strings.Contains(logs.String(), "origin") || !strings.Contains(logs.String(), tt.origin) {
					t.Errorf("log %q does not name the refused origin %q", logs.String(), tt.origin)
				}
			}
		})
	}
}

func TestRecover(t *testing.T) {
	log, logs := testLogger(t)
	h := httpx.Recover(log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("nil map write with session=opaqueSess")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/?code=opaqueCode", nil))
	if rec.Code != 500 {
		t.Errorf("status: got %d, want 500", rec.Code)
	}
	if diff := cmp.Diff(httpx.ErrorDetail{Code: "internal", Message: "internal error"}, decodeError(t, rec)); diff != "" {
		t.Errorf("body mismatch (-want +got):\n%s", diff)
	}
	if !strings.Contains(logs.String(), "panic in handler") {
		t.Errorf("log %q: want a panic line", logs.String())
	}
	if strings.Contains(logs.String(), "opaque") {
		t.Errorf("log %q leaks a secret", logs.String())
	}
}

func TestRecoverRepanicsAbortHandler(t *testing.T) {
	log, _ := testLogger(t)
	h := httpx.Recover(log, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	defer func() {
		if p, _ := recover().(error); !errors.Is(p, http.ErrAbortHandler) {
			t.Errorf("recovered %v, want http.ErrAbortHandler re-panicked", p)
		}
	}()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
}

func TestSecurityHeaders(t *testing.T) {
	h := http.Header{}
	httpx.SecurityHeaders(h)
	want := map[string]string{
		"Cache-Control":           "no-store",
		"Pragma":                  "no-cache",
		"Referrer-Policy":         "no-referrer",
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
	}
	got := map[string]string{}
	for k := range want {
		got[k] = h.Get(k)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("headers mismatch (-want +got):\n%s", diff)
	}
}

func TestWriteJSONEscapesHTML(t *testing.T) {
	rec := httptest.NewRecorder()
	httpx.WriteJSON(rec, 200, map[string]string{"x": "<script>"})
	body, _ := io.ReadAll(rec.Body)
	if bytes.Contains(body, []byte("<script>")) {
		t.Errorf("body %s: want < and > escaped", body)
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct{ header, want string }{
		{"Bearer abc.def", "abc.def"},
		{"bearer abc", "abc"},
		{"BEARER  abc ", "abc"},
		{"Basic abc", ""},
		{"Bearer", ""},
		{"Bearer ", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", tt.header)
			if got := httpx.BearerToken(r); got != tt.want {
				t.Errorf("BearerToken(%q): got %q, want %q", tt.header, got, tt.want)
			}
		})
	}
}

func TestWantsJSON(t *testing.T) {
	tests := []struct {
		accept string
		want   bool
	}{
		{"application/json", true},
		{"text/html, application/json;q=0.9", true},
		{"text/html,application/xhtml+xml,*/*;q=0.8", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.accept, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Accept", tt.accept)
			if got := httpx.WantsJSON(r); got != tt.want {
				t.Errorf("WantsJSON(%q): got %v, want %v", tt.accept, got, tt.want)
			}
		})
	}
}
