// Package authorize is the Authorize Cloud Function. It only registers the
// function; everything it does lives in internal/app.
package authorize

import (
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"example.com/gmailoauth/internal/app"
)

func init() {
	functions.HTTP("Authorize", app.Authorize)
}
