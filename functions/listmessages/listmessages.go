// Package listmessages is the ListMessages Cloud Function. It only registers the
// function; everything it does lives in internal/app.
package listmessages

import (
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"example.com/gmailoauth/internal/app"
)

func init() {
	functions.HTTP("ListMessages", app.ListMessages)
}
