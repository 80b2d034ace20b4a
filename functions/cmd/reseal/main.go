// Command reseal re-encrypts every stored token with the app keyset's
// primary key, after a rotation (go run ./functions/cmd/keyset -rotate).
// Run it with the functions' own configuration, for example:
//
//	GOOGLE_CLOUD_PROJECT=my-project \
//	OAUTH_CLIENT_SECRET=projects/my-project/secrets/gmail-oauth-client/versions/latest \
//	APP_KEYS_SECRET=projects/my-project/secrets/gmail-app-keys/versions/latest \
//	OAUTH_REDIRECT_URL=https://REGION-my-project.cloudfunctions.net/gmail-oauth-callback \
//	go run ./functions/cmd/reseal
package main

import (
	"context"
	"fmt"
	"os"

	"example.com/gmailoauth/internal/app"
)

func main() {
	ctx := context.Background()
	d, err := app.New(app.Options{}).Deps(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reseal: the configuration or secrets are not usable (see the log line above)")
		os.Exit(1)
	}
	scanned, resealed, err := d.ResealAll(ctx)
	fmt.Printf("reseal: %d credentials read, %d re-encrypted with the primary key\n", scanned, resealed)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reseal:", err)
		os.Exit(1)
	}
}
