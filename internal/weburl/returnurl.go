package weburl

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// ReturnURL is one entry of the return URL allow-list (ALLOWED_RETURN_URLS):
// where the OAuth callback may send the browser, with the user's session in
// the fragment. An entry is an exact URL ("https://app.example.com/oauth/done"
// allows that URL only, no other query), or a path prefix ending in "/*"
// ("https://app.example.com/app/*" allows every URL whose path starts with
// /app/, with any query). An origin alone is never enough: every page of it
// would receive sessions, an open redirect among them.
type ReturnURL struct {
	// Origin is the entry's origin, normalised as Origin does.
	Origin string
	// Path is the entry's escaped path ("/" when empty); for a prefix, it
	// ends in "/".
	Path string
	// Query is an exact entry's query with its "?", or "".
	Query string
	// Prefix says Path is a prefix.
	Prefix bool
}

// String returns the entry as written in the configuration, normalised.
func (r ReturnURL) String() string {
	if r.Prefix {
		return r.Origin + r.Path + "*"
	}
	return r.Origin + r.Path + r.Query
}

// URL returns a URL the entry allows: the exact URL, or the prefix itself.
func (r ReturnURL) URL() string { return r.Origin + r.Path + r.Query }

// ParseReturnURL parses one allow-list entry. It refuses what cannot be
// compared safely: anything but an absolute http(s) URL; http off loopback
// hosts; credentials; a fragment or a bare "#"; non-ASCII hosts; spaces,
// backslashes and control characters; dot segments and encoded slashes in
// the path; a query on a prefix.
func ParseReturnURL(raw string) (ReturnURL, error) {
	prefix := strings.HasSuffix(raw, "*")
	s := strings.TrimSuffix(raw, "*")
	u, err := parseWebURL(s)
	if err != nil {
		return ReturnURL{}, fmt.Errorf("return URL %q %w", raw, err)
	}
	if u.Scheme == "http" && !IsLoopback(u.Hostname()) {
		return ReturnURL{}, fmt.Errorf("return URL %q must use https (http only for localhost)", raw)
	}
	r := ReturnURL{Origin: Origin(u), Path: escapedPath(u), Query: query(u), Prefix: prefix}
	if prefix && (!strings.HasSuffix(r.Path, "/") || r.Query != "") {
		return ReturnURL{}, fmt.Errorf("return URL %q: a prefix ends in /* and has no query", raw)
	}
	return r, nil
}

// MatchReturnURL reports whether raw, a return_to from a browser, is
// allowed by one of rules: on an entry's origin and either equal to an
// exact entry (path and query) or under a prefix. The same parsing as the
// entries' applies, so a URL a browser would resolve out of a prefix
// (dot segments, encoded slashes) or that ends in "#" never matches.
func MatchReturnURL(rules []ReturnURL, raw string) bool {
	u, err := parseWebURL(raw)
	if err != nil {
		return false
	}
	origin, path, q := Origin(u), escapedPath(u), query(u)
	for _, r := range rules {
		if r.Origin != origin {
			continue
		}
		if r.Prefix && strings.HasPrefix(path, r.Path) || !r.Prefix && path == r.Path && q == r.Query {
			return true
		}
	}
	return false
}

// parseWebURL parses an absolute http(s) URL that is safe to compare and
// to redirect to, or says what is wrong with it.
func parseWebURL(raw string) (*url.URL, error) {
	if !utf8.ValidString(raw) || strings.ContainsAny(raw, "\\ #") || strings.ContainsFunc(raw, isControl) {
		return nil, errors.New("must not contain spaces, backslashes, control characters or a fragment (#)")
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Opaque != "" || u.Host == "" {
		return nil, errors.New("must be an absolute http(s) URL")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, errors.New("must be an absolute http(s) URL")
	}
	if u.User != nil {
		return nil, errors.New("must not carry credentials")
	}
	for i := 0; i < len(u.Host); i++ {
		if u.Host[i] >= utf8.RuneSelf {
			// Non-ASCII hosts fold (K/\u212a) and IDNA-map unlike the list.
			return nil, errors.New("must have an ASCII host")
		}
	}
	if err := checkPath(escapedPath(u)); err != nil {
		return nil, err
	}
	return u, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// checkPath refuses paths a browser or server may resolve differently from
// a string comparison: dot segments, plain or percent-encoded, and encoded
// slashes or backslashes.
func checkPath(p string) error {
	lower := strings.ToLower(p)
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") {
		return errors.New("must not contain an encoded slash in its path")
	}
	for _, seg := range strings.Split(strings.ReplaceAll(lower, "%2e", "."), "/") {
		if seg == "." || seg == ".." {
			return errors.New("must not contain . or .. segments in its path")
		}
	}
	return nil
}

// escapedPath is u's escaped path, "/" for an empty one.
func escapedPath(u *url.URL) string {
	if p := u.EscapedPath(); p != "" {
		return p
	}
	return "/"
}

// query is u's query with its "?", or "" when it has none.
func query(u *url.URL) string {
	if u.RawQuery == "" && !u.ForceQuery {
		return ""
	}
	return "?" + u.RawQuery
}
