// Package pubsub is the adapter to Cloud Pub/Sub (cloud.google.com/go/pubsub/v2):
// it publishes batches of messages in order per ordering key and says how many
// of a batch the service accepted, and it creates the topics and
// subscriptions the local runner and the tests need on the emulator.
//
// With PUBSUB_EMULATOR_HOST set, the client library talks to that emulator
// in plaintext without credentials.
package pubsub

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	gps "cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// DefaultPublishTimeout bounds the client's attempts to publish one batch
// (the library's own default is a minute). Callers retry later: GmailPush
// through Pub/Sub's redelivery, the sweep at its next run.
const DefaultPublishTimeout = 10 * time.Second

// topicRE is the shape of a full topic name: a project id (domain-scoped
// ones included) and a topic id as Pub/Sub allows them.
var topicRE = regexp.MustCompile(`^projects/([a-z][-a-z0-9.:]{1,62})/topics/([A-Za-z][-A-Za-z0-9._~%+]{2,254})$`)

// ParseTopic splits a full topic name projects/P/topics/T into its project
// and topic id.
func ParseTopic(name string) (project, id string, err error) {
	m := topicRE.FindStringSubmatch(name)
	if m == nil {
		return "", "", fmt.Errorf("pubsub: %q is not a topic name projects/PROJECT/topics/TOPIC", name)
	}
	return m[1], m[2], nil
}

// Message is one message to publish.
type Message struct {
	Data       []byte
	Attributes map[string]string
	// OrderingKey orders messages: those with the same key are delivered in
	// the order they were published ("" = no order).
	OrderingKey string
}

// Options tune a Client.
type Options struct {
	// PublishTimeout bounds the attempts to publish one batch (0 =
	// DefaultPublishTimeout); the client retries Unavailable answers until then.
	PublishTimeout time.Duration
	// EmulatorHost, when set, is the host:port of an emulator to use instead
	// of the one PUBSUB_EMULATOR_HOST names (tests with an emulator of their
	// own).
	EmulatorHost string
}

// Client publishes to the topics of one project. It is safe for concurrent
// use; Close stops it.
type Client struct {
	c       *gps.Client
	timeout time.Duration

	mu   sync.Mutex
	pubs map[string]*gps.Publisher
}

// New returns a Client for project. It does not contact the service.
func New(ctx context.Context, project string, opts Options) (*Client, error) {
	var co []option.ClientOption
	if opts.EmulatorHost != "" {
		co = []option.ClientOption{
			option.WithEndpoint(opts.EmulatorHost),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
			// A local emulator that restarts is back within seconds: reconnect
			// within 2 s rather than gRPC's default backoff of up to 2 min.
			option.WithGRPCDialOption(grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
				MinConnectTimeout: 5 * time.Second})),
			option.WithoutAuthentication(),
			option.WithTelemetryDisabled(),
		}
	}
	c, err := gps.NewClient(ctx, project, co...)
	if err != nil {
		return nil, fmt.Errorf("pubsub: new client: %w", err)
	}
	t := opts.PublishTimeout
	if t <= 0 {
		t = DefaultPublishTimeout
	}
	return &Client{c: c, timeout: t, pubs: map[string]*gps.Publisher{}}, nil
}

// Close flushes and stops the publishers and closes the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	pubs := c.pubs
	c.pubs = map[string]*gps.Publisher{}
	c.mu.Unlock()
	for _, p := range pubs {
		p.Stop()
	}
	return c.c.Close()
}

func (c *Client) publisher(topic string) *gps.Publisher {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pubs[topic]
	if p == nil {
		p = c.c.Publisher(topic)
		p.EnableMessageOrdering = true
		p.PublishSettings.DelayThreshold = 2 * time.Millisecond
		p.PublishSettings.Timeout = c.timeout
		c.pubs[topic] = p
	}
	return p
}

// Publish publishes msgs to topic (a full name projects/P/topics/T) and
// waits for the service's answers. It returns how many messages, from the
// first, were accepted before the first failure: with ordering keys the
// messages after a failed one are not published either, so a caller that
// retries from the returned index keeps the order. An error means some
// messages were not accepted (a message whose answer did not arrive before
// ctx ended counts as not accepted, though the service may still receive
// it: publishing is at least once).
func (c *Client) Publish(ctx context.Context, topic string, msgs []Message) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	p := c.publisher(topic)
	results := make([]*gps.PublishResult, len(msgs))
	for i, m := range msgs {
		results[i] = p.Publish(ctx, &gps.Message{Data: m.Data, Attributes: m.Attributes, OrderingKey: m.OrderingKey})
	}
	var firstErr error
	ok := 0
	for i, r := range results {
		_, err := r.Get(ctx)
		if err == nil && firstErr == nil {
			ok = i + 1
			continue
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		// A failed publish pauses its ordering key in the client until it
		// is resumed: resume it so that the caller's retry can publish.
		seen := map[string]bool{}
		for _, m := range msgs {
			if m.OrderingKey != "" && !seen[m.OrderingKey] {
				seen[m.OrderingKey] = true
				p.ResumePublish(m.OrderingKey)
			}
		}
		return ok, fmt.Errorf("pubsub: publish to %s: %d of %d accepted: %w", topic, ok, len(msgs), firstErr)
	}
	return ok, nil
}

// Subscription describes a subscription EnsureSubscription creates.
type Subscription struct {
	// Name is the full name projects/P/subscriptions/S.
	Name string
	// Topic is the full topic name.
	Topic string
	// PushEndpoint makes it a push subscription delivering to that URL
	// ("" = a pull subscription).
	PushEndpoint string
	// Ordered delivers the messages of one ordering key in order.
	Ordered bool
	// AckDeadline is how long a delivery may take before it is redelivered
	// (0 = 30 s).
	AckDeadline time.Duration
	// MinBackoff and MaxBackoff shape redeliveries after a failure (0 = the
	// service's default).
	MinBackoff, MaxBackoff time.Duration
}

// EnsureTopic creates topic unless it exists.
func (c *Client) EnsureTopic(ctx context.Context, topic string) error {
	_, err := c.c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("pubsub: create topic %s: %w", topic, err)
	}
	return nil
}

// EnsureSubscription creates s unless a subscription of that name exists.
func (c *Client) EnsureSubscription(ctx context.Context, s Subscription) error {
	ack := s.AckDeadline
	if ack <= 0 {
		ack = 30 * time.Second
	}
	req := &pubsubpb.Subscription{
		Name: s.Name, Topic: s.Topic, AckDeadlineSeconds: int32(ack / time.Second),
		EnableMessageOrdering: s.Ordered,
	}
	if s.PushEndpoint != "" {
		req.PushConfig = &pubsubpb.PushConfig{PushEndpoint: s.PushEndpoint}
	}
	if s.MinBackoff > 0 || s.MaxBackoff > 0 {
		req.RetryPolicy = &pubsubpb.RetryPolicy{MinimumBackoff: durationpb.New(s.MinBackoff), MaximumBackoff: durationpb.New(s.MaxBackoff)}
	}
	_, err := c.c.SubscriptionAdminClient.CreateSubscription(ctx, req)
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("pubsub: create subscription %s: %w", s.Name, err)
	}
	return nil
}

// Received is a message delivered to a Receive callback.
type Received struct {
	ID          string
	Data        []byte
	Attributes  map[string]string
	OrderingKey string
	PublishTime time.Time
}

// Receive pulls from the subscription sub (a full name) until ctx ends,
// calling fn for each message; fn's answer acknowledges (true) or returns
// the message for redelivery (false). It returns nil when ctx ends.
func (c *Client) Receive(ctx context.Context, sub string, fn func(context.Context, Received) bool) error {
	err := c.c.Subscriber(sub).Receive(ctx, func(ctx context.Context, m *gps.Message) {
		if fn(ctx, Received{ID: m.ID, Data: m.Data, Attributes: m.Attributes, OrderingKey: m.OrderingKey, PublishTime: m.PublishTime}) {
			m.Ack()
		} else {
			m.Nack()
		}
	})
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return nil //nolint:nilerr // ctx ended: the documented way out
	}
	return err
}
