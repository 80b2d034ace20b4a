package devserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"example.com/gmailoauth/internal/events"
	"example.com/gmailoauth/internal/httpx"
	"example.com/gmailoauth/internal/local/pushbus"
	"example.com/gmailoauth/internal/pubsub"
	"example.com/gmailoauth/internal/push"
)

// The local stack's topics, in the project GOOGLE_CLOUD_PROJECT (default
// demo-dev).
const (
	defaultPubSubProject = "demo-dev"
	pushTopicID          = "gmail-notifications"
	eventsTopicID        = "gmail-events"
)

// pushSetup is what the app gets in place of the Pub/Sub clients.
type pushSetup struct {
	events   events.Publisher
	dispatch push.Dispatcher
}

// pushEnv configures push and the events for the sandbox:
//
//   - without PUBSUB_EMULATOR_HOST (make dev, no Java), the notification
//     topic is an in-process bus that delivers to GmailPush in Pub/Sub's
//     push format, and the events stay in memory (GET /dev/events);
//   - with it (make dev-firestore, tests), the sandbox publishes Gmail's
//     notifications to the emulator's topic, a push subscription delivers
//     them to GmailPush's URL, the functions publish the events to the
//     events topic, and a pull subscription copies them for /dev/events.
//
// With off (a real OAuth client: Gmail cannot reach a local topic; or
// Options.NoPush) push stays off unless PUSH_TOPIC is set, and the events
// stay in memory.
func (s *Server) pushEnv(getenv func(string) string, set func(k, v string), env map[string]string, off bool) (pushSetup, error) {
	s.Events = events.NewMemory(0)
	project := getenv("GOOGLE_CLOUD_PROJECT")
	if project == "" {
		project = defaultPubSubProject
	}
	lookup := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return getenv(k)
	}
	emulator := getenv("PUBSUB_EMULATOR_HOST")
	if off || emulator == "" {
		if !off {
			set("PUSH_TOPIC", "projects/"+project+"/topics/"+pushTopicID)
		}
		s.PushTopic, s.EventsTopic = lookup("PUSH_TOPIC"), ""
		ps := pushSetup{events: s.Events}
		switch {
		case s.PushTopic != "" && !off:
			s.Bus = pushbus.New(http.HandlerFunc(s.servePush), PushPath, s.PushTopic, pushbus.Options{Logger: s.log})
			s.closers = append(s.closers, s.Bus.Close)
			s.notify = s.Bus.Notify
			ps.dispatch = s.Bus
			s.pushDesc = "the sandbox notifies it in process"
		case s.PushTopic != "":
			s.pushDesc = "on Pub/Sub, " + s.PushTopic
		default:
			s.pushDesc = "off"
		}
		return ps, nil
	}

	set("PUSH_TOPIC", "projects/"+project+"/topics/"+pushTopicID)
	set("EVENTS_TOPIC", "projects/"+project+"/topics/"+eventsTopicID)
	s.PushTopic, s.EventsTopic = lookup("PUSH_TOPIC"), lookup("EVENTS_TOPIC")
	env["PUBSUB_EMULATOR_HOST"] = emulator
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pubsub.New(ctx, project, pubsub.Options{EmulatorHost: emulator})
	if err != nil {
		return pushSetup{}, err
	}
	s.closers = append(s.closers, func() { _ = c.Close() })
	s.pubsub = c
	if err := s.EnsurePubSub(ctx); err != nil {
		_ = c.Close()
		return pushSetup{}, fmt.Errorf("%w (PUBSUB_EMULATOR_HOST=%s)", err, emulator)
	}
	s.notify = func(topic string, data []byte) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := c.Publish(ctx, topic, []pubsub.Message{{Data: data}})
		return err
	}
	// Copy the events for /dev/events; after an emulator restart (its state
	// is in memory) EnsurePubSub makes the subscription again and this picks
	// it up.
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for rctx.Err() == nil {
			err := c.Receive(rctx, subscriptionOf(s.EventsTopic, "-devevents"), func(_ context.Context, m pubsub.Received) bool {
				s.Events.Add(m.Data)
				return true
			})
			if err != nil && rctx.Err() == nil {
				s.log.Debug("devserver: receiving the events", "error", err.Error())
				select {
				case <-rctx.Done():
				case <-time.After(time.Second):
				}
			}
		}
	}()
	s.closers = append(s.closers, func() {
		stop()
		select { // Receive may not return while the emulator is unreachable
		case <-done:
		case <-time.After(5 * time.Second):
		}
	})
	s.pushDesc = "the Pub/Sub emulator's push subscription delivers to it"
	return pushSetup{}, nil
}

func subscriptionOf(topic, suffix string) string {
	return strings.Replace(topic, "/topics/", "/subscriptions/", 1) + suffix
}

// EnsurePubSub makes the local stack's topics and subscriptions on the
// Pub/Sub emulator unless they exist: the notification topic with a push
// subscription to GmailPush, the events topic with the pull subscription
// /dev/events reads. New runs it; call it again after restarting the
// emulator, whose state is lost.
func (s *Server) EnsurePubSub(ctx context.Context) error {
	c := s.pubsub
	if c == nil {
		return errors.New("devserver: no Pub/Sub emulator configured")
	}
	for _, step := range []func() error{
		func() error { return c.EnsureTopic(ctx, s.PushTopic) },
		func() error { return c.EnsureTopic(ctx, s.EventsTopic) },
		func() error {
			return c.EnsureSubscription(ctx, pubsub.Subscription{Name: subscriptionOf(s.PushTopic, "-push"), Topic: s.PushTopic,
				PushEndpoint: s.BaseURL + PushPath + "/" + s.PushTopic, AckDeadline: 5 * time.Minute,
				MinBackoff: time.Second, MaxBackoff: 10 * time.Second})
		},
		func() error {
			return c.EnsureSubscription(ctx, pubsub.Subscription{Name: subscriptionOf(s.EventsTopic, "-devevents"), Topic: s.EventsTopic, Ordered: true})
		},
	} {
		if err := step(); err != nil {
			return fmt.Errorf("devserver: Pub/Sub emulator: %w", err)
		}
	}
	return nil
}

// servePush serves GmailPush's push requests.
func (s *Server) servePush(w http.ResponseWriter, r *http.Request) {
	pushHandler(s.App.GmailPush).ServeHTTP(w, r)
}

// notifyVia is the sandbox's Notifier: where its notifications go.
func (s *Server) notifyVia(topic string, data []byte) error {
	if s.notify == nil {
		return errors.New("devserver: push is off")
	}
	return s.notify(topic, data)
}

// serveEvents answers GET /dev/events: the kept events' bodies as a JSON
// array, oldest first. The demo page, on its own origin, reads it.
func (s *Server) serveEvents(origins []string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if preflight, err := httpx.CORS(w, r, origins, "GET"); preflight {
			if err != nil {
				http.Error(w, "origin not allowed", http.StatusForbidden)
			}
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD, OPTIONS")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		list := s.Events.Events()
		if list == nil {
			list = []json.RawMessage{}
		}
		w.Header().Set("Cache-Control", "no-store")
		httpx.WriteJSON(w, http.StatusOK, list)
	}
}

// Close stops what the stack runs in the background (the in-process bus,
// the events subscription, the Pub/Sub client).
func (s *Server) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}
