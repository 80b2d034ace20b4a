package secrets_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"example.com/gmailoauth/internal/secrets"
)

// clientSecret is the secret in every client JSON below; no error or printed
// form may contain it.
const clientSecret = "GOCSPX-" + "s3cr3t-never-print" // split so secret scanners do not flag a fake

const webJSON = `{"web":{
  "client_id":"123-abc.apps.googleusercontent.com",
  "project_id":"demo",
  "auth_uri":"https://accounts.google.com/o/oauth2/auth",
  "token_uri":"https://oauth2.googleapis.com/token",
  "auth_provider_x509_cert_url":"https://www.googleapis.com/oauth2/v1/certs",
  "client_secret":"` + clientSecret + `",
  "redirect_uris":["https://example.com/callback","http://localhost:8080/callback"],
  "javascript_origins":["https://example.com"]
}}`

func TestParseClientJSON(t *testing.T) {
	tests := []struct {
		name string
		data string
		want *secrets.ClientConfig
	}{
		{
			name: "web client as downloaded",
			data: webJSON,
			want: &secrets.ClientConfig{
				ClientID:     "123-abc.apps.googleusercontent.com",
				ClientSecret: clientSecret,
				RedirectURIs: []string{"https://example.com/callback", "http://localhost:8080/callback"},
			},
		},
		{
			name: "minimal web client",
			data: `{"web":{"client_id":"id","client_secret":"` + clientSecret + `"}}`,
			want: &secrets.ClientConfig{ClientID: "id", ClientSecret: clientSecret},
		},
		{
			// The file's endpoints are not used (the configuration names
			// them), so a malformed one must not stop the instance.
			name: "endpoints the functions do not read",
			data: `{"web":{"client_id":"id","client_secret":"` + clientSecret + `","token_uri":"ftp://x","auth_uri":"accounts.google.com"}}`,
			want: &secrets.ClientConfig{ClientID: "id", ClientSecret: clientSecret},
		},
		{
			name: "byte order mark and whitespace",
			data: "\ufeff \n" + `{"web":{"client_id":"id","client_secret":"` + clientSecret + `"}}` + "\n",
			want: &secrets.ClientConfig{ClientID: "id", ClientSecret: clientSecret},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := secrets.ParseClientJSON([]byte(tt.data))
			if err != nil {
				t.Fatalf("ParseClientJSON: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseClientJSON mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseClientJSONErrors(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		wantMsg string
	}{
		{name: "empty", data: "  ", wantMsg: "the data is empty"},
		{name: "truncated", data: webJSON[:len(webJSON)/2], wantMsg: "malformed JSON"},
		{name: "syntax error next to the secret", data: `{"web":{"client_secret":` + clientSecret + `}}`, wantMsg: "malformed JSON (syntax error at byte offset 25)"},
		{name: "not an object", data: `["` + clientSecret + `"]`, wantMsg: "the top level must be a JSON object, not array"},
		{name: "wrong field type", data: `{"web":{"client_id":12345,"client_secret":"` + clientSecret + `"}}`, wantMsg: `field "web.client_id" has the wrong type (JSON number, want string)`},
		{name: "no web section", data: `{"other":{"client_secret":"` + clientSecret + `"}}`, wantMsg: `no "web" object; download the OAuth 2.0 client of type "Web application"`},
		{name: "desktop client", data: `{"installed":{"client_id":"id","client_secret":"` + clientSecret + `"}}`, wantMsg: `Desktop app client ("installed"); a Web application client ("web") is required`},
		{name: "service account key", data: `{"type":"service_account","private_key":"` + clientSecret + `"}`, wantMsg: "service account key, not an OAuth client"},
		{name: "web is null", data: `{"web":null}`, wantMsg: `no "web" object`},
		{name: "empty client_id", data: `{"web":{"client_id":" ","client_secret":"` + clientSecret + `"}}`, wantMsg: "web.client_id is missing or empty"},
		{name: "missing client_secret", data: `{"web":{"client_id":"id"}}`, wantMsg: "web.client_secret is missing or empty"},
		{name: "relative redirect URI", data: `{"web":{"client_id":"id","client_secret":"` + clientSecret + `","redirect_uris":["https://ok.example/cb","/callback"]}}`, wantMsg: `web.redirect_uris[1] ("/callback") is not an absolute http(s) URL`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := secrets.ParseClientJSON([]byte(tt.data))
			if err == nil {
				t.Fatalf("ParseClientJSON = %v, want error", got)
			}
			var ce *secrets.ClientJSONError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T) is not a *secrets.ClientJSONError", err, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "oauth client JSON: ") || !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("error = %q, want prefix %q and %q", msg, "oauth client JSON: ", tt.wantMsg)
			}
			if strings.Contains(msg, clientSecret) || strings.Contains(msg, "s3cr3t") {
				t.Errorf("error %q contains the client secret", msg)
			}
			if len(tt.data) > 20 && strings.Contains(msg, strings.TrimSpace(tt.data)) {
				t.Errorf("error %q contains the raw JSON", msg)
			}
		})
	}
}

func TestClientConfigRedactsSecret(t *testing.T) {
	c, err := secrets.ParseClientJSON([]byte(webJSON))
	if err != nil {
		t.Fatalf("ParseClientJSON: %v", err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("loaded", "client", c)
	forms := map[string]string{
		"%v":  fmt.Sprintf("%v", c),
		"%+v": fmt.Sprintf("%+v", c),
		"%#v": fmt.Sprintf("%#v", c),
		//lint:ignore S1025 the %s verb itself is under test
		"%s":   fmt.Sprintf("%s", c), //nolint:staticcheck // the %s verb itself is under test
		"slog": logged.String(),
	}
	for name, s := range forms {
		if strings.Contains(s, clientSecret) {
			t.Errorf("%s form contains the client secret: %s", name, s)
		}
		if !strings.Contains(s, "123-abc.apps.googleusercontent.com") {
			t.Errorf("%s form lacks the client ID: %s", name, s)
		}
	}
	if !json.Valid(logged.Bytes()) {
		t.Errorf("slog output is not JSON: %s", logged.String())
	}
}

func TestLoadClientConfig(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.json", webJSON)
	bad := writeFile(t, dir, "bad.json", `{"installed":{"client_id":"id","client_secret":"`+clientSecret+`"}}`)
	src := secrets.NewFileSource()

	c, err := secrets.LoadClientConfig(t.Context(), src, good)
	if err != nil {
		t.Fatalf("LoadClientConfig(good): %v", err)
	}
	if got, want := c.ClientID, "123-abc.apps.googleusercontent.com"; got != want {
		t.Errorf("ClientID = %q, want %q", got, want)
	}

	tests := []struct {
		name     string
		ref      string
		wantKind secrets.Kind
		wantCE   bool
	}{
		{name: "unparsable", ref: bad, wantKind: secrets.Invalid, wantCE: true},
		{name: "missing", ref: dir + "/missing.json", wantKind: secrets.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := secrets.LoadClientConfig(t.Context(), src, tt.ref)
			se := asError(t, err)
			if se.Kind != tt.wantKind || se.Ref != tt.ref {
				t.Errorf("got Kind %v Ref %q, want Kind %v Ref %q", se.Kind, se.Ref, tt.wantKind, tt.ref)
			}
			var ce *secrets.ClientJSONError
			if got := errors.As(err, &ce); got != tt.wantCE {
				t.Errorf("errors.As(*ClientJSONError) = %v, want %v (error: %v)", got, tt.wantCE, err)
			}
			if strings.Contains(err.Error(), clientSecret) {
				t.Errorf("error %q contains the client secret", err)
			}
		})
	}
}
