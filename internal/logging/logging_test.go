package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"example.com/gmailoauth/internal/logging"
)

const traceID = "0123456789abcdef0123456789ABCDEF"

// capture returns a debug-level logger for project "proj" and a func that
// decodes every line it wrote.
func capture(t *testing.T) (*slog.Logger, func() []map[string]any) {
	t.Helper()
	var buf bytes.Buffer
	log := logging.New(&buf, "proj", slog.LevelDebug)
	return log, func() []map[string]any {
		t.Helper()
		var out []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			if line == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("log line %q is not JSON: %v", line, err)
			}
			delete(m, "time")
			out = append(out, m)
		}
		return out
	}
}

func TestSeverityAndMessage(t *testing.T) {
	tests := []struct {
		level slog.Level
		want  string
	}{
		{slog.LevelDebug, "DEBUG"},
		{slog.LevelDebug + 2, "DEBUG"},
		{slog.LevelInfo, "INFO"},
		{slog.LevelWarn, "WARNING"},
		{slog.LevelError, "ERROR"},
		{slog.LevelError + 4, "ERROR"},
	}
	for _, tt := range tests {
		t.Run(tt.want+tt.level.String(), func(t *testing.T) {
			log, lines := capture(t)
			log.Log(context.Background(), tt.level, "hello", "n", 1)
			got := lines()
			want := []map[string]any{{"severity": tt.want, "message": "hello", "n": float64(1)}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("line mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLevelFilter(t *testing.T) {
	var buf bytes.Buffer
	log := logging.New(&buf, "", slog.LevelInfo)
	log.Debug("hidden")
	if buf.Len() != 0 {
		t.Errorf("debug line written at info level: got %q, want nothing", buf.String())
	}
}

func TestTrace(t *testing.T) {
	tests := []struct {
		name    string
		header  map[string]string
		project string
		want    map[string]any // trace fields of the line
	}{
		{"cloud trace with span", map[string]string{"X-Cloud-Trace-Context": traceID + "/74;o=1"}, "proj",
			map[string]any{"logging.googleapis.com/trace": "projects/proj/traces/" + strings.ToLower(traceID),
				"logging.googleapis.com/spanId": "000000000000004a"}},
		{"cloud trace max span", map[string]string{"X-Cloud-Trace-Context": traceID + "/18446744073709551615;o=1"}, "proj",
			map[string]any{"logging.googleapis.com/trace": "projects/proj/traces/" + strings.ToLower(traceID),
				"logging.googleapis.com/spanId": "ffffffffffffffff"}},
		{"cloud trace overflowing span", map[string]string{"X-Cloud-Trace-Context": traceID + "/99999999999999999999"}, "proj",
			map[string]any{"logging.googleapis.com/trace": "projects/proj/traces/" + strings.ToLower(traceID)}},
		{"cloud trace without span", map[string]string{"X-Cloud-Trace-Context": traceID}, "proj",
			map[string]any{"logging.googleapis.com/trace": "projects/proj/traces/" + strings.ToLower(traceID)}},
		{"no project", map[string]string{"X-Cloud-Trace-Context": traceID + "/1"}, "",
			map[string]any{"logging.googleapis.com/trace": strings.ToLower(traceID), "logging.googleapis.com/spanId": "0000000000000001"}},
		{"traceparent", map[string]string{"Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, "proj",
			map[string]any{"logging.googleapis.com/trace": "projects/proj/traces/4bf92f3577b34da6a3ce929d0e0e4736",
				"logging.googleapis.com/spanId": "00f067aa0ba902b7"}},
		{"cloud trace wins over traceparent", map[string]string{"X-Cloud-Trace-Context": traceID + "/2", "Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, "proj",
			map[string]any{"logging.googleapis.com/trace": "projects/proj/traces/" + strings.ToLower(traceID), "logging.googleapis.com/spanId": "0000000000000002"}},
		{"malformed cloud trace", map[string]string{"X-Cloud-Trace-Context": "not-a-trace/1"}, "proj", map[string]any{}},
		{"malformed traceparent", map[string]string{"Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736/00f067aa0ba902b7-01x"}, "proj", map[string]any{}},
		{"no header", nil, "proj", map[string]any{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := logging.New(&buf, tt.project, slog.LevelInfo)
			r := httptest.NewRequest("GET", "/list-messages", nil)
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			ctx := logging.WithRequestTrace(context.Background(), r)
			log.InfoContext(ctx, "m")
			var line map[string]any
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatal(err)
			}
			got := map[string]any{}
			for k, v := range line {
				if strings.HasPrefix(k, "logging.googleapis.com/") {
					got[k] = v
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("trace fields mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTraceStaysTopLevelInGroups(t *testing.T) {
	log, lines := capture(t)
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Cloud-Trace-Context", traceID+"/74;o=1")
	ctx := logging.WithRequestTrace(context.Background(), r)
	log.With("fn", "ListMessages").WithGroup("req").With("method", "GET").WithGroup("inner").InfoContext(ctx, "m", "k", "token=abc")
	got := lines()
	want := []map[string]any{{
		"severity": "INFO", "message": "m", "fn": "ListMessages",
		"logging.googleapis.com/trace":  "projects/proj/traces/" + strings.ToLower(traceID),
		"logging.googleapis.com/spanId": "000000000000004a",
		"req":                           map[string]any{"method": "GET", "inner": map[string]any{"k": "token=[REDACTED]"}},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("line mismatch (-want +got):\n%s", diff)
	}
}

func TestScrub(t *testing.T) {
	const jwt = "eyJhbGciOiJIUzI1NiIsImtpZCI6InMxIn0.eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
	tests := []struct {
		name, in, want string
		secret         string // must not survive
	}{
		{"access_token query", "GET /x?access_token=opaqueAT123&y=1", "GET /x?access_token=[REDACTED]&y=1", "opaqueAT123"},
		{"refresh_token json", `{"refresh_token":"opaqueRT456","expires_in":3599}`, `{"refresh_token":"[REDACTED]","expires_in":3599}`, "opaqueRT456"},
		{"json with spaces", `{"access_token" : "opaqueAT789"}`, `{"access_token" : "[REDACTED]"}`, "opaqueAT789"},
		{"escaped json in a quoted error", `body "{\"refresh_token\":\"opaqueRT000\"}"`, `body "{\"refresh_token\":\"[REDACTED]\"}"`, "opaqueRT000"},
		{"url-encoded", "return_to=https%3A%2F%2Fapp%2F%23session%3Dopaque-sess%26state%3Dopaque-st", "return_to=https%3A%2F%2Fapp%2F%23session%3D[REDACTED]", "opaque-st"},
		{"bearer header", "Authorization: Bearer opaque.bearer-tok", "Authorization: Bearer [REDACTED]", "opaque.bearer-tok"},
		{"bearer lower", "authorization: bearer abc/def+ghi=", "authorization: bearer [REDACTED]", "abc/def+ghi="},
		{"jwt", "got session " + jwt + " ok", "got session [REDACTED] ok", "c2lnbmF0dXJlLXNpZ25hdHVyZQ"},
		{"google access token", "token ya29.a0AfH6SMBx-y_z rejected", "token [REDACTED] rejected", "ya29.a0AfH6SMBx"},
		{"google refresh token", "rt 1//0gAbCdEf-GhIj done", "rt [REDACTED] done", "1//0gAbCdEf"},
		{"google auth code", "exchange 4/0AX4XfWh_abc failed", "exchange [REDACTED] failed", "4/0AX4XfWh"},
		{"client secret", "secret GOCSPX-abcDEF123 loaded", "secret [REDACTED] loaded", "GOCSPX-abcDEF123"},
		{"sandbox tokens are Google-shaped", "ya29.sbxAbc 1//0sbxDef 4/0sbxGhi", "[REDACTED] [REDACTED] [REDACTED]", "sbx"},
		{"code and state", "/callback?code=opaqueCode&state=opaqueState&scope=email", "/callback?code=[REDACTED]&state=[REDACTED]&scope=email", "opaque"},
		{"verifier in a struct dump", "{Verifier:opaqueVerifier Nonce:n}", "{Verifier:[REDACTED] Nonce:n}", "opaqueVerifier"},
		{"code_verifier", "code_verifier=opaqueVerifier2", "code_verifier=[REDACTED]", "opaqueVerifier2"},
		{"password", "password: hunter2", "password: [REDACTED]", "hunter2"},
		{"oauth2 token struct", "&{AccessToken:opaqueA TokenType:Bearer RefreshToken:opaqueR}", "&{AccessToken:[REDACTED] TokenType:Bearer [REDACTED]:[REDACTED]}", "opaque"}, // over-redacts the field name after Bearer: harmless,
		{"harmless text", "listed 12 messages for user 1234 in 40ms", "listed 12 messages for user 1234 in 40ms", ""},
		// Names of secrets that are not followed by one stay readable.
		{"token endpoint in a Go URL error", `code exchange: Post "https://oauth2.googleapis.com/token": dial tcp: lookup oauth2.googleapis.com: no such host`,
			`code exchange: Post "https://oauth2.googleapis.com/token": dial tcp: lookup oauth2.googleapis.com: no such host`, ""},
		{"endpoint path without quotes", "GET https://example.com/v1/session: EOF", "GET https://example.com/v1/session: EOF", ""},
		{"endpoint then a query token", `Get "https://gmail.googleapis.com/gmail/v1/users/me/messages?access_token=opaqueAT9": EOF`,
			`Get "https://gmail.googleapis.com/gmail/v1/users/me/messages?access_token=[REDACTED]": EOF`, "opaqueAT9"},
		{"a JSON number is not a secret", `{"error":{"code": 401,"status":"UNAUTHENTICATED"}}`, `{"error":{"code": 401,"status":"UNAUTHENTICATED"}}`, ""},
		{"a JSON string still is", `{"state": "opaqueState2", "session":"opaqueSess2"}`, `{"state": "[REDACTED]", "session":"[REDACTED]"}`, "opaque"},
		{"name at the start", "token=opaqueTok3 rest", "token=[REDACTED] rest", "opaqueTok3"},
		{"empty", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := logging.Scrub(tt.in)
			if got != tt.want {
				t.Errorf("Scrub(%q):\n got %q\nwant %q", tt.in, got, tt.want)
			}
			if tt.secret != "" && strings.Contains(got, tt.secret) {
				t.Errorf("Scrub(%q) = %q still contains %q", tt.in, got, tt.secret)
			}
		})
	}
}

// leakyErr is an error whose text carries a token, as a wrapped transport
// error might.
type leakyErr struct{}

func (leakyErr) Error() string { return "Post https://oauth2/token?refresh_token=opaqueRT: EOF" }

func TestLoggedValuesAreScrubbed(t *testing.T) {
	log, lines := capture(t)
	wrapped := fmt.Errorf("refresh for user: %w", leakyErr{})
	log.Error("failed access_token=opaqueMsg",
		"err", wrapped,
		slog.Any("plain", errors.New("Bearer opaqueBearer")),
		slog.String("url", "/cb?code=opaqueCode"),
		slog.Group("g", slog.Any("err", leakyErr{}), slog.String("s", "state=opaqueState")))
	got := lines()
	want := []map[string]any{{
		"severity": "ERROR",
		"message":  "failed access_token=[REDACTED]",
		"err":      "refresh for user: Post https://oauth2/token?refresh_token=[REDACTED] EOF",
		"plain":    "Bearer [REDACTED]",
		"url":      "/cb?code=[REDACTED]",
		"g":        map[string]any{"err": "Post https://oauth2/token?refresh_token=[REDACTED] EOF", "s": "state=[REDACTED]"},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("line mismatch (-want +got):\n%s", diff)
	}
	b, _ := json.Marshal(got)
	if strings.Contains(string(b), "opaque") {
		t.Errorf("log output %s contains a planted secret", b)
	}
}

// tokenValueRE is the charset of tokens planted by FuzzScrub: what OAuth
// servers put in access_token (RFC 6749 VSCHAR minus separators) and more.
var tokenValueRE = regexp.MustCompile(`^[A-Za-z0-9._~+/=-]{8,}$`)

func FuzzScrub(f *testing.F) {
	f.Add("GET /cb?", "ya29.a0AfH6SMBxyz", "&x=1")
	f.Add(`{"a":1,`, "opaque-token-1234", `}`)
	f.Add("access_token=", "access_token=abcdefgh", " ")
	f.Add("", "AAAAAAAAAA", "")
	f.Add("Bearer ", "eyJhbGciOi.eyJzdWIi.sig12345", "\n")
	f.Fuzz(func(t *testing.T, prefix, value, suffix string) {
		_ = logging.Scrub(prefix + value + suffix) // never panics
		// A value that is part of the text around it (the prefix, the
		// suffix, the key name or the redaction mark) is found there, not
		// leaked.
		if !tokenValueRE.MatchString(value) || strings.Contains(prefix, value) || strings.Contains(suffix, value) ||
			strings.Contains(" access_token=[REDACTED] ", value) {
			return
		}
		in := prefix + " access_token=" + value + " " + suffix
		if out := logging.Scrub(in); strings.Contains(out, value) {
			t.Fatalf("Scrub(%q) = %q still contains the token %q", in, out, value)
		}
	})
}
