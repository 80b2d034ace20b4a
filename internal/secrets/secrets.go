// Package secrets reads the two secrets the functions need — the OAuth client
// JSON and the app keyset — from a local file or from Secret Manager, once per
// instance, and never logs or returns their values in errors.
//
// FileSource and SecretManagerSource implement Source. Both return *Error,
// whose Kind (NotFound, PermissionDenied, Unavailable, Invalid, Other) callers
// inspect with errors.As. ParseClientJSON and LoadClientConfig turn Google's
// OAuth client JSON (the "web" shape) into a ClientConfig.
package secrets

import "context"

// Source returns secret payloads by reference. A reference is a file path for
// a FileSource and a Secret Manager version name
// ("projects/P/secrets/S/versions/V", V a number or "latest") for the Secret
// Manager source.
type Source interface {
	// Secret returns the payload of ref, cached after the first successful read.
	Secret(ctx context.Context, ref string) ([]byte, error)
	// Refresh forgets the cached payload of ref, so the next Secret reads it
	// again (used when a key id is missing from a cached keyset).
	Refresh(ref string)
}
