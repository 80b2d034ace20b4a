package gmail

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/errgroup"
	gmailv1 "google.golang.org/api/gmail/v1"
	"google.golang.org/api/option"
)

// Gmail's limits on one page.
const (
	// MaxPageSize is the most ids messages.list and records history.list
	// return in one page.
	MaxPageSize = 500
	// DefaultMetadataConcurrency bounds the messages.get calls of one user
	// at once.
	DefaultMetadataConcurrency = 10
	// SyncPageSize is the page size of the sync's listings (messages.list,
	// history.list). A page's metadata costs up to 100 × 20 = 2,000 units,
	// a third of a user's minute, so each page is saved within seconds and
	// a sweep stopped by its deadline loses little; listing 100 ids instead
	// of 500 a page adds 5 units per 2,000.
	SyncPageSize = 100
)

// metadataHeaders are the headers a message's metadata keeps.
var metadataHeaders = []string{"Subject", "From", "Date"}

// Message is a message's metadata: what a format=metadata messages.get
// returns of it, with the Subject, From and Date headers.
type Message struct {
	ID           string
	ThreadID     string
	LabelIDs     []string
	Subject      string
	From         string
	Date         string
	Snippet      string
	InternalDate int64 // ms since the epoch
	HistoryID    uint64
}

// MessageRef is a listed message: ids only.
type MessageRef struct {
	ID       string
	ThreadID string
}

// ListQuery selects one page of messages.list.
type ListQuery struct {
	Q                string
	LabelIDs         []string
	MaxResults       int64 // 1..MaxPageSize; 0 = Gmail's default (100)
	PageToken        string
	IncludeSpamTrash bool
}

// ListPage is one page of messages.list.
type ListPage struct {
	Messages           []MessageRef
	NextPageToken      string
	ResultSizeEstimate int64
}

// Client makes Gmail calls for one user with one access token. Its errors
// are *Error values.
type Client struct {
	svc *gmailv1.Service
	now func() time.Time
}

// NewClient returns a Client that sends accessToken to baseURL (Google's
// https://gmail.googleapis.com/, or a stand-in) through hc, whose transport
// should be the instance's *Transport and whose timeout bounds each call.
// now is the clock that reads Retry-After dates (nil = time.Now).
func NewClient(ctx context.Context, baseURL string, hc *http.Client, accessToken string, now func() time.Time) (*Client, error) {
	if now == nil {
		now = time.Now
	}
	authed := &http.Client{
		Timeout: hc.Timeout,
		Transport: &oauth2.Transport{
			Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: accessToken, TokenType: "Bearer"}),
			Base:   hc.Transport,
		},
	}
	svc, err := gmailv1.NewService(ctx, option.WithEndpoint(baseURL), option.WithHTTPClient(authed))
	if err != nil {
		return nil, err
	}
	return &Client{svc: svc, now: now}, nil
}

func (c *Client) wrap(err error) error { return wrap(err, c.now()) }

// ListMessages returns one page of the user's message ids.
func (c *Client) ListMessages(ctx context.Context, q ListQuery) (*ListPage, error) {
	call := c.svc.Users.Messages.List("me").Context(ctx).IncludeSpamTrash(q.IncludeSpamTrash).
		Fields("messages/id", "messages/threadId", "nextPageToken", "resultSizeEstimate")
	if q.MaxResults > 0 {
		call = call.MaxResults(q.MaxResults)
	}
	if q.Q != "" {
		call = call.Q(q.Q)
	}
	if len(q.LabelIDs) > 0 {
		call = call.LabelIds(q.LabelIDs...)
	}
	if q.PageToken != "" {
		call = call.PageToken(q.PageToken)
	}
	resp, err := call.Do()
	if err != nil {
		return nil, c.wrap(err)
	}
	out := &ListPage{Messages: make([]MessageRef, len(resp.Messages)), NextPageToken: resp.NextPageToken,
		ResultSizeEstimate: resp.ResultSizeEstimate}
	for i, m := range resp.Messages {
		out.Messages[i] = MessageRef{ID: m.Id, ThreadID: m.ThreadId}
	}
	return out, nil
}

// Metadata returns one message's metadata (format=metadata, only the
// fields Message keeps).
func (c *Client) Metadata(ctx context.Context, id string) (*Message, error) {
	gm, err := c.svc.Users.Messages.Get("me", id).Context(ctx).Format("metadata").
		MetadataHeaders(metadataHeaders...).
		Fields("id", "threadId", "labelIds", "snippet", "historyId", "internalDate", "payload/headers").Do()
	if err != nil {
		return nil, c.wrap(err)
	}
	m := &Message{ID: gm.Id, ThreadID: gm.ThreadId, LabelIDs: gm.LabelIds, Snippet: gm.Snippet,
		InternalDate: gm.InternalDate, HistoryID: gm.HistoryId}
	if m.ID == "" {
		m.ID = id
	}
	m.Subject, m.From, m.Date = headers(gm)
	return m, nil
}

// MetadataOf returns the metadata of ids, in their order, fetching at most
// concurrency at once (0 = DefaultMetadataConcurrency). A message deleted
// since it was listed (404) is left out; any other failure fails the whole.
func (c *Client) MetadataOf(ctx context.Context, ids []string, concurrency int) ([]*Message, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if concurrency <= 0 {
		concurrency = DefaultMetadataConcurrency
	}
	out := make([]*Message, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for i, id := range ids {
		g.Go(func() error {
			m, err := c.Metadata(gctx, id)
			if KindOf(err) == KindNotFound {
				return nil
			}
			out[i] = m
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	n := 0
	for _, m := range out {
		if m != nil {
			out[n] = m
			n++
		}
	}
	return out[:n], nil
}

// HistoryID returns the mailbox's current history id (users.getProfile).
func (c *Client) HistoryID(ctx context.Context) (uint64, error) {
	prof, err := c.svc.Users.GetProfile("me").Context(ctx).Fields("historyId").Do()
	if err != nil {
		return 0, c.wrap(err)
	}
	return prof.HistoryId, nil
}

// ErrHistoryGone means history.list answered 404: the start history id is
// too old (Gmail keeps about a week), and only a full listing can tell what
// changed.
var ErrHistoryGone = errors.New("gmail: the history checkpoint has expired")

// historyTypes are the changes a history page reports.
var historyTypes = []string{"messageAdded", "messageDeleted", "labelAdded", "labelRemoved"}

// History returns one page (up to SyncPageSize records) of the mailbox's
// changes since start, as their net effect. ErrHistoryGone means start is
// too old.
func (c *Client) History(ctx context.Context, start uint64, pageToken string) (*HistoryPage, error) {
	call := c.svc.Users.History.List("me").Context(ctx).StartHistoryId(start).
		MaxResults(SyncPageSize).HistoryTypes(historyTypes...)
	if pageToken != "" {
		call = call.PageToken(pageToken)
	}
	page, err := call.Do()
	if err != nil {
		err = c.wrap(err)
		if KindOf(err) == KindNotFound {
			return nil, errors.Join(ErrHistoryGone, err)
		}
		return nil, err
	}
	return collect(page), nil
}

// headers returns the Subject, From and Date headers of a message fetched
// with format=metadata (or full); missing ones are "".
func headers(gm *gmailv1.Message) (subject, from, date string) {
	if gm.Payload == nil {
		return "", "", ""
	}
	for _, h := range gm.Payload.Headers {
		switch strings.ToLower(h.Name) {
		case "subject":
			subject = h.Value
		case "from":
			from = h.Value
		case "date":
			date = h.Value
		}
	}
	return subject, from, date
}
