// Package gmailpush is the GmailPush Cloud Function: Eventarc delivers it the
// messages of the notification topic (Gmail's push notifications, and the
// tasks the callback and the sweep hand it). It only registers the function;
// everything it does lives in internal/app and internal/push.
package gmailpush

import (
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"example.com/gmailoauth/internal/app"
)

func init() {
	functions.CloudEvent("GmailPush", app.GmailPush)
}
