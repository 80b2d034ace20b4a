package weburl_test

import (
	"testing"

	"example.com/gmailoauth/internal/weburl"
)

func TestParseReturnURL(t *testing.T) {
	for _, tc := range []struct {
		raw, want string // want "" = refused
	}{
		{"https://app.example.com/oauth/done", "https://app.example.com/oauth/done"},
		{"HTTPS://App.Example.COM:443/oauth/done?x=1", "https://app.example.com/oauth/done?x=1"},
		{"https://app.example.com", "https://app.example.com/"},
		{"https://app.example.com/app/*", "https://app.example.com/app/*"},
		{"https://app.example.com/*", "https://app.example.com/*"},
		{"http://localhost:8081/", "http://localhost:8081/"},
		{"http://[::1]:3000/cb", "http://[::1]:3000/cb"},

		{"http://app.example.com/", ""},
		{"https://app.example.com/app*", ""},
		{"https://app.example.com/app/?q=1*", ""},
		{"https://app.example.com/done#", ""},
		{"https://app.example.com/done#x", ""},
		{"https://user@app.example.com/", ""},
		{"https://app.example.com/a/./b", ""},
		{"https://app.example.com/a/%2E%2E/b", ""},
		{"https://app.example.com/a%2Fb", ""},
		{"https://app.example.com/a b", ""},
		{`https://app.example.com\x`, ""},
		{"ftp://app.example.com/", ""},
		{"/relative", ""},
		{"https://\u212Aite.example/", ""},
	} {
		r, err := weburl.ParseReturnURL(tc.raw)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("ParseReturnURL(%q) = %v, want an error", tc.raw, r)
		case tc.want != "" && err != nil:
			t.Errorf("ParseReturnURL(%q): %v", tc.raw, err)
		case tc.want != "" && r.String() != tc.want:
			t.Errorf("ParseReturnURL(%q) = %q, want %q", tc.raw, r.String(), tc.want)
		}
	}
}

func TestMatchReturnURL(t *testing.T) {
	var rules []weburl.ReturnURL
	for _, raw := range []string{"https://app.example.com/oauth/done", "https://app.example.com/app/*", "http://localhost:8081/"} {
		r, err := weburl.ParseReturnURL(raw)
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, r)
	}
	for _, tc := range []struct {
		raw string
		ok  bool
	}{
		{"https://app.example.com/oauth/done", true},
		{"https://APP.example.com:443/oauth/done", true},
		{"https://app.example.com/app/", true},
		{"https://app.example.com/app/x/y?z=1", true},
		{"http://localhost:8081/", true},
		{"http://localhost:8081", true},

		{"https://app.example.com/oauth/done?x=1", false},
		{"https://app.example.com/oauth/done?", false},
		{"https://app.example.com/oauth/done/", false},
		{"https://app.example.com/oauth/done#", false},
		{"https://app.example.com/app", false},
		{"https://app.example.com/apple/", false},
		{"https://app.example.com/app/../x", false},
		{"https://app.example.com/app/%2e%2e/x", false},
		{"https://app.example.com/app%2f..%2fx", false},
		{"https://app.example.com/", false},
		{"http://localhost:8081/other", false},
		{"http://localhost:8082/", false},
		{"https://evil.example/oauth/done", false},
		{"https://app.example.com@evil.example/oauth/done", false},
	} {
		if got := weburl.MatchReturnURL(rules, tc.raw); got != tc.ok {
			t.Errorf("MatchReturnURL(%q) = %v, want %v", tc.raw, got, tc.ok)
		}
	}
}
