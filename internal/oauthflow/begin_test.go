package oauthflow_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"example.com/gmailoauth/internal/apperr"
	"example.com/gmailoauth/internal/httpx"
	"example.com/gmailoauth/internal/oauthflow"
	"example.com/gmailoauth/internal/weburl"
)

// allowed are the origins of these tests' return URL prefixes, normalised
// as weburl.Origin does.
var allowed = []string{"https://app.example.com", "http://localhost:3000", "https://[::1]:8443"}

// newFlow returns a Flow that only knows its return URLs (every path of the
// allowed origins, as "/*" prefixes): enough for input validation, which
// makes no network or store call.
func newFlow() *oauthflow.Flow {
	var rules []weburl.ReturnURL
	for _, o := range allowed {
		r, err := weburl.ParseReturnURL(o + "/*")
		if err != nil {
			panic(err)
		}
		rules = append(rules, r)
	}
	return &oauthflow.Flow{ReturnURLs: rules}
}

// wantHTTPError fails the test unless err carries code, answered with
// status.
func wantHTTPError(t *testing.T, err error, status int, code string) {
	t.Helper()
	e := apperr.As(err)
	if e == nil {
		t.Fatalf("got %v, want an *apperr.Error %d %s", err, status, code)
	}
	if st, _ := httpx.Status(e.Code); st != status || string(e.Code) != code {
		t.Errorf("got %d %s, want %d %s", st, e.Code, status, code)
	}
}

func TestCheckReturnTo(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		ok   bool
	}{
		{"exact origin", "https://app.example.com", true},
		{"origin with slash", "https://app.example.com/", true},
		{"path and query", "https://app.example.com/inbox?tab=1&x=%2F", true},
		{"explicit default port", "https://app.example.com:443/cb", true},
		{"uppercase host", "https://APP.EXAMPLE.COM/cb", true},
		{"uppercase scheme", "HTTPS://app.example.com/cb", true},
		{"localhost with port", "http://localhost:3000/done", true},
		{"ipv6 with port", "https://[::1]:8443/", true},
		{"empty query", "https://app.example.com/?", true},

		{"look-alike suffix", "https://app.example.com.evil.com/", false},
		{"look-alike path", "https://evil.com/app.example.com", false},
		{"userinfo", "https://app.example.com@evil.com/", false},
		{"userinfo with password", "https://app.example.com:443@evil.com/", false},
		{"userinfo on allowed host", "https://user@app.example.com/", false},
		{"different scheme", "http://app.example.com/", false},
		{"different port", "https://app.example.com:8443/", false},
		{"localhost other port", "http://localhost:3001/", false},
		{"localhost https", "https://localhost:3000/", false},
		{"ipv6 other port", "https://[::1]/", false},
		{"protocol-relative", "//evil.com", false},
		{"protocol-relative allowed host", "//app.example.com/", false},
		{"relative path", "/inbox", false},
		{"javascript", "javascript:alert(1)", false},
		{"javascript with slashes", "javascript://app.example.com/%0Aalert(1)", false},
		{"data", "data:text/html,<script>alert(1)</script>", false},
		{"ftp", "ftp://app.example.com/", false},
		{"opaque https", "https:app.example.com", false},
		{"single slash", "https:/app.example.com", false},
		{"triple slash", "https:///app.example.com", false},
		{"backslashes", `https:\\evil.com`, false},
		{"backslash userinfo", `https://app.example.com\@evil.com`, false},
		{"backslash path", `https://app.example.com\..\evil`, false},
		{"leading space", " https://app.example.com/", false},
		{"trailing space", "https://app.example.com/ ", false},
		{"tab", "https://app.example.com/\tx", false},
		{"crlf", "https://app.example.com/\r\nLocation: https://evil.com", false},
		{"nul", "https://app.example.com/\x00", false},
		{"control char", "https://app.example.com/\x01", false},
		{"fragment", "https://app.example.com/#session=x", false},
		{"bare fragment (item 9)", "https://app.example.com/done#", false},
		{"dot segments", "https://app.example.com/a/../b", false},
		{"encoded dot segments", "https://app.example.com/a/%2E%2e/b", false},
		{"encoded slash", "https://app.example.com/a%2fb", false},
		{"trailing dot host", "https://app.example.com./", false},
		{"encoded at in host", "https://app.example.com%40evil.com/", false},
		{"non-ascii host", "https://app.example.\u212Aom/", false},
		{"kelvin sign folding onto ascii", "https://\u212A.example/", false},
		{"invalid utf8", "https://app.example.com/\xff", false},
		{"empty", "", false},
		{"too long", "https://app.example.com/" + strings.Repeat("a", oauthflow.MaxReturnTo), false},
		{"bad port", "https://app.example.com:xyz/", false},
	}
	f := newFlow()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.CheckReturnTo(tt.raw)
			if tt.ok {
				if err != nil {
					t.Errorf("CheckReturnTo(%q): got %v, want accepted", tt.raw, err)
				}
				return
			}
			wantHTTPError(t, err, http.StatusBadRequest, "invalid_return_to")
		})
	}
}

func TestCheckReturnToAtLimit(t *testing.T) {
	base := "https://app.example.com/"
	raw := base + strings.Repeat("a", oauthflow.MaxReturnTo-len(base))
	if err := newFlow().CheckReturnTo(raw); err != nil {
		t.Errorf("CheckReturnTo of exactly %d bytes: got %v, want accepted", len(raw), err)
	}
}

// TestCheckReturnToUnicodeFolding checks that a host which strings.ToLower
// folds onto an allowed ASCII host (KELVIN SIGN -> k) is refused.
func TestCheckReturnToUnicodeFolding(t *testing.T) {
	kite, _ := weburl.ParseReturnURL("https://kite.example/*")
	f := &oauthflow.Flow{ReturnURLs: []weburl.ReturnURL{kite}}
	if err := f.CheckReturnTo("https://kite.example/"); err != nil {
		t.Fatalf("CheckReturnTo(ascii): got %v, want accepted", err)
	}
	wantHTTPError(t, f.CheckReturnTo("https://\u212Aite.example/"), 400, "invalid_return_to")
}

func TestCheckReturnToNoAllowList(t *testing.T) {
	f := &oauthflow.Flow{}
	wantHTTPError(t, f.CheckReturnTo("https://app.example.com/"), 400, "invalid_return_to")
}

func TestValidateBegin(t *testing.T) {
	tests := []struct {
		name     string
		req      oauthflow.BeginRequest
		wantCode string // "" means valid
		wantMsgs []string
	}{
		{"empty", oauthflow.BeginRequest{}, "", nil},
		{"all fields", oauthflow.BeginRequest{LoginHint: "a.b+c@example.com", ReturnTo: "https://app.example.com/x", ClientState: "xyz-123_~!"}, "", nil},
		{"sub as hint", oauthflow.BeginRequest{LoginHint: "109876543210987654321"}, "", nil},
		{"hint with space", oauthflow.BeginRequest{LoginHint: "a b@example.com"}, "invalid_request", []string{"login_hint"}},
		{"hint with newline", oauthflow.BeginRequest{LoginHint: "a@example.com\r\nX: y"}, "invalid_request", []string{"login_hint"}},
		{"hint with angle brackets", oauthflow.BeginRequest{LoginHint: "<script>@x"}, "invalid_request", []string{"login_hint"}},
		{"hint too long", oauthflow.BeginRequest{LoginHint: strings.Repeat("a", oauthflow.MaxLoginHint+1)}, "invalid_request", []string{"login_hint"}},
		{"state with space", oauthflow.BeginRequest{ClientState: "a b"}, "invalid_request", []string{"state must be"}},
		{"state non-ascii", oauthflow.BeginRequest{ClientState: "é"}, "invalid_request", []string{"state must be"}},
		{"state too long", oauthflow.BeginRequest{ClientState: strings.Repeat("s", oauthflow.MaxClientState+1)}, "invalid_request", []string{"state must be"}},
		{"state at limit", oauthflow.BeginRequest{ClientState: strings.Repeat("s", oauthflow.MaxClientState)}, "", nil},
		{"hint and state together", oauthflow.BeginRequest{LoginHint: "a b", ClientState: "a b"}, "invalid_request", []string{"login_hint", "state must be"}},
		{"bad return_to", oauthflow.BeginRequest{ReturnTo: "https://evil.com/"}, "invalid_return_to", nil},
		{"look-alike return_to", oauthflow.BeginRequest{ReturnTo: "https://app.example.com.evil.com/"}, "invalid_return_to", nil},
	}
	f := newFlow()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.ValidateBegin(tt.req)
			if tt.wantCode == "" {
				if err != nil {
					t.Errorf("ValidateBegin: got %v, want nil", err)
				}
				return
			}
			wantHTTPError(t, err, http.StatusBadRequest, tt.wantCode)
			for _, s := range tt.wantMsgs {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q: want it to contain %q", err, s)
				}
			}
			if tt.req.ClientState != "" && len(tt.req.ClientState) > 3 && strings.Contains(err.Error(), tt.req.ClientState) {
				t.Errorf("error %q echoes the client state", err)
			}
		})
	}
}

func TestStateKey(t *testing.T) {
	sum := sha256.Sum256([]byte("state-value"))
	if got, want := oauthflow.StateKey("state-value"), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("StateKey: got %q, want %q", got, want)
	}
	if got := oauthflow.StateKey(""); !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(got) {
		t.Errorf("StateKey(\"\"): got %q, want 64 lower-case hex digits", got)
	}
	if oauthflow.StateKey("a") == oauthflow.StateKey("b") {
		t.Errorf("StateKey(a) == StateKey(b)")
	}
	if strings.Contains(oauthflow.StateKey("state-value"), "state-value") {
		t.Errorf("StateKey contains the state")
	}
}

// asciiLower lower-cases ASCII letters only, unlike strings.ToLower, so the
// fuzz oracle below does not share CheckReturnTo's normalisation.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func FuzzCheckReturnTo(f *testing.F) {
	for _, s := range []string{
		"https://app.example.com/x?y=1", "http://localhost:3000", "https://[::1]:8443/",
		"https://app.example.com.evil.com", "//evil.com", `https:\\evil.com`,
		"https://app.example.com@evil.com", "javascript:alert(1)", "HTTPS://APP.EXAMPLE.COM:443/",
	} {
		f.Add(s)
	}
	fl := newFlow()
	f.Fuzz(func(t *testing.T, raw string) {
		if fl.CheckReturnTo(raw) != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("accepted %q, which does not parse: %v", raw, err)
		}
		if u.Scheme != "https" && u.Scheme != "http" {
			t.Fatalf("accepted %q with scheme %q", raw, u.Scheme)
		}
		if u.User != nil || u.Fragment != "" || u.Opaque != "" {
			t.Fatalf("accepted %q with userinfo, fragment or opaque part", raw)
		}
		host, port := asciiLower(u.Hostname()), u.Port()
		for i := 0; i < len(host); i++ {
			if host[i] >= 0x80 {
				t.Fatalf("accepted %q with a non-ASCII host", raw)
			}
		}
		if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
			port = ""
		}
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		origin := u.Scheme + "://" + host
		if port != "" {
			origin += ":" + port
		}
		for _, a := range allowed {
			if origin == a {
				return
			}
		}
		t.Fatalf("accepted %q with origin %q, not one of %v", raw, origin, allowed)
	})
}

// TestCheckReturnToNamesTheRefusedOrigin: the answer and the log (the
// cause) say which origin was refused, and nothing more of the URL.
func TestCheckReturnToNamesTheRefusedOrigin(t *testing.T) {
	err := newFlow().CheckReturnTo("http://localhost:3001/app/done?tab=inbox")
	e := apperr.As(err)
	if e == nil || e.Cause == nil {
		t.Fatalf("got %v, want invalid_return_to with a cause", err)
	}
	for _, s := range []string{e.Message, e.Cause.Error()} {
		if !strings.Contains(s, "http://localhost:3001") || strings.Contains(s, "tab=inbox") || strings.Contains(s, "/app/done") {
			t.Errorf("%q: want the origin http://localhost:3001 named, and no path or query", s)
		}
	}
}
