package secrets_test

import (
	"context"
	"errors"
	"testing"

	"example.com/gmailoauth/internal/secrets"
)

func TestErrorMessage(t *testing.T) {
	cause := errors.New("cause")
	tests := []struct {
		name string
		err  *secrets.Error
		want string
	}{
		{
			name: "not found, Secret Manager",
			err:  &secrets.Error{Ref: latestA, Kind: secrets.NotFound},
			want: `secret "projects/p/secrets/oauth-client/versions/latest": not found (create a version with gcloud secrets versions add oauth-client --data-file=FILE)`,
		},
		{
			name: "permission denied, Secret Manager",
			err:  &secrets.Error{Ref: latestA, Kind: secrets.PermissionDenied, Err: cause},
			want: `secret "projects/p/secrets/oauth-client/versions/latest": permission denied (the function's service account needs roles/secretmanager.secretAccessor on this secret): cause`,
		},
		{
			name: "unavailable",
			err:  &secrets.Error{Ref: latestA, Kind: secrets.Unavailable},
			want: `secret "projects/p/secrets/oauth-client/versions/latest": unavailable (Secret Manager did not answer in time; a later request will try again)`,
		},
		{
			name: "invalid",
			err:  &secrets.Error{Ref: "x", Kind: secrets.Invalid, Err: cause},
			want: `secret "x": invalid: cause`,
		},
		{
			name: "other",
			err:  &secrets.Error{Ref: "x", Kind: secrets.Other, Err: cause},
			want: `secret "x": could not be read: cause`,
		},
		{
			name: "not found, file",
			err:  &secrets.Error{Ref: "/etc/app/keys.json", Kind: secrets.NotFound},
			want: `secret "/etc/app/keys.json": not found (no such file)`,
		},
		{
			name: "unknown kind",
			err:  &secrets.Error{Ref: "x", Kind: secrets.Kind(42)},
			want: `secret "x": Kind(42)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestErrorUnwrapAndAs(t *testing.T) {
	var err error = &secrets.Error{Ref: latestA, Kind: secrets.Unavailable, Err: context.DeadlineExceeded}
	wrapped := errors.Join(errors.New("loading config"), err)
	var se *secrets.Error
	if !errors.As(wrapped, &se) {
		t.Fatalf("errors.As(%v) = false, want true", wrapped)
	}
	if se.Kind != secrets.Unavailable {
		t.Errorf("Kind = %v, want %v", se.Kind, secrets.Unavailable)
	}
	if !errors.Is(wrapped, context.DeadlineExceeded) {
		t.Errorf("errors.Is(%v, context.DeadlineExceeded) = false, want true", wrapped)
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[secrets.Kind]string{
		secrets.Other:            "other",
		secrets.NotFound:         "not found",
		secrets.PermissionDenied: "permission denied",
		secrets.Unavailable:      "unavailable",
		secrets.Invalid:          "invalid",
	} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
}
