package secrets_test

import (
	"testing"
	"time"

	"github.com/googleapis/gax-go/v2"

	"example.com/gmailoauth/internal/secrets"
	"example.com/gmailoauth/internal/secrets/smtest"
)

// noRetry disables the client's retries, so a failing call returns at once
// instead of backing off for 2 s and more.
var noRetry = gax.WithRetry(func() gax.Retryer { return nil })

// setup starts a fake Secret Manager (smtest.Start) and returns a
// SecretManagerSource whose real client talks to it, with retries disabled.
// Both are stopped when the test ends.
func setup(t *testing.T) (*secrets.SecretManagerSource, *smtest.Server) {
	t.Helper()
	fake, opts := smtest.Start(t)
	src := secrets.NewSecretManagerSource(opts...).WithCallOptions(noRetry, gax.WithTimeout(10*time.Second))
	t.Cleanup(func() {
		if err := src.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return src, fake
}
