// Package fsstore is the Cloud Firestore (Native mode) store.Store, the
// production store. It passes the contract suite in storetest against the
// Firestore emulator.
//
// Layout:
//
//	credentials/{sub}                    store.Credential (UserID is the ID)
//	oauth_states/{sha256(state)}         store.AuthState; expires_at is a timestamp for a TTL policy
//	mailboxes/{sub}                      the sync checkpoint (store.Mailbox)
//	mailboxes/{sub}/messages/{id}        store.MessageMeta (ID is the document ID)
//	sync_state/sweep                     store.SweepState: the scheduler sweep's resume point
//	quota_usage/{YYYY-MM-DD}             the project's Gmail quota units of a UTC day (quota.go)
//	credential_emails/{sha256(email)}    the email index: {user_id} (push.go)
//	outbox/{event id}                    events to the app not yet published (push.go)
//	sync_leases/{sub}                    who is syncing the user's mailbox (push.go)
//
// ListCredentials filters on status by equality and orders by document ID,
// which the automatic single-field index on status serves (every index ends
// with the document name); ListMailboxMessages orders by document ID only.
// GetMailboxMessages and the sweep state are read by document name. The
// mirror's listings (ListMirror, CountMirror; see mirror.go) need composite
// indexes on the messages collection, declared in
// terraform/firestore-indexes.json, which a test holds equal to the queries
// made here.
//
// Firestore keeps times to the microsecond and in UTC; uint64 history IDs are
// stored as int64 with the same bits (Firestore has no unsigned integers).
package fsstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"example.com/gmailoauth/internal/store"
)

// Collection names.
const (
	CredentialsCollection = "credentials"
	StatesCollection      = "oauth_states"
	MailboxesCollection   = "mailboxes"
	MessagesCollection    = "messages" // under mailboxes/{sub}
	SyncStateCollection   = "sync_state"
	SweepStateDoc         = "sweep" // in SyncStateCollection
)

const (
	// maxWritesPerCommit is Firestore's historical per-commit write limit;
	// SaveSync and DeleteMailbox never send more in one commit.
	maxWritesPerCommit = 500
	// maxRefsPerGetAll bounds the documents GetMailboxMessages reads in one
	// BatchGetDocuments call, well within what Firestore accepts.
	maxRefsPerGetAll = 300
	// txAttempts bounds the attempts of a contended transaction. It is above
	// the client's default (5) because a state replay or a refresh race makes
	// several instances contend for one document, and each loser should get a
	// clean answer (ErrNotFound, the current credential), not a spurious 503.
	// The client backs off exponentially from 1 s between attempts; the
	// caller's context bounds the whole.
	txAttempts = 10
)

// Store is a store.Store on Cloud Firestore. It is safe for concurrent use.
type Store struct {
	client    *firestore.Client
	locks     keyLocks // per-document, for UpdateCredential and ConsumeState
	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// New connects to the Firestore database "(default)" of projectID (detected
// from the environment when empty). When FIRESTORE_EMULATOR_HOST is set, the
// client library talks to that emulator without credentials.
func New(ctx context.Context, projectID string, opts ...option.ClientOption) (*Store, error) {
	if projectID == "" {
		projectID = firestore.DetectProjectID
	}
	c, err := firestore.NewClient(ctx, projectID, opts...)
	if err != nil {
		return nil, fmt.Errorf("fsstore: new client: %w", err)
	}
	return NewFromClient(c), nil
}

// NewFromClient returns a Store using c. The Store owns c from then on: Close
// closes it.
func NewFromClient(c *firestore.Client) *Store {
	return &Store{client: c}
}

// Close closes the Firestore client. Calling it again returns the first
// call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.client.Close() })
	return s.closeErr
}

// errInvalidID is returned for a key Firestore cannot use as a document ID.
var errInvalidID = errors.New("fsstore: invalid document id")

// checkID reports whether id can be a Firestore document ID: non-empty UTF-8
// of at most 1,500 bytes, no "/", not "." or "..", not of the reserved form
// __…__. The ID itself is never put in the error.
// validID reports whether id can be a Firestore document id.
func validID(id string) bool { return checkID(id) == nil }

func checkID(id string) error {
	switch {
	case id == "", id == ".", id == "..", len(id) > 1500, !utf8.ValidString(id), strings.Contains(id, "/"),
		len(id) >= 4 && strings.HasPrefix(id, "__") && strings.HasSuffix(id, "__"):
		return fmt.Errorf("%w (%d bytes)", errInvalidID, len(id))
	}
	return nil
}

func (s *Store) credRef(userID string) *firestore.DocumentRef {
	return s.client.Collection(CredentialsCollection).Doc(userID)
}

func (s *Store) stateRef(key string) *firestore.DocumentRef {
	return s.client.Collection(StatesCollection).Doc(key)
}

func (s *Store) mailboxRef(userID string) *firestore.DocumentRef {
	return s.client.Collection(MailboxesCollection).Doc(userID)
}

func (s *Store) messagesCol(userID string) *firestore.CollectionRef {
	return s.mailboxRef(userID).Collection(MessagesCollection)
}

func (s *Store) sweepRef() *firestore.DocumentRef {
	return s.client.Collection(SyncStateCollection).Doc(SweepStateDoc)
}

// mapErr turns a Firestore error into the store's vocabulary: NotFound wraps
// store.ErrNotFound; Unavailable, DeadlineExceeded, Aborted (after the
// client's retries) and ResourceExhausted wrap store.ErrUnavailable as well
// as the original error; an error caused by ctx's end also wraps ctx.Err().
func mapErr(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		switch status.Code(err) {
		case codes.Canceled, codes.DeadlineExceeded, codes.Unknown:
			if cerr == context.DeadlineExceeded {
				return fmt.Errorf("fsstore: %s: %w: %w: %w", op, store.ErrUnavailable, cerr, err)
			}
			return fmt.Errorf("fsstore: %s: %w: %w", op, cerr, err)
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("fsstore: %s: %w: %w", op, store.ErrUnavailable, err)
	}
	switch status.Code(err) {
	case codes.NotFound:
		return fmt.Errorf("fsstore: %s: %w: %w", op, store.ErrNotFound, err)
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted, codes.ResourceExhausted:
		return fmt.Errorf("fsstore: %s: %w: %w", op, store.ErrUnavailable, err)
	}
	return fmt.Errorf("fsstore: %s: %w", op, err)
}

func isNotFound(err error) bool { return status.Code(err) == codes.NotFound }

// utcMicro is what Firestore gives back for t: UTC, microsecond precision.
func utcMicro(t time.Time) time.Time { return t.Truncate(time.Microsecond).UTC() }

// stored returns c as reading it back would: a copy with UserID and times
// normalised.
func stored(c *store.Credential, userID string) *store.Credential {
	d := c.Clone()
	d.UserID = userID
	for _, t := range []*time.Time{
		&d.AccessTokenExpiry, &d.CreatedAt, &d.UpdatedAt, &d.LastRefreshAt, &d.RevokedAt, &d.RefreshLeaseUntil,
	} {
		*t = utcMicro(*t)
	}
	return d
}

func decodeCredential(snap *firestore.DocumentSnapshot) (*store.Credential, error) {
	var c store.Credential
	if err := snap.DataTo(&c); err != nil {
		return nil, fmt.Errorf("fsstore: decode credential: %w", err)
	}
	c.UserID = snap.Ref.ID
	return &c, nil
}

// GetCredential implements store.Store.
func (s *Store) GetCredential(ctx context.Context, userID string) (*store.Credential, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if checkID(userID) != nil {
		return nil, store.ErrNotFound
	}
	snap, err := s.credRef(userID).Get(ctx)
	if err != nil {
		if isNotFound(err) {
			return nil, store.ErrNotFound
		}
		return nil, mapErr(ctx, "get credential", err)
	}
	return decodeCredential(snap)
}

// UpdateCredential implements store.Store: ChangeCredential without
// events. fn runs inside a Firestore transaction (pessimistic: the read locks
// the document until commit) and runs again when the transaction is retried.
// Calls for one user from this Store take turns, so fn must not call the
// Store itself.
func (s *Store) UpdateCredential(ctx context.Context, userID string, fn store.UpdateFunc) (*store.Credential, error) {
	return s.ChangeCredential(ctx, userID, func(cur *store.Credential) (*store.CredentialChange, error) {
		next, err := fn(cur)
		if err != nil || next == nil {
			return nil, err
		}
		return &store.CredentialChange{Credential: next}, nil
	})
}

// DeleteCredential implements store.Store: ChangeCredential deleting (the
// email index entry goes with the credential).
func (s *Store) DeleteCredential(ctx context.Context, userID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !validID(userID) {
		return nil // it cannot exist
	}
	_, err := s.ChangeCredential(ctx, userID, func(*store.Credential) (*store.CredentialChange, error) {
		return &store.CredentialChange{Delete: true}, nil
	})
	return err
}

// ListCredentials implements store.Store. A limit <= 0 means no limit.
func (s *Store) ListCredentials(ctx context.Context, wantStatus, after string, limit int) ([]*store.Credential, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q := s.client.Collection(CredentialsCollection).Query
	if wantStatus != "" {
		q = q.WhereEntity(firestore.PropertyFilter{Path: "status", Operator: "==", Value: wantStatus})
	}
	q = q.OrderBy(firestore.DocumentID, firestore.Asc)
	if after != "" {
		if strings.Contains(after, "/") {
			return nil, fmt.Errorf("fsstore: list credentials: %w", errInvalidID)
		}
		q = q.StartAfter(after)
	}
	if limit > 0 {
		q = q.Limit(limit)
	}
	snaps, err := q.Documents(ctx).GetAll()
	if err != nil {
		return nil, mapErr(ctx, "list credentials", err)
	}
	return decodeAll(snaps, decodeCredential)
}

// PutState implements store.Store.
func (s *Store) PutState(ctx context.Context, key string, st *store.AuthState) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkID(key); err != nil {
		return err
	}
	_, err := s.stateRef(key).Set(ctx, st)
	return mapErr(ctx, "put state", err)
}

// errNoState ends ConsumeState's transaction when the state does not exist.
var errNoState = errors.New("fsstore: no state")

// ConsumeState implements store.Store. The read and the delete are one
// transaction, and the delete requires the document to exist, so of two
// concurrent calls (from any instances) exactly one gets the state.
func (s *Store) ConsumeState(ctx context.Context, key string, now time.Time) (*store.AuthState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if checkID(key) != nil {
		return nil, store.ErrNotFound
	}
	unlock, err := s.locks.lock(ctx, StatesCollection+"/"+key)
	if err != nil {
		return nil, err
	}
	defer unlock()
	ref := s.stateRef(key)
	var st *store.AuthState
	err = s.client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		st = nil
		snap, err := tx.Get(ref)
		if isNotFound(err) {
			return errNoState
		}
		if err != nil {
			return err
		}
		var got store.AuthState
		if err := snap.DataTo(&got); err != nil {
			return fmt.Errorf("fsstore: decode state: %w", err)
		}
		st = &got
		return tx.Delete(ref, firestore.Exists)
	}, firestore.MaxAttempts(txAttempts))
	switch {
	case errors.Is(err, errNoState), isNotFound(err):
		return nil, store.ErrNotFound
	case err != nil:
		return nil, mapErr(ctx, "consume state", err)
	case !now.Before(st.ExpiresAt):
		return nil, store.ErrStateExpired
	}
	return st, nil
}

// mailboxDoc is the stored form of store.Mailbox.
type mailboxDoc struct {
	HistoryID         int64     `firestore:"history_id"`
	LastSyncAt        time.Time `firestore:"last_sync_at"`
	LastError         string    `firestore:"last_error"`
	LastErrorAt       time.Time `firestore:"last_error_at"`
	FullSyncPageToken string    `firestore:"full_sync_page_token"`
	PendingHistoryID  int64     `firestore:"pending_history_id"`
	MessageCount      int64     `firestore:"message_count"`
	Grant             string    `firestore:"grant"`
	WatchedAt         time.Time `firestore:"watched_at"`
	WatchExpiration   time.Time `firestore:"watch_expiration"`
	WatchHistoryID    int64     `firestore:"watch_history_id"`
	MirrorHorizon     int64     `firestore:"mirror_horizon"`
}

// messageDoc is the stored form of store.MessageMeta.
type messageDoc struct {
	ThreadID     string   `firestore:"thread_id"`
	Subject      string   `firestore:"subject"`
	From         string   `firestore:"from"`
	Date         string   `firestore:"date"`
	Snippet      string   `firestore:"snippet"`
	LabelIDs     []string `firestore:"label_ids"`
	InternalDate int64    `firestore:"internal_date"`
	HistoryID    int64    `firestore:"history_id"`
	// SpamOrTrash is derived from LabelIDs so that a listing can leave
	// spam and trash out with an equality filter (see mirror.go).
	SpamOrTrash bool `firestore:"spam_or_trash"`
}

func toMailboxDoc(mb *store.Mailbox) *mailboxDoc {
	return &mailboxDoc{
		HistoryID:         int64(mb.HistoryID),
		LastSyncAt:        mb.LastSyncAt,
		LastError:         mb.LastError,
		LastErrorAt:       mb.LastErrorAt,
		FullSyncPageToken: mb.FullSyncPageToken,
		PendingHistoryID:  int64(mb.PendingHistoryID),
		MessageCount:      int64(mb.MessageCount),
		Grant:             mb.Grant,
		WatchedAt:         mb.WatchedAt,
		WatchExpiration:   mb.WatchExpiration,
		WatchHistoryID:    int64(mb.WatchHistoryID),
		MirrorHorizon:     mb.MirrorHorizon,
	}
}

func toMessageDoc(m *store.MessageMeta) *messageDoc {
	return &messageDoc{
		ThreadID:     m.ThreadID,
		Subject:      m.Subject,
		From:         m.From,
		Date:         m.Date,
		Snippet:      m.Snippet,
		LabelIDs:     m.LabelIDs,
		InternalDate: m.InternalDate,
		HistoryID:    int64(m.HistoryID),
		SpamOrTrash:  store.InSpamOrTrash(m.LabelIDs),
	}
}

// GetMailbox implements store.Store.
func (s *Store) GetMailbox(ctx context.Context, userID string) (*store.Mailbox, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if checkID(userID) != nil {
		return nil, store.ErrNotFound
	}
	snap, err := s.mailboxRef(userID).Get(ctx)
	if err != nil {
		if isNotFound(err) {
			return nil, store.ErrNotFound
		}
		return nil, mapErr(ctx, "get mailbox", err)
	}
	var d mailboxDoc
	if err := snap.DataTo(&d); err != nil {
		return nil, fmt.Errorf("fsstore: decode mailbox: %w", err)
	}
	return &store.Mailbox{
		UserID:            userID,
		HistoryID:         uint64(d.HistoryID),
		LastSyncAt:        d.LastSyncAt,
		LastError:         d.LastError,
		LastErrorAt:       d.LastErrorAt,
		FullSyncPageToken: d.FullSyncPageToken,
		PendingHistoryID:  uint64(d.PendingHistoryID),
		MessageCount:      int(d.MessageCount),
		Grant:             d.Grant,
		WatchedAt:         d.WatchedAt,
		WatchExpiration:   d.WatchExpiration,
		WatchHistoryID:    uint64(d.WatchHistoryID),
		MirrorHorizon:     d.MirrorHorizon,
	}, nil
}

// applyWrites applies ws in tx: a delete for a write without data.
func applyWrites(tx *firestore.Transaction, ws []write) error {
	for _, w := range ws {
		var err error
		if w.data == nil {
			err = tx.Delete(w.ref)
		} else {
			err = tx.Set(w.ref, w.data)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// write is one document write of a chunked commit: data nil deletes.
type write struct {
	ref  *firestore.DocumentRef
	data any
}

// commit applies writes in order, in commits of at most maxWritesPerCommit
// writes. Each commit is atomic; the sequence is not, which is why callers
// order their writes so that a prefix is a consistent state.
func (s *Store) commit(ctx context.Context, op string, writes []write) error {
	for len(writes) > 0 {
		n := min(len(writes), maxWritesPerCommit)
		chunk := writes[:n]
		writes = writes[n:]
		err := s.client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
			return applyWrites(tx, chunk)
		}, firestore.MaxAttempts(txAttempts))
		if err != nil {
			return mapErr(ctx, op, err)
		}
	}
	return nil
}

// SaveSync implements store.Store. Messages are written first, in commits of
// at most 500 writes, and the checkpoint last (in the final commit), so a
// checkpoint never runs ahead of the messages it describes. An ID both
// upserted and deleted ends up deleted; a nil mb writes only the messages.
func (s *Store) SaveSync(ctx context.Context, userID string, mb *store.Mailbox, upserts []*store.MessageMeta, deletes []string) error {
	return s.SaveSyncEvents(ctx, userID, mb, upserts, deletes, nil)
}

// syncWrites returns SaveSync's writes in order: the messages, then more
// (push.go: the outbox), then the checkpoint.
func (s *Store) syncWrites(userID string, mb *store.Mailbox, upserts []*store.MessageMeta, deletes []string, more []write) ([]write, error) {
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	deleted := make(map[string]bool, len(deletes))
	for _, id := range deletes {
		if err := checkID(id); err != nil {
			return nil, fmt.Errorf("fsstore: save sync: message: %w", err)
		}
		deleted[id] = true
	}
	// One write per document (the last upsert of an ID wins), in input order.
	last := make(map[string]int, len(upserts))
	for i, m := range upserts {
		if err := checkID(m.ID); err != nil {
			return nil, fmt.Errorf("fsstore: save sync: message: %w", err)
		}
		last[m.ID] = i
	}
	col := s.messagesCol(userID)
	writes := make([]write, 0, len(upserts)+len(deletes)+len(more)+1)
	for i, m := range upserts {
		if last[m.ID] == i && !deleted[m.ID] {
			writes = append(writes, write{col.Doc(m.ID), toMessageDoc(m)})
		}
	}
	seen := make(map[string]bool, len(deletes))
	for _, id := range deletes {
		if !seen[id] {
			seen[id] = true
			writes = append(writes, write{col.Doc(id), nil})
		}
	}
	writes = append(writes, more...)
	if mb != nil {
		writes = append(writes, write{s.mailboxRef(userID), toMailboxDoc(mb)})
	}
	return writes, nil
}

// ListMailboxMessages implements store.Store. A limit <= 0 means no limit.
func (s *Store) ListMailboxMessages(ctx context.Context, userID, after string, limit int) ([]*store.MessageMeta, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !validID(userID) {
		return nil, nil // no such user can exist
	}
	q := s.messagesCol(userID).OrderBy(firestore.DocumentID, firestore.Asc)
	if after != "" {
		if strings.Contains(after, "/") {
			return nil, fmt.Errorf("fsstore: list messages: %w", errInvalidID)
		}
		q = q.StartAfter(after)
	}
	if limit > 0 {
		q = q.Limit(limit)
	}
	snaps, err := q.Documents(ctx).GetAll()
	if err != nil {
		return nil, mapErr(ctx, "list messages", err)
	}
	return decodeAll(snaps, decodeMessage)
}

// decodeAll decodes each of snaps with decode, in order.
func decodeAll[T any](snaps []*firestore.DocumentSnapshot, decode func(*firestore.DocumentSnapshot) (T, error)) ([]T, error) {
	out := make([]T, 0, len(snaps))
	for _, snap := range snaps {
		v, err := decode(snap)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func decodeMessage(snap *firestore.DocumentSnapshot) (*store.MessageMeta, error) {
	var d messageDoc
	if err := snap.DataTo(&d); err != nil {
		return nil, fmt.Errorf("fsstore: decode message: %w", err)
	}
	return &store.MessageMeta{
		ID:           snap.Ref.ID,
		ThreadID:     d.ThreadID,
		Subject:      d.Subject,
		From:         d.From,
		Date:         d.Date,
		Snippet:      d.Snippet,
		LabelIDs:     d.LabelIDs,
		InternalDate: d.InternalDate,
		HistoryID:    uint64(d.HistoryID),
	}, nil
}

// GetMailboxMessages implements store.Store. It reads the documents by name
// with Client.GetAll, at most maxRefsPerGetAll a call, each distinct ID once.
// An ID that cannot be a document ID cannot be stored, so it is left out.
func (s *Store) GetMailboxMessages(ctx context.Context, userID string, ids []string) ([]*store.MessageMeta, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !validID(userID) {
		return nil, nil // no such user can exist
	}
	col := s.messagesCol(userID)
	seen := make(map[string]bool, len(ids))
	refs := make([]*firestore.DocumentRef, 0, len(ids))
	for _, id := range ids {
		if seen[id] || checkID(id) != nil {
			continue
		}
		seen[id] = true
		refs = append(refs, col.Doc(id))
	}
	out := make([]*store.MessageMeta, 0, len(refs))
	for len(refs) > 0 {
		chunk := refs[:min(len(refs), maxRefsPerGetAll)]
		refs = refs[len(chunk):]
		snaps, err := s.client.GetAll(ctx, chunk)
		if err != nil {
			return nil, mapErr(ctx, "get messages", err)
		}
		for _, snap := range snaps { // in the order of chunk
			if snap == nil || !snap.Exists() {
				continue
			}
			m, err := decodeMessage(snap)
			if err != nil {
				return nil, err
			}
			out = append(out, m)
		}
	}
	return out, nil
}

// DeleteMailbox implements store.Store. It deletes the messages in commits of
// at most 500, then the checkpoint; an interrupted call can simply run again.
func (s *Store) DeleteMailbox(ctx context.Context, userID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !validID(userID) {
		return nil // it cannot exist
	}
	q := s.messagesCol(userID).Select().Limit(maxWritesPerCommit)
	for {
		snaps, err := q.Documents(ctx).GetAll()
		if err != nil {
			return mapErr(ctx, "delete mailbox", err)
		}
		if len(snaps) == 0 {
			break
		}
		writes := make([]write, len(snaps))
		for i, snap := range snaps {
			writes[i] = write{snap.Ref, nil}
		}
		if err := s.commit(ctx, "delete mailbox", writes); err != nil {
			return err
		}
	}
	_, err := s.mailboxRef(userID).Delete(ctx)
	return mapErr(ctx, "delete mailbox", err)
}

// GetSweepState implements store.Store.
func (s *Store) GetSweepState(ctx context.Context) (store.SweepState, error) {
	if err := ctx.Err(); err != nil {
		return store.SweepState{}, err
	}
	snap, err := s.sweepRef().Get(ctx)
	if err != nil {
		if isNotFound(err) {
			return store.SweepState{}, nil
		}
		return store.SweepState{}, mapErr(ctx, "get sweep state", err)
	}
	var st store.SweepState
	if err := snap.DataTo(&st); err != nil {
		return store.SweepState{}, fmt.Errorf("fsstore: decode sweep state: %w", err)
	}
	return st, nil
}

// PutSweepState implements store.Store.
func (s *Store) PutSweepState(ctx context.Context, st store.SweepState) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := s.sweepRef().Set(ctx, &st)
	return mapErr(ctx, "put sweep state", err)
}
