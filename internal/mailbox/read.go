package mailbox

import (
	"context"
	"errors"
	"slices"
	"strconv"

	"golang.org/x/sync/errgroup"

	"example.com/gmailoauth/internal/apperr"
	"example.com/gmailoauth/internal/gmail"
	"example.com/gmailoauth/internal/store"
)

// Reader answers the frontend's listings, from the mirror or from Gmail.
//
// The mirror is the metadata the sync keeps in the store. After a user's
// first full sync it holds every message whose internal date is at or
// after its horizon (the oldest message the first sync listed), spam and
// trash included, and every later change the sync has applied. A listing
// without q is answered from it (source=auto, the default, or
// source=mirror): label_ids (all of them), include_spam_trash, paging and
// both formats, in Gmail's order, at no Gmail cost. Older messages are
// Gmail's alone: past the seam (the horizon rounded up to a whole second)
// an auto listing continues with Gmail's listing of the same filters and
// q=before:<seam>, so a client paging to the end gets exactly Gmail's ids,
// none twice, none missed. q goes to Gmail, whose search language stays
// Gmail's.
//
// Set the fields, then use it; it is safe for concurrent use.
type Reader struct {
	Store store.Store
	// Grants tells whether a user's grant is still active, and which it is
	// (the mirror makes no Gmail call that would tell).
	Grants interface {
		CheckGrant(ctx context.Context, userID string) (grant string, err error)
	}
	// Gmail makes the Gmail calls.
	Gmail *gmail.Service
	// PageTokenKeys returns the keys that sign page tokens, the one to sign
	// with first (keyset.Keyset.PageTokenKeys).
	PageTokenKeys func() [][]byte
}

// Limits of a page from the mirror.
const (
	// EstimateCap bounds the mirror's result_size_estimate: counting up to
	// 1,000 index entries costs one Firestore read.
	EstimateCap = 1000
	// minScanBudget is the least number of documents a page read by one
	// label and filtered by the others may read (see scanBudget).
	minScanBudget = 200
)

// scanBudget bounds the documents a mirror page reads when the request
// has several labels (the store filters by one, the rest are filtered
// here): four pages' worth, at least minScanBudget. A page that runs out
// of budget is answered short, with a page token that continues the scan.
func scanBudget(maxResults int) int { return max(4*(maxResults+1), minScanBudget) }

// List answers one page of userID's listing. req is what ParseListRequest
// returns; a zero Source is SourceAuto and a zero MaxResults the default.
func (r *Reader) List(ctx context.Context, userID string, req ListRequest) (*ListResult, error) {
	if req.Source == "" {
		req.Source = SourceAuto
	}
	if req.MaxResults <= 0 {
		req.MaxResults = DefaultMaxResults
	}
	var tok *pageToken
	if req.PageToken != "" {
		var err error
		if tok, err = openToken(r.PageTokenKeys(), userID, req, req.PageToken); err != nil {
			return nil, err
		}
	}
	switch {
	case req.Source == SourceGmail || req.Q != "":
		if tok != nil && tok.kind != kindGmail {
			return nil, errPageToken()
		}
		return r.fromGmail(ctx, userID, req, tok)
	case tok != nil && tok.kind == kindGmail:
		if req.Source == SourceMirror {
			return nil, errPageToken()
		}
		return r.fromGmail(ctx, userID, req, tok)
	}

	var mb *store.Mailbox
	var grant string
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		grant, err = r.Grants.CheckGrant(gctx, userID)
		return err
	})
	g.Go(func() error {
		var err error
		if mb, err = r.Store.GetMailbox(gctx, userID); errors.Is(err, store.ErrNotFound) {
			mb, err = nil, nil
		}
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if !mb.MirrorReady() || mb.Grant != "" && mb.Grant != grant { // not synced yet, or for an earlier grant
		switch {
		case req.Source == SourceMirror:
			return nil, apperr.New(apperr.MirrorNotReady,
				"the mailbox has not been synced yet: list with source=auto or source=gmail until the first sync completes")
		case tok != nil:
			return nil, errRebuilt()
		}
		return r.fromGmail(ctx, userID, req, nil)
	}
	var cursor *store.MirrorCursor
	if tok != nil {
		cursor = &tok.cursor
	}
	return r.fromMirror(ctx, userID, req, mb, cursor)
}

// errRebuilt answers a mirror page token the mirror can no longer
// continue: it is being rebuilt by a full sync, or was rebuilt since.
func errRebuilt() error {
	return apperr.New(apperr.InvalidPageToken,
		"the mailbox's mirror was rebuilt since this page token was issued; list again from the first page")
}

// seamOf returns the seam of a mirror whose horizon is h: the whole second
// at or after h, so that the mirror holds every message from it on and
// Gmail's before:<seam> lists exactly the older ones. 0 means no seam: the
// mirror holds the whole mailbox.
func seamOf(h int64) int64 {
	if h == store.HorizonAll {
		return 0
	}
	s := h / 1000
	if h%1000 != 0 && h > 0 {
		s++
	}
	return max(s, 1)
}

// labelBreadth orders labels by how many messages they usually carry, so
// that the store is asked by the narrowest (Gmail's system labels; user
// labels, STARRED, DRAFT and the like are narrow).
func labelBreadth(l string) int {
	switch {
	case l == "INBOX":
		return 4
	case l == "UNREAD":
		return 3
	case l == "IMPORTANT", len(l) > 9 && l[:9] == "CATEGORY_":
		return 2
	case l == "SENT":
		return 1
	}
	return 0
}

// splitLabels returns the label the store filters by ("" for none) and
// the ones left to filter here.
func splitLabels(labels []string) (string, []string) {
	labels = slices.Compact(slices.Sorted(slices.Values(labels)))
	if len(labels) == 0 {
		return "", nil
	}
	i := 0
	for j, l := range labels {
		if labelBreadth(l) < labelBreadth(labels[i]) {
			i = j
		}
	}
	rest := slices.Delete(slices.Clone(labels), i, i+1)
	return labels[i], rest
}

// fromMirror answers a page from the mirror, after cursor (nil = from the
// start). It reads the page and one more document (to know whether the
// mirror has more), or, with several labels, at most scanBudget documents.
func (r *Reader) fromMirror(ctx context.Context, userID string, req ListRequest, mb *store.Mailbox, cursor *store.MirrorCursor) (*ListResult, error) {
	seam := seamOf(mb.MirrorHorizon)
	if cursor != nil && seam != 0 && cursor.InternalDate < seam*1000 {
		return nil, errRebuilt() // the horizon moved past the position: a new full sync
	}
	label, rest := splitLabels(req.LabelIDs)
	q := store.MirrorQuery{
		Label:            label,
		ExcludeSpamTrash: !req.IncludeSpamTrash && !slices.Contains(req.LabelIDs, store.LabelSpam) && !slices.Contains(req.LabelIDs, store.LabelTrash),
		Since:            seam * 1000,
	}
	limit := int(req.MaxResults)

	var estimate int
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		cq := q
		cq.Limit = EstimateCap
		var err error
		estimate, err = r.Store.CountMirror(gctx, userID, cq)
		return err
	})
	var page []*store.MessageMeta
	more, scanned, budget := false, 0, scanBudget(limit)
	next := cursor
	g.Go(func() error {
		for {
			if len(page) > limit || scanned >= budget {
				more = true // a full page with one to spare, or the budget is spent
				return nil
			}
			sq := q
			sq.After, sq.Limit = next, limit+1-len(page)
			if len(rest) > 0 {
				sq.Limit = min(limit+1, budget-scanned)
			}
			got, err := r.Store.ListMirror(gctx, userID, sq)
			if err != nil {
				return err
			}
			scanned += max(1, len(got))
			for _, m := range got {
				next = &store.MirrorCursor{InternalDate: m.InternalDate, ID: m.ID}
				if hasAll(m.LabelIDs, rest) {
					if page = append(page, m); len(page) > limit {
						break
					}
				}
			}
			if len(page) <= limit && len(got) < sq.Limit {
				return nil // the mirror has nothing more
			}
		}
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if len(page) > limit {
		page = page[:limit]
		last := page[limit-1]
		next = &store.MirrorCursor{InternalDate: last.InternalDate, ID: last.ID}
	}
	continues := seam != 0 && req.Source == SourceAuto
	if len(page) == 0 && !more && continues {
		// Nothing left in the mirror: Gmail's older messages, in this call.
		return r.fromGmail(ctx, userID, req, &pageToken{kind: kindGmail, seam: seam})
	}
	out := &ListResult{Messages: make([]Message, len(page)), ResultSizeEstimate: int64(estimate),
		Source: SourceMirror, SyncedAt: mb.LastSyncAt.UTC()}
	for i, m := range page {
		out.Messages[i] = Message{ID: m.ID, ThreadID: m.ThreadID}
		if req.Format == FormatMetadata {
			out.Messages[i] = Message{ID: m.ID, ThreadID: m.ThreadID, LabelIDs: m.LabelIDs,
				Subject: m.Subject, From: m.From, Date: m.Date, Snippet: m.Snippet}
		}
	}
	switch {
	case more:
		out.NextPageToken = sealToken(r.PageTokenKeys(), userID, req, pageToken{kind: kindMirror, cursor: *next})
	case continues:
		out.NextPageToken = sealToken(r.PageTokenKeys(), userID, req, pageToken{kind: kindGmail, seam: seam})
	}
	return out, nil
}

func hasAll(labels, want []string) bool {
	for _, l := range want {
		if !slices.Contains(labels, l) {
			return false
		}
	}
	return true
}

// fromGmail answers a page from Gmail: the request's own listing, or,
// past the mirror's seam, Gmail's listing of the messages older than it.
// tok is where the listing stands (nil = its first page).
func (r *Reader) fromGmail(ctx context.Context, userID string, req ListRequest, tok *pageToken) (*ListResult, error) {
	q, gtok, seam := req.Q, "", int64(0)
	if tok != nil {
		gtok, seam = tok.gmailToken, tok.seam
	}
	if seam != 0 {
		q = "before:" + strconv.FormatInt(seam, 10) // req.Q is "": a listing with q never reaches the mirror
	}
	// The page's cost is taken from the user's budget at once: a page that
	// cannot be served within the frontend's patience is answered
	// rate_limited before anything is sent.
	preq, units := Plan(req, r.Gmail.UserBurst())
	var res *ListResult
	err := r.Gmail.DoCost(ctx, userID, units, func(ctx context.Context, c *gmail.Client) error {
		var err error
		res, err = listGmail(ctx, c, preq, q, gtok)
		return err
	})
	if err != nil {
		return nil, err
	}
	if res.NextPageToken != "" {
		res.NextPageToken = sealToken(r.PageTokenKeys(), userID, req, pageToken{kind: kindGmail, gmailToken: res.NextPageToken, seam: seam})
	}
	return res, nil
}
