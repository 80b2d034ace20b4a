package weburl_test

import (
	"net/url"
	"testing"

	"example.com/gmailoauth/internal/weburl"
)

func TestNormalizeOrigin(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "https://app.example.com", want: "https://app.example.com"},
		{in: "https://app.example.com/", want: "https://app.example.com"},
		{in: "https://app.example.com:443", want: "https://app.example.com"},
		{in: "http://app.example.com:80", want: "http://app.example.com"},
		{in: "https://app.example.com:80", want: "https://app.example.com:80"},
		{in: "http://app.example.com:443", want: "http://app.example.com:443"},
		{in: "HTTPS://APP.Example.COM:8443", want: "https://app.example.com:8443"},
		{in: "  https://app.example.com  ", want: "https://app.example.com"},
		{in: "http://[::1]:3000", want: "http://[::1]:3000"},
		{in: "https://[2001:DB8::1]:443", want: "https://[2001:db8::1]"},
		{in: "http://127.0.0.1:8080", want: "http://127.0.0.1:8080"},
		{in: "https://app.example.com/path", wantErr: true},
		{in: "https://app.example.com?q=1", wantErr: true},
		{in: "https://app.example.com#f", wantErr: true},
		{in: "https://user@app.example.com", wantErr: true},
		{in: "https://user:pw@app.example.com", wantErr: true},
		{in: "ftp://app.example.com", wantErr: true},
		{in: "javascript:alert(1)", wantErr: true},
		{in: "app.example.com", wantErr: true},
		{in: "//app.example.com", wantErr: true},
		{in: "https://", wantErr: true},
		{in: "", wantErr: true},
		{in: "null", wantErr: true},
		{in: "*", wantErr: true},
		{in: "https://app.example.com:port", wantErr: true},
		{in: "https://[::1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := weburl.NormalizeOrigin(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NormalizeOrigin(%q) error: got %v, want error %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("NormalizeOrigin(%q): got %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestOrigin(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://App.Example.com/a/b?c=d#e", "https://app.example.com"},
		{"https://app.example.com:443/x", "https://app.example.com"},
		{"http://app.example.com:80/x", "http://app.example.com"},
		{"http://app.example.com:8080/x", "http://app.example.com:8080"},
		{"https://[FE80::1]:444/", "https://[fe80::1]:444"},
		{"https://[::1]/", "https://[::1]"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			u, err := url.Parse(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := weburl.Origin(u); got != tt.want {
				t.Errorf("Origin(%q): got %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
