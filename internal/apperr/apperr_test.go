package apperr_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"example.com/gmailoauth/internal/apperr"
)

func TestCodeOf(t *testing.T) {
	base := apperr.New(apperr.Unavailable, "storage is unavailable")
	for _, tt := range []struct {
		name string
		err  error
		want apperr.Code
	}{
		{"nil", nil, ""},
		{"coded", base, apperr.Unavailable},
		{"wrapped with %w", fmt.Errorf("fsstore: get: %w", base), apperr.Unavailable},
		{"joined", errors.Join(errors.New("x"), apperr.New(apperr.RateLimited, "m")), apperr.RateLimited},
		{"outermost wins", apperr.Wrap(apperr.UpstreamUnavailable, "m", base), apperr.UpstreamUnavailable},
		{"no code", context.Canceled, apperr.Internal},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := apperr.CodeOf(tt.err); got != tt.want {
				t.Errorf("CodeOf: got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTemporary(t *testing.T) {
	for code, want := range map[apperr.Code]bool{
		apperr.Unavailable: true, apperr.UpstreamUnavailable: true, apperr.RateLimited: true,
		apperr.UpstreamError: false, apperr.InvalidGrant: false, apperr.Internal: false,
	} {
		if got := apperr.Temporary(apperr.New(code, "m")); got != want {
			t.Errorf("Temporary(%s): got %v, want %v", code, got, want)
		}
	}
}

func TestCodesAreDistinct(t *testing.T) {
	seen := map[apperr.Code]bool{}
	for _, c := range apperr.Codes() {
		if seen[c] {
			t.Errorf("code %q listed twice", c)
		}
		seen[c] = true
	}
}

func TestErrorMessage(t *testing.T) {
	e := apperr.Wrap(apperr.Internal, "internal error", errors.New("boom"))
	if got, want := e.Error(), "internal: internal error: boom"; got != want {
		t.Errorf("Error(): got %q, want %q", got, want)
	}
	if !errors.Is(e, e.Cause) {
		t.Errorf("errors.Is(e, cause): false, want true")
	}
}
