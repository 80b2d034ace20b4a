package pubsub_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"example.com/gmailoauth/internal/pubsub"
	"example.com/gmailoauth/internal/pubsub/pubsubtest"
)

func TestParseTopic(t *testing.T) {
	for _, tc := range []struct {
		in, project, id string
		ok              bool
	}{
		{"projects/my-project/topics/gmail-push", "my-project", "gmail-push", true},
		{"projects/example.com:app/topics/events", "example.com:app", "events", true},
		{"projects/p/topics/t", "", "", false},                 // ids too short
		{"gmail-push", "", "", false},                          // not a full name
		{"projects/my-project/subscriptions/x", "", "", false}, // not a topic
		{"projects/my-project/topics/goog-x/y", "", "", false}, // slash in the id
	} {
		p, id, err := pubsub.ParseTopic(tc.in)
		if (err == nil) != tc.ok || p != tc.project || id != tc.id {
			t.Errorf("ParseTopic(%q) = %q, %q, %v; want %q, %q, ok=%v", tc.in, p, id, err, tc.project, tc.id, tc.ok)
		}
	}
}

func TestPublishKeepsOrderPerKey(t *testing.T) {
	project := pubsubtest.NewProject(t)
	c := pubsubtest.NewClient(t, project, pubsub.Options{})
	topic := pubsubtest.Topic(t, c, project, "events")
	col := pubsubtest.Collect(t, c, pubsubtest.PullSubscription(t, c, topic, "events-pull"))

	var msgs []pubsub.Message
	for i := range 20 {
		key := "user-a"
		if i%2 == 1 {
			key = "user-b"
		}
		msgs = append(msgs, pubsub.Message{Data: fmt.Appendf(nil, "%02d", i), OrderingKey: key,
			Attributes: map[string]string{"type": "test"}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if n, err := c.Publish(ctx, topic, msgs); n != len(msgs) || err != nil {
		t.Fatalf("Publish = %d, %v; want %d, nil", n, err, len(msgs))
	}
	got := col.WaitFor(t, 30*time.Second, "20 messages", func(m []pubsub.Received) bool { return len(m) >= 20 })
	last := map[string]string{}
	for _, m := range got {
		if m.Attributes["type"] != "test" {
			t.Errorf("attributes = %v", m.Attributes)
		}
		if prev := last[m.OrderingKey]; prev != "" && string(m.Data) < prev {
			t.Errorf("key %s: %s arrived after %s", m.OrderingKey, m.Data, prev)
		}
		last[m.OrderingKey] = string(m.Data)
	}
}

func TestPublishToAMissingTopicAcceptsNothing(t *testing.T) {
	project := pubsubtest.NewProject(t)
	c := pubsubtest.NewClient(t, project, pubsub.Options{PublishTimeout: 5 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n, err := c.Publish(ctx, "projects/"+project+"/topics/missing", []pubsub.Message{
		{Data: []byte("a"), OrderingKey: "k"}, {Data: []byte("b"), OrderingKey: "k"},
	})
	if n != 0 || err == nil {
		t.Fatalf("Publish = %d, %v; want 0 and an error", n, err)
	}
}

// TestPublishAfterAnOutage stops the emulator under a live client: the
// publish fails and its ordering key is paused in the client library; once
// the emulator is back (empty: its state is in memory) and the topic exists
// again, the same client publishes on that key again, because Publish
// resumed it.
func TestPublishAfterAnOutage(t *testing.T) {
	emu := pubsubtest.Private(t)
	project := "demo-outage"
	c := pubsubtest.NewClient(t, project, pubsub.Options{PublishTimeout: 3 * time.Second, EmulatorHost: emu.Host()})
	topic := pubsubtest.Topic(t, c, project, "events")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if n, err := c.Publish(ctx, topic, []pubsub.Message{{Data: []byte("before"), OrderingKey: "u"}}); n != 1 || err != nil {
		t.Fatalf("Publish before the outage = %d, %v", n, err)
	}

	emu.Stop()
	n, err := c.Publish(ctx, topic, []pubsub.Message{{Data: []byte("during"), OrderingKey: "u"}, {Data: []byte("during2"), OrderingKey: "u"}})
	if n != 0 || err == nil {
		t.Fatalf("Publish during the outage = %d, %v; want 0 and an error", n, err)
	}

	emu.Start()
	pubsubtest.Topic(t, c, project, "events")
	col := pubsubtest.Collect(t, c, pubsubtest.PullSubscription(t, c, topic, "events-pull"))
	if n, err := c.Publish(ctx, topic, []pubsub.Message{{Data: []byte("after"), OrderingKey: "u"}}); n != 1 || err != nil {
		t.Fatalf("Publish after the outage = %d, %v; want 1, nil", n, err)
	}
	col.WaitFor(t, 30*time.Second, "the message published after the outage", func(m []pubsub.Received) bool {
		return len(m) == 1 && string(m[0].Data) == "after"
	})
}
