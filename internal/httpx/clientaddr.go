package httpx

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientAddr returns the address a request came from, as a key for
// per-client bounds: an IPv4 address, or the /64 network of an IPv6 one
// (one subscriber's share), or "" when none can be told.
//
// Behind Google's front end (fromForwardedFor: a Cloud Function or Cloud
// Run service reached on its own URL) the connection's peer is Google's
// proxy, and the client's address is the entry the front end added at the
// END of X-Forwarded-For. Entries before it are whatever the client sent,
// so they are never read: a client cannot choose its key. Google documents
// the header as "<unverified IP(s)>, <immediate client IP>, …", where only
// the entries it appends are its own
// (https://cloud.google.com/load-balancing/docs/https#x-forwarded-for_header);
// on a function's own URL nothing comes after the client's address
// (Cloud Run container contract,
// https://cloud.google.com/run/docs/container-contract). Behind an extra
// load balancer of your own, the last entry is that balancer's, and every
// client shares one key.
//
// Locally (no front end) it is the connection's peer, RemoteAddr.
func ClientAddr(r *http.Request, fromForwardedFor bool) string {
	raw := r.RemoteAddr
	if host, _, err := net.SplitHostPort(raw); err == nil {
		raw = host
	}
	if fromForwardedFor {
		raw = ""
		if h := r.Header.Values("X-Forwarded-For"); len(h) > 0 {
			all := strings.Split(h[len(h)-1], ",")
			raw = strings.TrimSpace(all[len(all)-1])
		}
	}
	a, err := netip.ParseAddr(raw)
	if err != nil {
		return ""
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
