// Package mailbox is the frontend's read path: it validates a listing
// request and answers it, one page at a time, with ids or metadata, from
// the mirror (the messages the sync keeps in the store) or from Gmail (see
// Reader), behind page tokens of its own (see token.go).
package mailbox

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"example.com/gmailoauth/internal/apperr"
	"example.com/gmailoauth/internal/gmail"
)

// Limits and defaults of a listing request.
const (
	DefaultMaxResults = 100
	MaxMaxResults     = 500
	MaxQueryLen       = 1024
	MaxLabelIDs       = 20
	MaxPageTokenLen   = 512
)

// Sources of a listing: the request's source parameter, and the answer's
// source (mirror or gmail).
const (
	// SourceAuto answers from the mirror once the user's first sync has
	// completed and the request has no q, continuing from Gmail past the
	// mirror's horizon; from Gmail otherwise.
	SourceAuto = "auto"
	// SourceMirror answers from the mirror only, never calling Gmail.
	SourceMirror = "mirror"
	// SourceGmail answers from Gmail.
	SourceGmail = "gmail"
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
	Source           string
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
	// Source is where the page came from: SourceMirror or SourceGmail.
	Source string `json:"source"`
	// SyncedAt, for a page from the mirror, is when the sync last wrote to
	// it.
	SyncedAt time.Time `json:"synced_at,omitzero"`
}

var knownParams = map[string]bool{
	"q": true, "label_ids": true, "max_results": true, "page_token": true, "include_spam_trash": true, "format": true,
	"source": true,
}

// ParseListRequest validates the query of GET /list-messages, reporting
// every problem in one 400 invalid_request.
func ParseListRequest(v url.Values) (ListRequest, error) {
	req := ListRequest{MaxResults: DefaultMaxResults, Format: FormatIDs, Source: SourceAuto}
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
	if s, ok := single("source"); ok {
		switch s {
		case SourceAuto, SourceGmail:
		case SourceMirror:
			if req.Q != "" {
				p = append(p, "q is answered by Gmail only: use source=auto or source=gmail with q")
			}
		default:
			p = append(p, "source must be auto, mirror or gmail")
		}
		req.Source = s
	}
	if len(p) > 0 {
		return ListRequest{}, apperr.New(apperr.InvalidRequest, strings.Join(p, "; "))
	}
	return req, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Plan returns what answering req from Gmail costs in Gmail quota units,
// and req with its page shortened so that the cost fits within maxUnits,
// the most a user may spend at once (0 = no bound). A page of ids costs one messages.list;
// a metadata page one messages.list and one messages.get per message
// (gmail.MetadataPageCost), so under Gmail's 2026 prices and the default
// budget a metadata page holds at most 294 messages: ask for more and the
// page is shorter, with a next_page_token to carry on (Gmail itself may
// return fewer than max_results).
func Plan(req ListRequest, maxUnits int) (ListRequest, int) {
	if req.Format != FormatMetadata {
		return req, gmail.MetadataPageCost(0)
	}
	if maxUnits > 0 {
		per := gmail.Costs[gmail.MethodMessagesGet].Units
		fit := int64(max(1, (maxUnits-gmail.MetadataPageCost(0))/per))
		req.MaxResults = min(req.MaxResults, fit)
	}
	return req, gmail.MetadataPageCost(int(req.MaxResults))
}

// listGmail returns one page of the user's messages from Gmail through c;
// with FormatMetadata it fetches each listed message's metadata (a message
// deleted between the listing and its fetch is left out). q is the Gmail
// query and pageToken Gmail's own page token.
func listGmail(ctx context.Context, c *gmail.Client, req ListRequest, q, pageToken string) (*ListResult, error) {
	page, err := c.ListMessages(ctx, gmail.ListQuery{Q: q, LabelIDs: req.LabelIDs, MaxResults: req.MaxResults,
		PageToken: pageToken, IncludeSpamTrash: req.IncludeSpamTrash})
	if err != nil {
		return nil, err
	}
	out := &ListResult{Messages: make([]Message, len(page.Messages)), NextPageToken: page.NextPageToken,
		ResultSizeEstimate: page.ResultSizeEstimate, Source: SourceGmail}
	for i, m := range page.Messages {
		out.Messages[i] = Message{ID: m.ID, ThreadID: m.ThreadID}
	}
	if req.Format != FormatMetadata {
		return out, nil
	}
	ids := make([]string, len(page.Messages))
	for i, m := range page.Messages {
		ids[i] = m.ID
	}
	metas, err := c.MetadataOf(ctx, ids, gmail.DefaultMetadataConcurrency)
	if err != nil {
		return nil, err
	}
	out.Messages = out.Messages[:0]
	for _, m := range metas {
		out.Messages = append(out.Messages, Message{ID: m.ID, ThreadID: m.ThreadID, LabelIDs: m.LabelIDs,
			Subject: m.Subject, From: m.From, Date: m.Date, Snippet: m.Snippet})
	}
	return out, nil
}
