// Package pushbus is an in-process stand-in for a Pub/Sub topic with one push
// subscription, so the local runner (`make dev`) needs no Java: Publish queues
// a message, and the bus POSTs it to an http.Handler in Pub/Sub's push format
// (the body the emulator's push subscriptions send), retrying with backoff
// until the handler answers 2xx, as a push subscription does. Messages are
// delivered concurrently and in no particular order, like a subscription
// without message ordering.
//
// It is local-only code: no deployed function imports it.
package pushbus

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"example.com/gmailoauth/internal/push"
)

// Options tune a Bus.
type Options struct {
	// Concurrency bounds the deliveries in flight (0 = 16).
	Concurrency int
	// MinBackoff and MaxBackoff space the redeliveries of a message the
	// handler refused (0 = 100 ms and 10 s).
	MinBackoff, MaxBackoff time.Duration
	// MaxAge drops a message still undelivered after it (0 = 1 h).
	MaxAge time.Duration
	Logger *slog.Logger
}

// Bus delivers published messages to one handler.
type Bus struct {
	h            http.Handler
	path         string // the request path: the push endpoint's
	subscription string
	opts         Options
	sem          chan struct{}
	ctx          context.Context
	cancel       context.CancelFunc
	wg           sync.WaitGroup
	nextID       atomic.Int64

	delivered, attempts atomic.Int64
}

// New returns a bus that delivers the messages of topic (projects/P/topics/T)
// to h at the path /<prefix>/<topic>, as a push subscription with that
// endpoint would.
func New(h http.Handler, prefix, topic string, opts Options) *Bus {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 16
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 10 * time.Second
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Bus{h: h, path: prefix + "/" + topic, subscription: strings.Replace(topic, "/topics/", "/subscriptions/", 1) + "-push", opts: opts,
		sem: make(chan struct{}, opts.Concurrency), ctx: ctx, cancel: cancel}
}

// Publish queues one message and returns its id.
func (b *Bus) Publish(data []byte, attrs map[string]string) string {
	id := strconv.FormatInt(b.nextID.Add(1), 10)
	body := pushBody(b.subscription, id, data, attrs, time.Now())
	b.wg.Add(1)
	go b.deliver(id, body)
	return id
}

// Dispatch implements push.Dispatcher.
func (b *Bus) Dispatch(ctx context.Context, msgs []push.Message) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	for _, m := range msgs {
		b.Publish(m.Data, m.Attributes)
	}
	return len(msgs), nil
}

// Notify publishes a Gmail notification (sandbox.Notifier); the topic is
// the bus's.
func (b *Bus) Notify(_ string, data []byte) error {
	b.Publish(data, nil)
	return nil
}

// Close stops redeliveries and waits for deliveries in flight.
func (b *Bus) Close() {
	b.cancel()
	b.wg.Wait()
}

// Delivered returns how many messages were delivered (acknowledged) and how
// many attempts it took.
func (b *Bus) Delivered() (messages, attempts int64) { return b.delivered.Load(), b.attempts.Load() }

func (b *Bus) deliver(id string, body []byte) {
	defer b.wg.Done()
	start := time.Now()
	wait := b.opts.MinBackoff
	for {
		select {
		case b.sem <- struct{}{}:
		case <-b.ctx.Done():
			return
		}
		status := b.post(body)
		<-b.sem
		b.attempts.Add(1)
		if status >= 200 && status < 300 {
			b.delivered.Add(1)
			return
		}
		if time.Since(start) > b.opts.MaxAge {
			b.opts.Logger.Warn("pushbus: message dropped after retrying for too long", "message_id", id)
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-b.ctx.Done():
			t.Stop()
			return
		}
		wait = min(wait*2, b.opts.MaxBackoff)
	}
}

func (b *Bus) post(body []byte) int {
	req := httptest.NewRequestWithContext(b.ctx, http.MethodPost, b.path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "pushbus (in-process Pub/Sub push)")
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	return rec.Code
}

// pushBody is the JSON of a push request, as the Pub/Sub emulator sends it.
func pushBody(subscription, id string, data []byte, attrs map[string]string, at time.Time) []byte {
	if attrs == nil {
		attrs = map[string]string{}
	}
	ts := at.UTC().Format("2006-01-02T15:04:05.000Z")
	b, _ := json.Marshal(map[string]any{
		"subscription": subscription,
		"message": map[string]any{
			"data": data, "attributes": attrs, "messageId": id, "message_id": id, "publishTime": ts, "publish_time": ts,
		},
	})
	return b
}
