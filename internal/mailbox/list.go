// Package mailbox reads a user's Gmail: the frontend's listing (ids or
// metadata, one page at a time) and the classification of Gmail's errors.
package mailbox

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/oauth2"
	"golang.org/x/sync/errgroup"
	"google.golang.org/api/gmail/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"example.com/gmailoauth/internal/httpx"
)

// Limits and defaults of a listing request.
const (
	DefaultMaxResults = 100
	MaxMaxResults     = 500
	MaxQueryLen       = 1024
	MaxLabelIDs       = 20
	MaxPageTokenLen   = 256
	// MetadataConcurrency bounds the messages.get calls of one metadata page.
	MetadataConcurrency = 10
)

// Formats of a listing.
const (
	FormatIDs      = "ids"
	FormatMetadata = "metadata"
)

// ListRequest is a validated frontend listing request.
type ListRequest struct {
	Q                string
	LabelIDs         []string
	MaxResults       int64
	PageToken        string
	IncludeSpamTrash bool
	Format           string
}

// Message is one listed message; metadata fields are set with FormatMetadata.
type Message struct {
	ID       string   `json:"id"`
	ThreadID string   `json:"thread_id"`
	LabelIDs []string `json:"label_ids,omitempty"`
	Subject  string   `json:"subject,omitempty"`
	From     string   `json:"from,omitempty"`
	Date     string   `json:"date,omitempty"`
	Snippet  string   `json:"snippet,omitempty"`
}

// ListResult is one page of a listing.
type ListResult struct {
	Messages           []Message `json:"messages"`
	NextPageToken      string    `json:"next_page_token,omitempty"`
	ResultSizeEstimate int64     `json:"result_size_estimate"`
}

var knownParams = map[string]bool{
	"q": true, "label_ids": true, "max_results": true, "page_token": true, "include_spam_trash": true, "format": true,
}

// ParseListRequest validates the query of GET /list-messages, reporting
// every problem in one 400 invalid_request.
func ParseListRequest(v url.Values) (ListRequest, error) {
	req := ListRequest{MaxResults: DefaultMaxResults, Format: FormatIDs}
	var p []string
	for k := range v {
		if !knownParams[k] {
			p = append(p, fmt.Sprintf("unknown parameter %q", truncate(k, 40)))
		}
	}
	single := func(k string) (string, bool) {
		vals := v[k]
		if len(vals) > 1 {
			p = append(p, k+" may be given once")
		}
		if len(vals) == 0 {
			return "", false
		}
		return vals[0], true
	}
	if q, ok := single("q"); ok {
		if len(q) > MaxQueryLen || !utf8.ValidString(q) || strings.ContainsAny(q, "\x00\r\n") {
			p = append(p, fmt.Sprintf("q must be valid text of at most %d bytes on one line", MaxQueryLen))
		}
		req.Q = q
	}
	if len(v["label_ids"]) > MaxLabelIDs {
		p = append(p, fmt.Sprintf("at most %d label_ids", MaxLabelIDs))
	}
	for _, l := range v["label_ids"] {
		if l == "" || len(l) > 64 || strings.IndexFunc(l, func(r rune) bool {
			return !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z')
		}) >= 0 {
			p = append(p, "label_ids must be label ids such as INBOX or Label_12")
			break
		}
		req.LabelIDs = append(req.LabelIDs, l)
	}
	if s, ok := single("max_results"); ok {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 || n > MaxMaxResults {
			p = append(p, fmt.Sprintf("max_results must be a whole number from 1 to %d", MaxMaxResults))
		}
		req.MaxResults = n
	}
	if s, ok := single("page_token"); ok {
		if s == "" || len(s) > MaxPageTokenLen || strings.IndexFunc(s, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0 {
			p = append(p, "page_token is malformed")
		}
		req.PageToken = s
	}
	if s, ok := single("include_spam_trash"); ok {
		b, err := strconv.ParseBool(s)
		if err != nil {
			p = append(p, "include_spam_trash must be true or false")
		}
		req.IncludeSpamTrash = b
	}
	if s, ok := single("format"); ok {
		if s != FormatIDs && s != FormatMetadata {
			p = append(p, "format must be ids or metadata")
		}
		req.Format = s
	}
	if len(p) > 0 {
		return ListRequest{}, &httpx.Error{Status: http.StatusBadRequest, Code: "invalid_request", Message: strings.Join(p, "; ")}
	}
	return req, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// NewService returns a Gmail client that sends accessToken to baseURL
// (Google's, or the sandbox's) through base, which carries the timeouts.
func NewService(ctx context.Context, baseURL string, base *http.Client, accessToken string) (*gmail.Service, error) {
	hc := &http.Client{
		Timeout: base.Timeout,
		Transport: &oauth2.Transport{
			Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: accessToken, TokenType: "Bearer"}),
			Base:   base.Transport,
		},
	}
	return gmail.NewService(ctx, option.WithEndpoint(baseURL), option.WithHTTPClient(hc))
}

// List returns one page of the user's messages.
func List(ctx context.Context, svc *gmail.Service, req ListRequest) (*ListResult, error) {
	call := svc.Users.Messages.List("me").Context(ctx).MaxResults(req.MaxResults).IncludeSpamTrash(req.IncludeSpamTrash)
	if req.Q != "" {
		call = call.Q(req.Q)
	}
	if len(req.LabelIDs) > 0 {
		call = call.LabelIds(req.LabelIDs...)
	}
	if req.PageToken != "" {
		call = call.PageToken(req.PageToken)
	}
	resp, err := call.Do()
	if err != nil {
		return nil, err
	}
	out := &ListResult{Messages: make([]Message, len(resp.Messages)), NextPageToken: resp.NextPageToken, ResultSizeEstimate: resp.ResultSizeEstimate}
	for i, m := range resp.Messages {
		out.Messages[i] = Message{ID: m.Id, ThreadID: m.ThreadId}
	}
	if req.Format != FormatMetadata {
		return out, nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(MetadataConcurrency)
	for i := range out.Messages {
		m := &out.Messages[i]
		g.Go(func() error {
			full, err := GetMetadata(gctx, svc, m.ID)
			if err != nil {
				return err
			}
			*m = *full
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// GetMetadata returns a message's labels, snippet and Subject/From/Date.
func GetMetadata(ctx context.Context, svc *gmail.Service, id string) (*Message, error) {
	gm, err := svc.Users.Messages.Get("me", id).Context(ctx).Format("metadata").MetadataHeaders("Subject", "From", "Date").Do()
	if err != nil {
		return nil, err
	}
	m := &Message{ID: gm.Id, ThreadID: gm.ThreadId, LabelIDs: gm.LabelIds, Snippet: gm.Snippet}
	m.Subject, m.From, m.Date = Headers(gm)
	return m, nil
}

// Headers returns the Subject, From and Date headers of a message fetched
// with format=metadata (or full); missing ones are "".
func Headers(gm *gmail.Message) (subject, from, date string) {
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

// Error kinds of Gmail failures, as Classify sees them.
const (
	KindUnauthorized = "unauthorized" // 401: the access token is not accepted
	KindForbidden    = "forbidden"    // 403 insufficientPermissions: scope missing
	KindRateLimited  = "rate_limited" // 429, 403 rateLimitExceeded/userRateLimitExceeded
	KindBadRequest   = "bad_request"  // 400: bad q or page token
	KindNotFound     = "not_found"    // 404
	KindUnavailable  = "unavailable"  // 5xx, timeouts, network
	KindOther        = "other"
)

// Classify sorts an error from the Gmail client into a kind and, for rate
// limits, the wait Gmail asked for.
func Classify(err error) (kind string, retryAfter time.Duration) {
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		return KindUnavailable, 0
	}
	reason := ""
	if len(ge.Errors) > 0 {
		reason = ge.Errors[0].Reason
	}
	retryAfter = parseRetryAfter(ge.Header.Get("Retry-After"))
	switch {
	case ge.Code == http.StatusUnauthorized:
		return KindUnauthorized, 0
	case ge.Code == http.StatusTooManyRequests,
		ge.Code == http.StatusForbidden && (reason == "rateLimitExceeded" || reason == "userRateLimitExceeded"):
		return KindRateLimited, retryAfter
	case ge.Code == http.StatusForbidden:
		return KindForbidden, 0
	case ge.Code == http.StatusBadRequest:
		return KindBadRequest, 0
	case ge.Code == http.StatusNotFound:
		return KindNotFound, 0
	case ge.Code >= 500:
		return KindUnavailable, retryAfter
	}
	return KindOther, 0
}

// maxRetryAfterSeconds caps a Retry-After in seconds so that a huge value
// cannot overflow time.Duration.
const maxRetryAfterSeconds = 24 * 60 * 60

func parseRetryAfter(s string) time.Duration {
	if s == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n >= 0 {
		return time.Duration(min(n, maxRetryAfterSeconds)) * time.Second
	}
	if t, err := http.ParseTime(s); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}
