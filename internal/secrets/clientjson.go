package secrets

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
)

// ClientConfig is the part of Google's OAuth client JSON ("credentials.json",
// type Web application) the functions use. Its String, GoString and LogValue
// methods redact ClientSecret, so printing or logging it does not leak it.
type ClientConfig struct {
	// ClientID is the OAuth client ID.
	ClientID string
	// ClientSecret is the OAuth client secret.
	ClientSecret string
	// RedirectURIs are the client's authorized redirect URIs, in file
	// order; empty when the file lists none. The endpoints the file also
	// names (auth_uri, token_uri) are not read: the configuration says
	// which endpoints to call.
	RedirectURIs []string
}

// String returns a description of c with the client secret redacted.
func (c *ClientConfig) String() string {
	if c == nil {
		return "<nil>"
	}
	return fmt.Sprintf("ClientConfig{ClientID: %q, ClientSecret: %s, RedirectURIs: %q}",
		c.ClientID, redacted(c.ClientSecret), c.RedirectURIs)
}

// GoString returns the same redacted description as String, for %#v.
func (c *ClientConfig) GoString() string { return c.String() }

// LogValue implements slog.LogValuer with the client secret redacted.
func (c *ClientConfig) LogValue() slog.Value {
	if c == nil {
		return slog.StringValue("<nil>")
	}
	return slog.GroupValue(
		slog.String("client_id", c.ClientID),
		slog.String("client_secret", redacted(c.ClientSecret)),
		slog.Any("redirect_uris", c.RedirectURIs),
	)
}

func redacted(s string) string {
	if s == "" {
		return `""`
	}
	return "REDACTED"
}

// ClientJSONError reports why an OAuth client JSON could not be used. Its
// message names the problem (and the field, when there is one) but never the
// client secret or the raw JSON.
type ClientJSONError struct {
	// Reason describes the problem in plain words.
	Reason string
}

// Error returns "oauth client JSON: " followed by the reason.
func (e *ClientJSONError) Error() string { return "oauth client JSON: " + e.Reason }

// clientFile is the top level of Google's client JSON.
type clientFile struct {
	Web       *clientSection  `json:"web"`
	Installed json.RawMessage `json:"installed"`
	Type      string          `json:"type"`
}

// clientSection is the "web" (or "installed") object of Google's client JSON.
type clientSection struct {
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret"`
	RedirectURIs []string `json:"redirect_uris"`
}

// ParseClientJSON parses Google's OAuth client JSON, as downloaded from the
// Cloud console for an OAuth client of type Web application, whose fields are
// in a "web" object. A Desktop client ("installed") is refused, because the
// callback needs the web client's registered redirect URI; so is a service
// account key. Malformed JSON, a missing "web" object, an empty client_id or
// client_secret, and redirect URIs that are not absolute http(s) URLs are
// reported as a *ClientJSONError, whose message never
// contains the secret or the raw JSON.
func ParseClientJSON(data []byte) (*ClientConfig, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a BOM from editors on Windows
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &ClientJSONError{Reason: "the data is empty"}
	}
	var f clientFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, &ClientJSONError{Reason: describeJSONError(err)}
	}
	switch {
	case f.Web != nil:
	case f.Type == "service_account":
		return nil, &ClientJSONError{Reason: "this is a service account key, not an OAuth client; " + downloadHint}
	case f.Installed != nil:
		return nil, &ClientJSONError{Reason: `this is a Desktop app client ("installed"); a Web application client ("web") is required; ` + downloadHint}
	default:
		return nil, &ClientJSONError{Reason: `no "web" object; ` + downloadHint}
	}
	w := f.Web
	switch {
	case strings.TrimSpace(w.ClientID) == "":
		return nil, &ClientJSONError{Reason: "web.client_id is missing or empty"}
	case strings.TrimSpace(w.ClientSecret) == "":
		return nil, &ClientJSONError{Reason: "web.client_secret is missing or empty"}
	}
	for i, u := range w.RedirectURIs {
		if !absoluteHTTPURL(u) {
			return nil, &ClientJSONError{Reason: fmt.Sprintf("web.redirect_uris[%d] (%q) is not an absolute http(s) URL", i, u)}
		}
	}
	return &ClientConfig{
		ClientID:     w.ClientID,
		ClientSecret: w.ClientSecret,
		RedirectURIs: w.RedirectURIs,
	}, nil
}

// LoadClientConfig reads the OAuth client JSON ref from src and parses it
// with ParseClientJSON. A read failure is returned as is (an *Error); a parse
// failure is an *Error of Kind Invalid wrapping the *ClientJSONError.
func LoadClientConfig(ctx context.Context, src Source, ref string) (*ClientConfig, error) {
	data, err := src.Secret(ctx, ref)
	if err != nil {
		return nil, err
	}
	c, err := ParseClientJSON(data)
	if err != nil {
		return nil, &Error{Ref: ref, Kind: Invalid, Err: err}
	}
	return c, nil
}

const downloadHint = `download the OAuth 2.0 client of type "Web application" from Google Cloud console > APIs & Services > Credentials`

// describeJSONError turns an encoding/json error into a description that
// contains positions, field names and JSON types only, never input bytes
// (a SyntaxError's message quotes the offending character).
func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON (syntax error at byte offset %d)", syn.Offset)
	case errors.As(err, &typ):
		// Value is a description such as "number -5": keep the type only.
		got, _, _ := strings.Cut(typ.Value, " ")
		if typ.Field == "" {
			return fmt.Sprintf("the top level must be a JSON object, not %s", got)
		}
		return fmt.Sprintf("field %q has the wrong type (JSON %s, want %s)", typ.Field, got, typ.Type)
	default:
		return "malformed JSON"
	}
}

// absoluteHTTPURL reports whether s is an absolute http or https URL with a
// host.
func absoluteHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}
