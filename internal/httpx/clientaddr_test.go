package httpx_test

import (
	"net/http/httptest"
	"testing"

	"example.com/gmailoauth/internal/httpx"
)

func TestClientAddr(t *testing.T) {
	for _, tc := range []struct {
		name    string
		remote  string
		xff     []string
		fromXFF bool
		want    string
	}{
		{"local: the peer", "10.1.2.3:5555", nil, false, "10.1.2.3"},
		{"local: X-Forwarded-For ignored", "10.1.2.3:5555", []string{"203.0.113.9"}, false, "10.1.2.3"},
		{"front end: the last entry", "169.254.1.1:80", []string{"198.51.100.7, 203.0.113.9"}, true, "203.0.113.9"},
		{"front end: a client's own entries are not its key", "169.254.1.1:80", []string{"1.1.1.1, 2.2.2.2, 203.0.113.9"}, true, "203.0.113.9"},
		{"front end: several header lines, the last one's last entry", "169.254.1.1:80", []string{"1.1.1.1", "203.0.113.9"}, true, "203.0.113.9"},
		{"front end: IPv6 by /64", "169.254.1.1:80", []string{"2001:db8:1:2:3:4:5:6"}, true, "2001:db8:1:2::/64"},
		{"front end: IPv4-mapped IPv6", "169.254.1.1:80", []string{"::ffff:203.0.113.9"}, true, "203.0.113.9"},
		{"front end: no header", "169.254.1.1:80", nil, true, ""},
		{"front end: garbage", "169.254.1.1:80", []string{"not-an-ip"}, true, ""},
		{"local IPv6 peer", "[2001:db8::1]:443", nil, false, "2001:db8::/64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := httpx.ClientAddr(r, tc.fromXFF); got != tc.want {
				t.Errorf("ClientAddr = %q, want %q", got, tc.want)
			}
		})
	}
}
