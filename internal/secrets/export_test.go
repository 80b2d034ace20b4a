package secrets

import (
	"context"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"google.golang.org/api/option"
)

// SetNewClient replaces the function s uses to create its client, so tests can
// count creations and inject failures.
func (s *SecretManagerSource) SetNewClient(f func(context.Context, ...option.ClientOption) (*secretmanager.Client, error)) {
	s.newClient = f
}

// FileError exposes fileError for tests of error mapping that cannot be
// produced portably (permission errors when running as root).
var FileError = fileError
