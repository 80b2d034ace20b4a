package app

import (
	"context"

	"example.com/gmailoauth/internal/events"
	"example.com/gmailoauth/internal/pubsub"
	"example.com/gmailoauth/internal/push"
	"example.com/gmailoauth/internal/store"
)

// topicEvents publishes the outbox to the app's topic: each event with the
// attributes type and user_id, ordered by user.
type topicEvents struct {
	c     *pubsub.Client
	topic string
}

// Publish implements events.Publisher.
func (t topicEvents) Publish(ctx context.Context, evs []*store.OutboxEvent) (int, error) {
	msgs := make([]pubsub.Message, len(evs))
	for i, e := range evs {
		msgs[i] = pubsub.Message{Data: e.Body, Attributes: events.Attributes(e), OrderingKey: events.OrderingKey(e)}
	}
	return t.c.Publish(ctx, t.topic, msgs)
}

// topicDispatch hands users to GmailPush through the notification topic.
type topicDispatch struct {
	c     *pubsub.Client
	topic string
}

// Dispatch implements push.Dispatcher.
func (t topicDispatch) Dispatch(ctx context.Context, msgs []push.Message) (int, error) {
	out := make([]pubsub.Message, len(msgs))
	for i, m := range msgs {
		out[i] = pubsub.Message{Data: m.Data, Attributes: m.Attributes}
	}
	return t.c.Publish(ctx, t.topic, out)
}
