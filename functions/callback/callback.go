// Package callback is the OAuthCallback Cloud Function. It only registers the
// function; everything it does lives in internal/app.
package callback

import (
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"example.com/gmailoauth/internal/app"
)

func init() {
	functions.HTTP("OAuthCallback", app.OAuthCallback)
}
