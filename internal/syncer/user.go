package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"golang.org/x/sync/errgroup"
	"google.golang.org/api/gmail/v1"
	"google.golang.org/api/googleapi"

	"example.com/gmailoauth/internal/gmailquota"
	"example.com/gmailoauth/internal/mailbox"
	"example.com/gmailoauth/internal/oauthflow"
	"example.com/gmailoauth/internal/store"
)

// Gmail page sizes: messages.list and history.list both allow 500.
const (
	listPageSize    = 500
	historyPageSize = 500
)

var historyTypes = []string{"messageAdded", "messageDeleted", "labelAdded", "labelRemoved"}

// Sync kinds of a Result.
const (
	KindNone        = "none"        // nothing was done (skipped, or failed before Gmail)
	KindFull        = "full"        // messages.list from the query
	KindIncremental = "incremental" // history.list from the checkpoint
)

// Result is what one user's sync did.
type Result struct {
	Kind string
	// Fallback is set when history.list answered 404 and a full sync ran.
	Fallback bool
	Added    int
	Removed  int
	// Complete is false when the sync stopped part-way (deadline); its
	// progress is saved and the next sync continues it.
	Complete bool
	// Wrote reports whether anything was written to the store.
	Wrote bool
}

// Errors of SyncUser.
var (
	// ErrRevoked wraps failures that mean the user must consent again (no
	// grant, revoked grant, invalid_grant, Gmail 401 after a refresh).
	ErrRevoked = errors.New("syncer: grant revoked")
	// ErrUnknownUser means no credential is stored for the user.
	ErrUnknownUser = errors.New("syncer: unknown user")
	// errStopped means the sweep's deadline stopped a sync between pages.
	errStopped = errors.New("syncer: stopped before the deadline")
	// errHistoryGone is history.list's 404 for a too old startHistoryId.
	errHistoryGone = errors.New("syncer: history checkpoint expired")
)

// IsRevoked reports whether err means the user's grant is revoked.
func IsRevoked(err error) bool { return errors.Is(err, ErrRevoked) }

// SyncUser syncs one user's mailbox: a full sync the first time (or after
// the history checkpoint expired, or to continue an interrupted one), else an
// incremental sync from the checkpoint.
func (s *Syncer) SyncUser(ctx context.Context, userID string) (*Result, error) {
	if _, err := s.Store.GetCredential(ctx, userID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return &Result{Kind: KindNone}, ErrUnknownUser
		}
		return &Result{Kind: KindNone}, err
	}
	return s.syncUser(ctx, userID, func() bool { return false }, nil)
}

// syncUser is SyncUser without the credential check; stopping reports the
// sweep's soft deadline. mb is the already read checkpoint, or nil.
func (s *Syncer) syncUser(ctx context.Context, userID string, stopping func() bool, mb *store.Mailbox) (res *Result, err error) {
	res = &Result{Kind: KindNone}
	ctx = gmailquota.WithUser(ctx, userID)
	if mb == nil {
		if mb, err = s.Store.GetMailbox(ctx, userID); errors.Is(err, store.ErrNotFound) {
			mb, err = &store.Mailbox{UserID: userID}, nil
		}
		if err != nil {
			return res, fmt.Errorf("read checkpoint: %w", err)
		}
	}
	for attempt := 0; ; attempt++ {
		at, err := s.Tokens.AccessToken(ctx, userID)
		if err != nil {
			var re *oauthflow.ReauthError
			if errors.As(err, &re) {
				return res, fmt.Errorf("%w: %s", ErrRevoked, re.Reason)
			}
			return res, fmt.Errorf("access token: %w", err)
		}
		svc, err := mailbox.NewService(ctx, s.GmailURL, s.Client, at)
		if err != nil {
			return res, err
		}
		err = s.run(ctx, svc, userID, mb, res, stopping)
		if err == nil || errors.Is(err, errStopped) {
			return res, err
		}
		if kind, _ := mailbox.Classify(err); kind == mailbox.KindUnauthorized && ctx.Err() == nil {
			if attempt == 0 {
				// The token may have died early (revoked, password change):
				// refresh once, as the frontend path does.
				if eerr := s.Tokens.ExpireAccessToken(ctx, userID); eerr != nil {
					return res, fmt.Errorf("expire access token: %w", eerr)
				}
				continue
			}
			if merr := s.Tokens.MarkRevoked(ctx, userID, "gmail answered 401 to a freshly refreshed token"); merr != nil {
				return res, fmt.Errorf("mark revoked: %w", merr)
			}
			return res, fmt.Errorf("%w: Gmail no longer accepts this grant", ErrRevoked)
		}
		s.recordError(ctx, userID, mb, err)
		return res, err
	}
}

// recordError keeps the failure on the checkpoint (best effort) so support
// can see it; the checkpoint itself is unchanged, so the next sync retries.
func (s *Syncer) recordError(ctx context.Context, userID string, mb *store.Mailbox, err error) {
	if ctx.Err() != nil {
		return
	}
	kind, _ := mailbox.Classify(err)
	var ge *googleapi.Error
	msg := kind
	if errors.As(err, &ge) {
		msg = fmt.Sprintf("gmail %d %s", ge.Code, kind)
	} else if !strings.Contains(err.Error(), "gmail") {
		msg = err.Error()
		if len(msg) > 200 {
			msg = msg[:200]
		}
	}
	cp := *mb
	cp.LastError, cp.LastErrorAt = msg, s.now()
	if serr := s.Store.SaveSync(ctx, userID, &cp, nil, nil); serr == nil {
		*mb = cp
	}
}

// run picks the kind of sync. mb is updated as checkpoints are saved.
func (s *Syncer) run(ctx context.Context, svc *gmail.Service, userID string, mb *store.Mailbox, res *Result, stopping func() bool) error {
	if mb.HistoryID != 0 && mb.PendingHistoryID == 0 {
		res.Kind = KindIncremental
		err := s.incremental(ctx, svc, userID, mb, res, stopping)
		if !errors.Is(err, errHistoryGone) {
			return err
		}
		s.log().InfoContext(ctx, "history checkpoint expired; full sync", slog.String("user_id", userID))
		res.Fallback = true
	}
	res.Kind = KindFull
	return s.full(ctx, svc, userID, mb, res, stopping)
}

// full lists the messages matching the query, 500 ids a page, fetches their
// metadata and saves each page with the page token of the next one, so a
// stopped sync continues where it was. The mailbox historyId is read before
// the listing: changes made during it are replayed by the next incremental
// sync (applying them twice is harmless).
func (s *Syncer) full(ctx context.Context, svc *gmail.Service, userID string, mb *store.Mailbox, res *Result, stopping func() bool) error {
	resumed := mb.PendingHistoryID != 0
	var seen map[string]struct{} // listed ids, to drop stale messages after a fallback
	if res.Fallback {
		seen = map[string]struct{}{}
	}
	if !resumed {
		prof, err := svc.Users.GetProfile("me").Context(ctx).Fields("historyId").Do()
		if err != nil {
			return err
		}
		mb.PendingHistoryID, mb.FullSyncPageToken = prof.HistoryId, ""
		mb.MessageCount = 0
	}
	for {
		if stopping() {
			if res.Wrote || !resumed {
				// Keep the started sync's pending historyId.
				if err := s.Store.SaveSync(ctx, userID, mb, nil, nil); err != nil {
					return err
				}
				res.Wrote = true
			}
			return errStopped
		}
		page, err := listPage(ctx, svc, s.Query, mb.FullSyncPageToken)
		if err != nil {
			if kind, _ := mailbox.Classify(err); kind == mailbox.KindBadRequest && mb.FullSyncPageToken != "" {
				// A page token from an interrupted sync is no longer valid:
				// start the listing again.
				mb.PendingHistoryID, mb.FullSyncPageToken = 0, ""
				return s.full(ctx, svc, userID, mb, res, stopping)
			}
			return err
		}
		ids := make([]string, 0, len(page.Messages))
		for _, m := range page.Messages {
			ids = append(ids, m.Id)
			if seen != nil {
				seen[m.Id] = struct{}{}
			}
		}
		metas, err := s.fetch(ctx, svc, ids)
		if err != nil {
			return err
		}
		cp := *mb
		cp.FullSyncPageToken = page.NextPageToken
		cp.MessageCount += len(metas)
		var deletes []string
		if page.NextPageToken == "" {
			if seen != nil && !resumed {
				if deletes, err = s.stale(ctx, userID, seen); err != nil {
					return err
				}
				cp.MessageCount = len(seen)
			}
			cp.HistoryID, cp.PendingHistoryID = cp.PendingHistoryID, 0
			cp.LastSyncAt = s.now()
			cp.LastError = ""
		}
		if err := s.Store.SaveSync(ctx, userID, &cp, metas, deletes); err != nil {
			return err
		}
		*mb = cp
		res.Wrote = true
		res.Added += len(metas)
		res.Removed += len(deletes)
		if page.NextPageToken == "" {
			res.Complete = true
			return nil
		}
	}
}

// listPage reads one page of message ids (500, Gmail's maximum).
func listPage(ctx context.Context, svc *gmail.Service, query, pageToken string) (*gmail.ListMessagesResponse, error) {
	call := svc.Users.Messages.List("me").Context(ctx).MaxResults(listPageSize).
		Fields("messages/id", "nextPageToken")
	if query != "" {
		call = call.Q(query)
	}
	if pageToken != "" {
		call = call.PageToken(pageToken)
	}
	return call.Do()
}

// stale returns the stored messages that the fallback listing did not see
// (deleted while the history checkpoint was too old to tell).
func (s *Syncer) stale(ctx context.Context, userID string, seen map[string]struct{}) ([]string, error) {
	var out []string
	after := ""
	for {
		page, err := s.Store.ListMailboxMessages(ctx, userID, after, 500)
		if err != nil {
			return nil, err
		}
		for _, m := range page {
			if _, ok := seen[m.ID]; !ok {
				out = append(out, m.ID)
			}
		}
		if len(page) < 500 {
			return out, nil
		}
		after = page[len(page)-1].ID
	}
}

// incremental applies history.list from the checkpoint, one page (up to 500
// records) at a time, saving the checkpoint after each page. With no change
// it makes one call and writes nothing.
func (s *Syncer) incremental(ctx context.Context, svc *gmail.Service, userID string, mb *store.Mailbox, res *Result, stopping func() bool) error {
	pageToken := ""
	start := mb.HistoryID
	for {
		call := svc.Users.History.List("me").Context(ctx).StartHistoryId(start).
			MaxResults(historyPageSize).HistoryTypes(historyTypes...)
		if pageToken != "" {
			call = call.PageToken(pageToken)
		}
		page, err := call.Do()
		if err != nil {
			var ge *googleapi.Error
			if errors.As(err, &ge) && ge.Code == http.StatusNotFound {
				return errHistoryGone
			}
			return err
		}
		ch := collect(page.History)
		next := page.HistoryId
		if page.NextPageToken != "" && len(page.History) > 0 {
			next = page.History[len(page.History)-1].Id
		}
		changed := len(ch.added)+len(ch.deleted)+len(ch.labels) > 0
		if changed || next != mb.HistoryID || mb.LastError != "" {
			upserts, err := s.fetch(ctx, svc, ch.addedIDs())
			if err != nil {
				return err
			}
			relabeled, err := s.relabel(ctx, userID, ch)
			if err != nil {
				return err
			}
			deletes := ch.deletedIDs()
			cp := *mb
			cp.HistoryID = next
			cp.LastSyncAt = s.now()
			cp.LastError = ""
			cp.MessageCount = max(0, cp.MessageCount+len(upserts)-len(deletes))
			if err := s.Store.SaveSync(ctx, userID, &cp, append(upserts, relabeled...), deletes); err != nil {
				return err
			}
			*mb = cp
			res.Wrote = true
			res.Added += len(upserts)
			res.Removed += len(deletes)
		}
		if page.NextPageToken == "" {
			res.Complete = true
			return nil
		}
		if stopping() {
			return errStopped
		}
		pageToken = page.NextPageToken
	}
}

// changes are the net effect of one page of history records.
type changes struct {
	added   map[string]bool     // id -> added (fetch its metadata)
	deleted map[string]bool     // id -> deleted
	labels  map[string][]string // id -> labels after the last label change
	order   []string            // ids in first-seen order, for stable output
}

func collect(hist []*gmail.History) *changes {
	c := &changes{added: map[string]bool{}, deleted: map[string]bool{}, labels: map[string][]string{}}
	note := func(id string) {
		if !c.added[id] && !c.deleted[id] {
			if _, ok := c.labels[id]; !ok {
				c.order = append(c.order, id)
			}
		}
	}
	for _, h := range hist {
		for _, a := range h.MessagesAdded {
			if a.Message == nil {
				continue
			}
			note(a.Message.Id)
			c.added[a.Message.Id] = true
			delete(c.deleted, a.Message.Id)
			delete(c.labels, a.Message.Id)
		}
		for _, d := range h.MessagesDeleted {
			if d.Message == nil {
				continue
			}
			note(d.Message.Id)
			delete(c.added, d.Message.Id)
			delete(c.labels, d.Message.Id)
			c.deleted[d.Message.Id] = true
		}
		relabel := func(m *gmail.Message) {
			if m == nil || c.deleted[m.Id] || c.added[m.Id] {
				return // a new message's metadata is fetched after all its changes
			}
			note(m.Id)
			c.labels[m.Id] = append([]string(nil), m.LabelIds...)
		}
		for _, l := range h.LabelsAdded {
			relabel(l.Message)
		}
		for _, l := range h.LabelsRemoved {
			relabel(l.Message)
		}
	}
	return c
}

func (c *changes) addedIDs() []string {
	var out []string
	for _, id := range c.order {
		if c.added[id] {
			out = append(out, id)
		}
	}
	return out
}

func (c *changes) labeledIDs() []string {
	var out []string
	for _, id := range c.order {
		if _, ok := c.labels[id]; ok {
			out = append(out, id)
		}
	}
	return out
}

func (c *changes) deletedIDs() []string {
	var out []string
	for _, id := range c.order {
		if c.deleted[id] {
			out = append(out, id)
		}
	}
	return out
}

// relabel applies label changes to stored messages without a Gmail call:
// history records carry the message's labels after the change. The stored
// messages are read in one store call, in the order the history first
// mentioned them; messages not stored (outside the synced window) are left
// alone.
func (s *Syncer) relabel(ctx context.Context, userID string, ch *changes) ([]*store.MessageMeta, error) {
	ids := ch.labeledIDs()
	if len(ids) == 0 {
		return nil, nil
	}
	msgs, err := s.Store.GetMailboxMessages(ctx, userID, ids)
	if err != nil {
		return nil, fmt.Errorf("read relabeled messages: %w", err)
	}
	for _, m := range msgs {
		m.LabelIDs = ch.labels[m.ID]
	}
	return msgs, nil
}

// fetch reads the metadata of ids concurrently (bounded). A message gone
// meanwhile (404) is left out: its deletion shows in the history.
func (s *Syncer) fetch(ctx context.Context, svc *gmail.Service, ids []string) ([]*store.MessageMeta, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	out := make([]*store.MessageMeta, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.metadataConcurrency())
	for i, id := range ids {
		g.Go(func() error {
			m, err := getMetadata(gctx, svc, id)
			if err != nil {
				var ge *googleapi.Error
				if errors.As(err, &ge) && ge.Code == http.StatusNotFound {
					return nil
				}
				return err
			}
			out[i] = m
			return nil
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

func getMetadata(ctx context.Context, svc *gmail.Service, id string) (*store.MessageMeta, error) {
	gm, err := svc.Users.Messages.Get("me", id).Context(ctx).Format("metadata").
		MetadataHeaders("Subject", "From", "Date").
		Fields("id", "threadId", "labelIds", "snippet", "historyId", "internalDate", "payload/headers").Do()
	if err != nil {
		return nil, err
	}
	m := &store.MessageMeta{ID: gm.Id, ThreadID: gm.ThreadId, LabelIDs: gm.LabelIds, Snippet: gm.Snippet,
		InternalDate: gm.InternalDate, HistoryID: gm.HistoryId}
	if m.ID == "" {
		m.ID = id
	}
	m.Subject, m.From, m.Date = mailbox.Headers(gm)
	return m, nil
}
