// Package weburl holds the rules for the web addresses the functions take
// from their configuration and from browsers: what an origin is and how it
// is compared, and which URLs may be endpoints. It is a leaf: configuration,
// the OAuth flow and the HTTP layer all use it, and it uses none of them.
package weburl

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// NormalizeOrigin returns the origin scheme://host[:port] of raw,
// lower-cased, with default ports removed. It refuses anything that is not a
// bare http(s) origin (paths other than "/", queries, fragments,
// credentials).
func NormalizeOrigin(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("origin %q does not parse", raw)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("origin %q must be scheme://host[:port]", raw)
	}
	return Origin(u), nil
}

// Origin returns u's origin, lower-cased, without a default port.
func Origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		return scheme + "://" + host + ":" + port
	}
	return scheme + "://" + host
}

// IsLoopback reports whether host is localhost or a loopback address.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckEndpoint accepts absolute https URLs, and http only for loopback
// hosts (local runs and tests).
func CheckEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("must be an absolute URL, got %q", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if IsLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("must use https (http only for localhost), got %q", raw)
	}
	return fmt.Errorf("must be an http(s) URL, got %q", raw)
}
