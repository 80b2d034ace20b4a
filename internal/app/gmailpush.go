package app

import (
	"context"
	"errors"
	"log/slog"

	"github.com/cloudevents/sdk-go/v2/event"

	"example.com/gmailoauth/internal/logging"
	"example.com/gmailoauth/internal/push"
)

// GmailPush handles one message of the notification topic, delivered by
// Eventarc as a CloudEvent (google.cloud.pubsub.topic.v1.messagePublished):
// a Gmail notification, or a task the callback or the sweep published.
// nil acknowledges the message; an error makes Eventarc retry it.
func (a *App) GmailPush(ctx context.Context, e event.Event) error {
	d, err := a.Deps(ctx)
	if err != nil {
		return err // logged by the setup; retried once the instance can serve
	}
	if d.Push == nil {
		// Deployed without PUSH_TOPIC: there is nothing this function can do,
		// and retrying will not change that.
		d.Log.ErrorContext(ctx, "GmailPush received a message but PUSH_TOPIC is not set; acknowledged unprocessed")
		return nil
	}
	m, perr := push.ParseEnvelope(e.Data())
	if perr != nil {
		// A poison message: retrying cannot make it parse, and it must
		// block no other.
		d.Log.WarnContext(ctx, "GmailPush: not a Pub/Sub message; acknowledged unprocessed",
			slog.String("event_id", logging.Scrub(e.ID())), slog.String("type", logging.Scrub(e.Type())))
		return nil //nolint:nilerr // acknowledged: a redelivery would fail the same way
	}
	if m.ID == "" {
		m.ID = e.ID()
	}
	if m.PublishTime.IsZero() {
		m.PublishTime = e.Time()
	}
	if err := d.Push.Handle(ctx, m); err != nil {
		// The framework answers 500 and logs "Function error: …"; keep the
		// message free of anything a token could hide in.
		return errors.New("GmailPush: " + logging.Scrub(err.Error()))
	}
	return nil
}

// GmailPush is the GmailPush function's handler on the default App.
func GmailPush(ctx context.Context, e event.Event) error { return Default().GmailPush(ctx, e) }
