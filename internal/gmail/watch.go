package gmail

import (
	"context"
	"time"

	gmailv1 "google.golang.org/api/gmail/v1"
)

// Watch is what users.watch answered: Gmail sends a notification to the
// topic for every change to the mailbox until Expiration, and HistoryID is
// the mailbox's history id when the watch started.
type Watch struct {
	HistoryID  uint64
	Expiration time.Time
}

// Watch asks Gmail to send a notification to topic (projects/P/topics/T,
// in the project of the OAuth client, with publish rights for
// gmail-api-push@system.gserviceaccount.com) for every change to the
// mailbox (users.watch). Calling it again renews the watch; Gmail wants
// that at least every 7 days and recommends daily.
func (c *Client) Watch(ctx context.Context, topic string) (*Watch, error) {
	resp, err := c.svc.Users.Watch("me", &gmailv1.WatchRequest{TopicName: topic}).Context(ctx).Do()
	if err != nil {
		return nil, c.wrap(err)
	}
	return &Watch{HistoryID: resp.HistoryId, Expiration: time.UnixMilli(resp.Expiration)}, nil
}

// StopWatch stops the mailbox's notifications (users.stop); Gmail says they
// stop "within a few minutes".
func (c *Client) StopWatch(ctx context.Context) error {
	if err := c.svc.Users.Stop("me").Context(ctx).Do(); err != nil {
		return c.wrap(err)
	}
	return nil
}
