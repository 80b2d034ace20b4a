package secrets

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Kind classifies why a secret could not be read, so callers can react (for
// example answer 500 misconfigured for NotFound and PermissionDenied, and let a
// later request try again for Unavailable).
type Kind int

const (
	// Other is any failure not covered by a more specific kind, such as a
	// client that cannot be created or an unauthenticated call.
	Other Kind = iota
	// NotFound means the file, the secret or the requested version does not
	// exist (or the version has been destroyed).
	NotFound
	// PermissionDenied means the caller may not read the secret: the
	// service account lacks roles/secretmanager.secretAccessor, or the file
	// is not readable by the process.
	PermissionDenied
	// Unavailable means Secret Manager did not answer in time (gRPC
	// Unavailable, DeadlineExceeded or ResourceExhausted, or an expired
	// context); a later read may succeed.
	Unavailable
	// Invalid means the reference is malformed or the payload is unusable
	// (empty, or its CRC32C checksum does not match).
	Invalid
)

// String returns the kind in plain words, such as "not found".
func (k Kind) String() string {
	switch k {
	case Other:
		return "other"
	case NotFound:
		return "not found"
	case PermissionDenied:
		return "permission denied"
	case Unavailable:
		return "unavailable"
	case Invalid:
		return "invalid"
	default:
		return fmt.Sprintf("Kind(%d)", int(k))
	}
}

// Error is the error every Source in this package returns. It names the secret
// reference and the kind of failure, with a hint on how to fix it, and never
// contains the secret's payload. Callers inspect it with errors.As.
type Error struct {
	// Ref is the reference that was read: a file path or a Secret Manager
	// version name.
	Ref string
	// Kind classifies the failure.
	Kind Kind
	// Err is the underlying error (a gRPC status error, an fs error, a
	// context error or a description of the problem); it may be nil.
	Err error
}

// Error returns a message such as
//
//	secret "projects/p/secrets/oauth-client/versions/latest": not found (create a version with gcloud secrets versions add oauth-client --data-file=FILE): rpc error: ...
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "secret %q: %s", e.Ref, e.describe())
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// describe returns the kind in plain words together with a hint that fits
// the kind of reference (Secret Manager version name or file path).
func (e *Error) describe() string {
	secretID, smErr := parseVersionName(e.Ref)
	isSM := smErr == nil
	switch e.Kind {
	case NotFound:
		if isSM {
			return fmt.Sprintf("not found (create a version with gcloud secrets versions add %s --data-file=FILE)", secretID)
		}
		return "not found (no such file)"
	case PermissionDenied:
		if isSM {
			return "permission denied (the function's service account needs roles/secretmanager.secretAccessor on this secret)"
		}
		return "permission denied (the process cannot read this file)"
	case Unavailable:
		return "unavailable (Secret Manager did not answer in time; a later request will try again)"
	case Invalid:
		return "invalid"
	case Other:
		return "could not be read"
	default:
		return e.Kind.String()
	}
}

// rpcError maps an error from AccessSecretVersion to an *Error.
func rpcError(ref string, err error) *Error {
	kind := Other
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		kind = Unavailable
	case errors.Is(err, context.Canceled):
		kind = Other
	default:
		switch status.Code(err) {
		case codes.NotFound:
			kind = NotFound
		case codes.PermissionDenied:
			kind = PermissionDenied
		case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
			kind = Unavailable
		case codes.InvalidArgument:
			kind = Invalid
		}
	}
	return &Error{Ref: ref, Kind: kind, Err: err}
}

// contextError maps a caller's context error to an *Error.
func contextError(ref string, err error) *Error {
	kind := Other
	if errors.Is(err, context.DeadlineExceeded) {
		kind = Unavailable
	}
	return &Error{Ref: ref, Kind: kind, Err: err}
}

// fileError maps an error from reading a file to an *Error.
func fileError(ref string, err error) *Error {
	kind := Other
	switch {
	case errors.Is(err, fs.ErrNotExist):
		kind = NotFound
	case errors.Is(err, fs.ErrPermission):
		kind = PermissionDenied
	}
	return &Error{Ref: ref, Kind: kind, Err: err}
}
