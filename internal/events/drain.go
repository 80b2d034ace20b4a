package events

import (
	"context"
	"fmt"

	"example.com/gmailoauth/internal/store"
)

// Publisher publishes outbox events to the app's topic (the Pub/Sub adapter,
// or Memory for local runs), each with the attributes type and user_id and
// the ordering key user_id (Attributes, OrderingKey).
type Publisher interface {
	// Publish publishes events in order and returns how many of them, from
	// the first, were accepted; an error means the rest were not. Events
	// after a failed one must not be accepted before it (order per user).
	Publish(ctx context.Context, events []*store.OutboxEvent) (int, error)
}

// Attributes are the message attributes of e.
func Attributes(e *store.OutboxEvent) map[string]string {
	return map[string]string{"type": e.Type, "user_id": e.UserID}
}

// OrderingKey is the ordering key of e: its user.
func OrderingKey(e *store.OutboxEvent) string { return e.UserID }

// drainBatch is how many events one round of Drain reads and publishes.
const drainBatch = 100

// Drain publishes the outbox events of userID (every user's when "") in
// order and deletes each once the topic accepted it. It stops at the first
// failure, leaving that event and the later ones for the next drain, and
// returns how many it published. A crash between publishing and deleting
// publishes those events again next time (at least once; the app drops
// duplicates by event_id).
//
// The caller makes sure one drain at a time runs for a user (the push path
// holds the user's sync lease), so a user's events reach the topic in order.
func Drain(ctx context.Context, st store.Store, pub Publisher, userID string) (int, error) {
	total := 0
	for {
		batch, err := st.ListOutbox(ctx, userID, drainBatch)
		if err != nil {
			return total, fmt.Errorf("read the outbox: %w", err)
		}
		if len(batch) == 0 {
			return total, nil
		}
		n, perr := pub.Publish(ctx, batch)
		if n > 0 {
			ids := make([]string, n)
			for i, e := range batch[:n] {
				ids[i] = e.ID
			}
			if err := st.DeleteOutbox(ctx, ids); err != nil {
				return total, fmt.Errorf("delete published events: %w", err)
			}
			total += n
		}
		if perr != nil {
			return total, fmt.Errorf("publish events: %w", perr)
		}
		if len(batch) < drainBatch {
			return total, nil
		}
	}
}
