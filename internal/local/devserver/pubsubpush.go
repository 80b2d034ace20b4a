package devserver

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// PushPath is where the local stack serves GmailPush to Pub/Sub push
// requests: the push endpoint is PushPath + "/projects/P/topics/T" (the
// path names the topic, as the functions framework wants it).
const PushPath = "/gmail-push"

// The CloudEvent a Pub/Sub message becomes (Eventarc's, and the functions
// framework's from a raw push request).
const (
	messagePublished = "google.cloud.pubsub.topic.v1.messagePublished"
	pubsubMessageAt  = "type.googleapis.com/google.pubusb.v1.PubsubMessage" // sic: the framework's spelling
)

var topicPathRE = regexp.MustCompile(`projects/[^/?]+/topics/[^/?]+`)

// rawPush is the body of a Pub/Sub push request.
type rawPush struct {
	Subscription string `json:"subscription"`
	Message      struct {
		Data        []byte            `json:"data"`
		Attributes  map[string]string `json:"attributes"`
		MessageID   string            `json:"messageId"`
		PublishTime time.Time         `json:"publishTime"`
	} `json:"message"`
}

// pushHandler serves Pub/Sub push requests (the emulator's push
// subscription, the in-process bus) to fn the way functions-framework-go
// serves a CloudEvent function deployed with Eventarc: the request becomes
// the messagePublished CloudEvent (id = message id, source = the topic in
// the path, time = publish time, data = {"message": …} without the
// subscription), and fn's error answers 500 so that Pub/Sub redelivers.
func pushHandler(fn func(context.Context, event.Event) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "POST a Pub/Sub push request", http.StatusMethodNotAllowed)
			return
		}
		var p rawPush
		body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
		if err == nil {
			err = json.Unmarshal(body, &p)
		}
		if err != nil || p.Message.MessageID == "" {
			http.Error(w, "not a Pub/Sub push request", http.StatusBadRequest)
			return
		}
		e := event.New()
		e.SetID(p.Message.MessageID)
		e.SetType(messagePublished)
		e.SetSource("//pubsub.googleapis.com/" + topicPathRE.FindString(r.URL.Path))
		at := p.Message.PublishTime
		if at.IsZero() {
			at = time.Now()
		}
		e.SetTime(at)
		msg := map[string]any{"@type": pubsubMessageAt, "data": p.Message.Data, "messageId": p.Message.MessageID,
			"publishTime": at.UTC().Format(time.RFC3339Nano)}
		if p.Message.Attributes != nil {
			msg["attributes"] = p.Message.Attributes
		}
		if err := e.SetData(event.ApplicationJSON, map[string]any{"message": msg}); err != nil {
			http.Error(w, "encoding the event: "+err.Error(), http.StatusInternalServerError)
			return
		}
		if err := fn(r.Context(), e); err != nil {
			http.Error(w, "Function error", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}
