package httpx_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"example.com/gmailoauth/internal/apperr"
	"example.com/gmailoauth/internal/httpx"
)

// logLines decodes every JSON line written so far.
func logLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// TestLogRequests: every request ends in exactly one line with the method,
// the path without its query, the status, the latency and the size, as
// Cloud Logging's httpRequest; a failure adds its code and cause at the
// code's severity, however it was answered (JSON, a redirect, a panic).
func TestLogRequests(t *testing.T) {
	upstream := apperr.Wrap(apperr.UpstreamUnavailable, "Google could not be reached (code exchange)",
		errors.New(`code exchange: Post "https://oauth2.googleapis.com/token": dial tcp: lookup oauth2.googleapis.com: no such host`))
	tests := []struct {
		name         string
		handler      http.HandlerFunc
		wantStatus   int
		wantSeverity string
		wantCode     string
		wantCause    string // a substring of the cause, "" = no cause
	}{
		{"ok", func(w http.ResponseWriter, r *http.Request) { httpx.WriteJSON(w, 200, map[string]int{"n": 1}) },
			200, "INFO", "", ""},
		{"nothing written is 200", func(http.ResponseWriter, *http.Request) {}, 200, "INFO", "", ""},
		{"refused request", func(w http.ResponseWriter, r *http.Request) {
			httpx.WriteError(w, r, slog.New(slog.DiscardHandler), apperr.New(apperr.InvalidSession, "m"))
		}, 401, "INFO", "invalid_session", ""},
		{"failed as JSON", func(w http.ResponseWriter, r *http.Request) {
			httpx.WriteError(w, r, slog.New(slog.DiscardHandler), upstream)
		}, 503, "ERROR", "upstream_unavailable", "no such host"},
		{"the same failure as a redirect", func(w http.ResponseWriter, r *http.Request) {
			httpx.NoteError(r, slog.New(slog.DiscardHandler), upstream)
			w.Header().Set("Location", "https://app.example.com/#error=upstream_unavailable")
			w.WriteHeader(http.StatusFound)
		}, 302, "ERROR", "upstream_unavailable", "no such host"},
		{"panic", func(http.ResponseWriter, *http.Request) { panic("boom with session=opaqueSess") },
			500, "ERROR", "internal", "panic in handler: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, logs := testLogger(t)
			h := httpx.LogRequests(log, httpx.Recover(log, tt.handler))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/callback?code=opaqueCode&state=opaqueState", nil))
			if rec.Code != tt.wantStatus {
				t.Errorf("status: got %d, want %d", rec.Code, tt.wantStatus)
			}
			lines := logLines(t, logs.String())
			if len(lines) != 1 {
				t.Fatalf("got %d log lines, want exactly 1:\n%s", len(lines), logs)
			}
			line := lines[0]
			if line["severity"] != tt.wantSeverity {
				t.Errorf("severity: got %v, want %s", line["severity"], tt.wantSeverity)
			}
			hr, _ := line["httpRequest"].(map[string]any)
			latency, _ := hr["latency"].(string)
			if !strings.HasSuffix(latency, "s") || len(latency) < 2 {
				t.Errorf("httpRequest.latency %q: want a duration in seconds such as 0.001234s", latency)
			}
			want := map[string]any{"requestMethod": "GET", "requestUrl": "/callback", "status": float64(tt.wantStatus)}
			if diff := cmp.Diff(want, hr, cmpopts.IgnoreMapEntries(func(k string, _ any) bool {
				return k == "latency" || k == "responseSize"
			})); diff != "" {
				t.Errorf("httpRequest mismatch (-want +got):\n%s", diff)
			}
			if size, _ := hr["responseSize"].(string); size != itoa(rec.Body.Len()) {
				t.Errorf("httpRequest.responseSize %q, want %d", size, rec.Body.Len())
			}
			if got, _ := line["code"].(string); got != tt.wantCode {
				t.Errorf("code: got %q, want %q", got, tt.wantCode)
			}
			cause, _ := line["cause"].(string)
			if (tt.wantCause == "") != (cause == "") || !strings.Contains(cause, tt.wantCause) {
				t.Errorf("cause: got %q, want one containing %q", cause, tt.wantCause)
			}
			if msg, _ := line["message"].(string); !strings.HasPrefix(msg, "GET /callback "+itoa(tt.wantStatus)) {
				t.Errorf("message %q: want it to start with the method, path and status", msg)
			}
			if strings.Contains(logs.String(), "opaque") {
				t.Errorf("the request line carries the query or a secret:\n%s", logs)
			}
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestSeverity: a failure is an ERROR exactly when its answer is a 5xx.
func TestSeverity(t *testing.T) {
	for _, c := range apperr.Codes() {
		st, _ := httpx.Status(c)
		want := slog.LevelInfo
		if st >= 500 {
			want = slog.LevelError
		}
		if got := httpx.Severity(c); got != want {
			t.Errorf("Severity(%s) = %v for a %d, want %v", c, got, st, want)
		}
	}
}

// TestDecodeJSONSaysWhatIsWrong: a refused body names the problem, so a
// frontend developer can fix the request without reading the server's code.
func TestDecodeJSONSaysWhatIsWrong(t *testing.T) {
	type body struct {
		LoginHint string `json:"login_hint"`
		ReturnTo  string `json:"return_to"`
		State     string `json:"state"`
		Internal  string `json:"-"`
	}
	tests := []struct {
		name, body string
		want       []string // substrings of the message
	}{
		{"camelCase field", `{"returnTo":"https://app.example.com/"}`,
			[]string{`unknown field "returnTo"`, `did you mean "return_to"?`, "the fields are login_hint, return_to, state"}},
		{"unrelated field", `{"admin":true}`, []string{`unknown field "admin"`, "the fields are login_hint, return_to, state"}},
		{"wrong type", `{"state":42}`, []string{`field "state" must be a string, got number`}},
		{"array", `[]`, []string{"must be a JSON object, got array"}},
		{"broken", `{"state":"x",}`, []string{"not valid JSON (at byte"}},
		{"cut short", `{"state":`, []string{"not valid JSON"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got body
			err := httpx.DecodeJSON(httptest.NewRecorder(), jsonRequest(tt.body, "application/json"), &got)
			e := apperr.As(err)
			if e == nil || e.Code != apperr.InvalidJSON {
				t.Fatalf("DecodeJSON(%s): got %v, want invalid_json", tt.body, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(e.Message, w) {
					t.Errorf("message %q: want it to contain %q", e.Message, w)
				}
			}
			if strings.Contains(e.Message, "Internal") {
				t.Errorf("message %q lists a field that is not in the JSON", e.Message)
			}
		})
	}
}

// TestRequestLineNamesARefusedOrigin: a page on an origin that is not
// allowed gets no CORS headers, so its browser hides the answer; the request
// line says which origin that was, preflight or not.
func TestRequestLineNamesARefusedOrigin(t *testing.T) {
	for _, method := range []string{http.MethodGet, http.MethodOptions} {
		log, logs := testLogger(t)
		h := httpx.LogRequests(log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if preflight, err := httpx.CORS(w, r, []string{"http://localhost:8081"}, "GET"); preflight {
				if err != nil {
					httpx.WriteError(w, r, log, err)
				}
				return
			}
			httpx.WriteJSON(w, http.StatusOK, map[string]string{})
		}))
		r := httptest.NewRequest(method, "/list-messages", nil)
		r.Header.Set("Origin", "http://127.0.0.1:8081")
		r.Header.Set("Access-Control-Request-Method", "GET")
		h.ServeHTTP(httptest.NewRecorder(), r)
		lines := logLines(t, logs.String())
		if len(lines) != 1 || lines[0]["refused_origin"] != "http://127.0.0.1:8081" {
			t.Errorf("%s from a refused origin: log %s, want one line with refused_origin", method, logs)
		}
	}
}
