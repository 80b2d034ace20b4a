package gmail_test

import (
	"testing"

	"example.com/gmailoauth/internal/gmail"
)

func TestCanList(t *testing.T) {
	tests := []struct {
		name    string
		granted []string
		want    bool
	}{
		{"readonly", []string{"openid", gmail.ScopeReadonly}, true},
		{"modify", []string{"https://www.googleapis.com/auth/gmail.modify"}, true},
		{"full", []string{"https://mail.google.com/"}, true},
		{"metadata only", []string{"https://www.googleapis.com/auth/gmail.metadata"}, false},
		{"send only", []string{"https://www.googleapis.com/auth/gmail.send"}, false},
		{"prefix look-alike", []string{gmail.ScopeReadonly + ".evil"}, false},
		{"identity only", []string{"openid", "email"}, false},
		{"none", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := gmail.CanList(tt.granted); got != tt.want {
				t.Errorf("CanList(%v): got %v, want %v", tt.granted, got, tt.want)
			}
		})
	}
}
