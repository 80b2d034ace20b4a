package devserver_test

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"example.com/gmailoauth/internal/local/devtest"
	"example.com/gmailoauth/internal/local/sandbox"
)

// dnsFailure fails every call to the token endpoint as a resolver would
// for an unknown host, at once.
type dnsFailure struct{ base http.RoundTripper }

func (d dnsFailure) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/token") {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "oauth2.googleapis.com", IsNotFound: true}}
	}
	return d.base.RoundTrip(r)
}

// callbackLines returns the request lines of /callback in the logs.
func callbackLines(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		if hr, ok := m["httpRequest"].(map[string]any); ok && hr["requestUrl"] == "/callback" {
			out = append(out, m)
		}
	}
	return out
}

// TestCodeExchangeFailures: a token endpoint that cannot be reached and one
// that does not answer in time are told apart, both tell the user to start
// again from Authorize (the state is spent), and the failure is logged once
// at the same severity whether the callback answers JSON or sends the
// browser back to return_to.
func TestCodeExchangeFailures(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      devtest.Options
		faults    sandbox.TokenFaults
		wantWords string
	}{
		{"unreachable", devtest.Options{Transport: dnsFailure{http.DefaultTransport}}, sandbox.TokenFaults{}, "could not be reached"},
		{"too slow", devtest.Options{Env: map[string]string{"OUTBOUND_TIMEOUT": "200ms"}}, sandbox.TokenFaults{Latency: 2 * time.Second}, "did not answer in time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.ReturnPaths = []string{"/app/done"}
			s := devtest.Start(t, tc.opts)
			s.Sandbox.SetTokenFaults(tc.faults)
			returnTo := s.URL + "/app/done"

			// JSON: no return_to.
			r := s.Get(t, consentRedirect(t, s, begin(t, s, "login_hint=ivan@example.com", nil)).String(), nil)
			wantError(t, r, http.StatusServiceUnavailable, "upstream_unavailable")
			if body := string(r.Body); !strings.Contains(body, tc.wantWords) || !strings.Contains(body, "start again from Authorize") ||
				strings.Contains(body, "try again shortly") {
				t.Errorf("JSON answer %s: want %q and \"start again from Authorize\" (not \"try again shortly\": the state is spent)", body, tc.wantWords)
			}
			if r.Header.Get("Retry-After") != "" {
				t.Errorf("Retry-After on a spent state")
			}

			// Redirect: the same failure in the fragment of return_to.
			r = s.Get(t, consentRedirect(t, s, begin(t, s, "login_hint=ivan@example.com&return_to="+url.QueryEscape(returnTo), nil)).String(), nil)
			if r.Status != http.StatusFound || r.Location == nil {
				t.Fatalf("with return_to: got %d %s, want 302", r.Status, r.Body)
			}
			f, _ := url.ParseQuery(r.Location.EscapedFragment())
			if f.Get("error") != "upstream_unavailable" || !strings.Contains(f.Get("error_description"), tc.wantWords) || f.Get("authorization_url") == "" {
				t.Errorf("fragment %q: want upstream_unavailable saying %q, with an authorization_url", r.Location.Fragment, tc.wantWords)
			}

			lines := callbackLines(t, s.Logs.String())
			if len(lines) != 2 {
				t.Fatalf("got %d request lines for /callback, want 2 (one per request):\n%s", len(lines), s.Logs.String())
			}
			for i, l := range lines {
				if l["severity"] != "ERROR" || l["code"] != "upstream_unavailable" {
					t.Errorf("callback %d logged at %v with code %v, want ERROR upstream_unavailable on both paths", i, l["severity"], l["code"])
				}
			}
			if n := strings.Count(s.Logs.String(), `"callback failed"`); n != 0 {
				t.Errorf("the redirect path logged the failure again (%d lines)", n)
			}
		})
	}
}
